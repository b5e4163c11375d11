"""The code blocks of the documentation pages, for the tests that run them.

A page's example is tested as it is printed: the test reads the Markdown,
takes the block and runs it, so a change to the page that breaks the
example fails a test.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: A fenced block: its info string (``python``, ``python title="conftest.py"``)
#: and its text.
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def code_blocks(page: str, language: str = "python") -> list[tuple[str, str]]:
    """``(info, code)`` of every fenced block of ``language`` on ``page``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [
        (info.strip(), code)
        for info, code in _FENCE.findall(text)
        if info.strip().split(" ", 1)[0] == language
    ]


def files_on_page(page: str) -> dict[str, str]:
    """The blocks of ``page`` that name a file on their first line
    (``# conftest.py``), by that name."""
    found = {}
    for _info, code in code_blocks(page):
        first = code.split("\n", 1)[0]
        match = re.fullmatch(r"# (\w[\w/]*\.py)", first.strip())
        if match:
            found[match[1]] = code
    return found


def import_file(path: Path, name: str) -> ModuleType:
    """Import ``path`` as the module ``name`` (registered, as Flask needs to
    find the app's root folder from its import name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
