"""The security pages prove what they claim with tests that exist.

``docs/asvs.md`` answers OWASP ASVS 5.0.0 requirement by requirement and
``docs/threat-model.md`` says what stops each attacker; both name the tests
that prove it, as ``tests/path.py::test_name`` or
``tests/path.py::Class::test_name``. A reviewer reads a named test as the
proof, so renaming or deleting one must fail here instead of leaving a claim
unproven. ``PENDING(<letter>)`` stands for a test that is not on this branch
yet; it must be replaced by the test's name before a release.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASVS = ROOT / "docs" / "asvs.md"
THREAT_MODEL = ROOT / "docs" / "threat-model.md"
SECURITY = ROOT / "SECURITY.md"
PAGES = (ASVS, THREAT_MODEL)

#: The requirements ``docs/asvs.md`` answers, in its order, with their level:
#: every requirement of V7 and V9, the refresh-token and revocation rows of
#: V10.4, the back-channel logout row of V10.5, V3.3 and V3.5.3, as listed in
#: ASVS 5.0.0 (OWASP/ASVS, tag
#: ``v5.0.0_release``, commit 5cf9b032440be53ce345ab3c130fda46ba1ce7a2,
#: ``5.0/docs_en/OWASP_Application_Security_Verification_Standard_5.0.0_en.csv``).
REQUIREMENTS = {
    "V7.1.1": 2,
    "V7.1.2": 2,
    "V7.1.3": 2,
    "V7.2.1": 1,
    "V7.2.2": 1,
    "V7.2.3": 1,
    "V7.2.4": 1,
    "V7.3.1": 2,
    "V7.3.2": 2,
    "V7.4.1": 1,
    "V7.4.2": 1,
    "V7.4.3": 2,
    "V7.4.4": 2,
    "V7.4.5": 2,
    "V7.5.1": 2,
    "V7.5.2": 2,
    "V7.5.3": 3,
    "V7.6.1": 2,
    "V7.6.2": 2,
    "V9.1.1": 1,
    "V9.1.2": 1,
    "V9.1.3": 1,
    "V9.2.1": 1,
    "V9.2.2": 2,
    "V9.2.3": 2,
    "V9.2.4": 2,
    "V10.4.5": 1,
    "V10.4.8": 2,
    "V10.4.9": 2,
    "V10.4.10": 2,
    "V10.5.5": 2,
    "V3.3.1": 1,
    "V3.3.2": 2,
    "V3.3.3": 2,
    "V3.3.4": 2,
    "V3.3.5": 3,
    "V3.5.3": 1,
}

STATUSES = ("met", "not applicable", "not met")

#: The start of a requirement's row in docs/asvs.md.
_ROW_RE = re.compile(r"^\|\s*(V\d+\.\d+\.\d+)\s*\|")
#: Anything in backticks that starts like a test reference.
_CITED_RE = re.compile(r"`(tests/[^`]*)`")
_REFERENCE_RE = re.compile(
    r"(tests/(?:[A-Za-z0-9_]+/)*[A-Za-z0-9_]+\.py)"
    r"::([A-Za-z_][A-Za-z0-9_]*)(?:::([A-Za-z_][A-Za-z0-9_]*))?\Z"
)
_PENDING_RE = re.compile(r"PENDING\([^)]*\)")
#: The target of a Markdown link that is not a web address.
_LOCAL_LINK_RE = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")


class Row:
    """A requirement's row: ID, level, title, status, how, tests."""

    def __init__(self, line: str) -> None:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"a row needs 6 cells, has {len(cells)}: {line}"
        self.id, level, self.title, status, self.how, self.tests = cells
        self.level = int(level)
        self.status = status.strip("*").strip()
        self.line = line


@functools.cache
def rows() -> list[Row]:
    lines = ASVS.read_text(encoding="utf-8").splitlines()
    return [Row(line) for line in lines if _ROW_RE.match(line)]


@functools.cache
def definitions(path: str) -> frozenset[str]:
    """``name`` and ``Class::name`` of the functions a test file defines."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
    return frozenset(names)


def citations(text: str) -> list[str]:
    """Everything in backticks that starts with ``tests/``."""
    return _CITED_RE.findall(text)


def cited_tests(text: str) -> list[str]:
    """The ``path::name`` references among :func:`citations`."""
    return [c for c in citations(text) if "::" in c]


def test_every_cited_test_exists() -> None:
    problems = []
    cited = 0
    for page in PAGES:
        for reference in citations(page.read_text(encoding="utf-8")):
            where = f"{page.name}: {reference}"
            if "::" not in reference:  # a file, named as such
                if not (ROOT / reference).exists():
                    problems.append(f"{where}: no such file")
                continue
            cited += 1
            match = _REFERENCE_RE.match(reference)
            if match is None:
                problems.append(f"{where}: not tests/path.py::test_name")
                continue
            path, first, second = match.groups()
            name = first if second is None else f"{first}::{second}"
            test_name = first if second is None else second
            if not (ROOT / path).is_file():
                problems.append(f"{where}: no such file")
            elif name not in definitions(path):
                problems.append(f"{where}: {path} defines no {name}")
            elif not test_name.startswith("test") or (
                second is not None and not first.startswith("Test")
            ):
                problems.append(f"{where}: pytest would not collect it")
    assert cited > 0
    assert not problems, "\n".join(problems)


def test_every_row_has_a_status_and_says_why() -> None:
    assert rows()
    for row in rows():
        assert row.status in STATUSES, f"{row.id}: status {row.status!r}"
        assert row.title, f"{row.id}: no title"
        assert len(row.how) > 20, f"{row.id}: no how, why or plan"


def test_met_rows_cite_a_test() -> None:
    # A PENDING marker counts here; test_no_pending_marker_is_left fails on it.
    uncited = [
        row.id
        for row in rows()
        if row.status == "met"
        and not cited_tests(row.tests)
        and not _PENDING_RE.search(row.tests)
    ]
    assert not uncited, "met rows without a test: " + ", ".join(uncited)


def test_tests_are_cited_only_in_the_tests_column() -> None:
    # A test named in the prose would escape the "met rows cite a test" check.
    for row in rows():
        assert not cited_tests(row.how), f"{row.id}: a test in the how column"


def test_no_pending_marker_is_left() -> None:
    """Every ``PENDING(x)`` is replaced by the test of change ``x``."""
    left = [
        f"{page.name}: {marker}"
        for page in PAGES
        for marker in _PENDING_RE.findall(page.read_text(encoding="utf-8"))
    ]
    assert not left, "replace each marker by its test: " + ", ".join(left)


def test_the_page_answers_exactly_the_chosen_requirements() -> None:
    assert [row.id for row in rows()] == list(REQUIREMENTS)
    for row in rows():
        assert row.level == REQUIREMENTS[row.id], f"{row.id}: level {row.level}"


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings
    }


def test_local_links_lead_somewhere() -> None:
    broken = []
    for page in (*PAGES, SECURITY):
        for target in _LOCAL_LINK_RE.findall(page.read_text(encoding="utf-8")):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target}: no such heading")
    assert not broken, "\n".join(broken)
