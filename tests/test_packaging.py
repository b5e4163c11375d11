"""The package's metadata, and the files that release it."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import flask_signoff

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_installed_distributions() -> None:
    # pyproject.toml reads the version from ``__version__`` (hatch's version
    # source): one place to change, and the two can never disagree.
    assert flask_signoff.__version__ == importlib.metadata.version("flask-signoff")
    assert re.fullmatch(
        r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", flask_signoff.__version__
    )


def test_version_is_written_in_one_place() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^dynamic = \[\"version\"\]$", pyproject, re.M)
    assert not re.search(r"^version\s*=", pyproject, re.M)


def test_package_is_marked_typed() -> None:
    assert (ROOT / "src" / "flask_signoff" / "py.typed").is_file()
    metadata = importlib.metadata.metadata("flask-signoff")
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])
