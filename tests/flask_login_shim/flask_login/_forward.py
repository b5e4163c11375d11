"""Copy every name of one of Flask-Signoff's modules into a shim module."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def forward(target: str, namespace: dict[str, Any]) -> None:
    """Give ``namespace`` every name that ``target``'s module has.

    The names ``from flask_signoff.<x> import name`` finds, private ones
    included; not the module's own dunders, nor its submodules (the shim
    has its own).
    """
    module = importlib.import_module(target)
    for name, value in vars(module).items():
        if name.startswith("__") and name not in ("__all__", "__version__"):
            continue
        if isinstance(value, ModuleType):
            continue
        namespace[name] = value
