"""The documentation site lists every page and its configuration loads.

The real build (``sphinx-build -W`` in scripts/test.sh) takes seconds; these
checks take milliseconds and say which page was forgotten: a Markdown page
outside every toctree is built but unreachable from the site's navigation,
and the public API page must keep up with ``flask_signoff.__all__``.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import flask_signoff

DOCS = Path(__file__).resolve().parent.parent / "docs"

_TOCTREE = re.compile(r"^```\{toctree\}\n(.*?)^```", re.MULTILINE | re.DOTALL)


def toctree_entries(page: Path) -> list[str]:
    entries = []
    for block in _TOCTREE.findall(page.read_text(encoding="utf-8")):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.append(line)
    return entries


def test_every_page_is_in_a_toctree() -> None:
    listed = {"index"}  # the root
    for page in DOCS.glob("*.md"):
        for entry in toctree_entries(page):
            listed.add(page.stem if entry == "self" else entry)
    pages = {page.stem for page in DOCS.glob("*.md")}
    assert pages - listed == set(), "pages missing from every toctree"
    assert listed - pages == set(), "toctree entries without a page"


def test_index_lists_the_references_changelog_and_security_policy() -> None:
    entries = toctree_entries(DOCS / "index.md")
    for page in ("api", "cli", "changes", "security"):
        assert page in entries


def test_conf_loads_with_the_extensions_installed() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    assert conf["root_doc"] == "index"
    assert conf["release"] == flask_signoff.__version__
    for extension in conf["extensions"]:
        __import__(extension)
    assert conf["html_theme"] == "flask"


def test_conf_points_security_links_at_the_included_policy() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    source = ["See [SECURITY.md](../SECURITY.md) and [x](tokens.md)."]
    conf["_link_security_page"](None, "index", source)
    assert source == ["See [SECURITY.md](security.md) and [x](tokens.md)."]


def test_api_page_documents_every_public_name() -> None:
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"flask_signoff(?:\.signals)?\.(\w+)", api))
    missing = set(flask_signoff.__all__) - documented - {"__version__"}
    assert missing == set()
