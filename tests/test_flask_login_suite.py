"""Flask-Login 0.6.3's own test suite, run against Flask-Signoff.

Its ``tests/test_login.py`` comes from the release's sdist, downloaded from
PyPI by pip, pinned by the sha256 PyPI publishes for it and cached in
``~/.cache/flask-signoff`` (``$XDG_CACHE_HOME``), so a second run needs no
network. It runs in a pytest of its own with ``tests/flask_login_shim``
first on ``sys.path``: there ``flask_login`` is a package whose modules only
forward the names of Flask-Signoff's modules of the same name, which is what
migrating does to an app.

Every upstream test that fails is a deliberate difference, listed by name in
the table of ``docs/migration.md``, section "Flask-Login's own test suite".
The test below fails when the failing tests and that list differ in either
direction (a listed test that passes now leaves the list), or when the
suite no longer has its 114 tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

VERSION = "0.6.3"
SDIST = f"Flask-Login-{VERSION}.tar.gz"
#: As PyPI publishes it for the file above.
SHA256 = "5e23d14a607ef12806c699590b89d0f0e0d67baeec599d75947bf9c147330333"
#: The tests in the release's tests/test_login.py.
TOTAL = 114

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "tests" / "flask_login_shim"
MIGRATION = ROOT / "docs" / "migration.md"
SECTION = "## Flask-Login's own test suite"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flask-signoff"


def sdist(tmp_path: Path) -> Path:
    """The release's sdist, from the cache or else downloaded, checked."""
    cached = _cache_dir() / SDIST
    if cached.is_file() and _sha256(cached) == SHA256:
        return cached
    requirement = tmp_path / "requirement.txt"
    requirement.write_text(f"flask-login=={VERSION} --hash=sha256:{SHA256}\n")
    download = tmp_path / "download"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--require-hashes",
            "--requirement",
            str(requirement),
            "--dest",
            str(download),
        ],
        check=True,
        timeout=300,
    )
    # pip checked the hash; checked again before anything is read from it.
    got = download / SDIST
    assert _sha256(got) == SHA256
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_bytes(got.read_bytes())
        partial.replace(cached)
    except OSError:  # no writable cache: this run only
        return got
    return cached


def extract(archive: Path, into: Path) -> Path:
    """Write the suite and its pytest settings (``filterwarnings = error``)
    under ``into``; return the test file. Only these two members are read,
    each written to a path of ours."""
    top = f"Flask-Login-{VERSION}"
    with tarfile.open(archive) as tar:
        for name in ("tests/test_login.py", "setup.cfg"):
            member = tar.extractfile(f"{top}/{name}")
            assert member is not None, name
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(member.read())
    return into / "tests" / "test_login.py"


def run_upstream(test_file: Path, report: Path) -> dict[str, str]:
    """Run the suite on the shim; ``{"Class.test": outcome}``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "COV_CORE_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SHIM), os.environ.get("PYTHONPATH")) if p
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            # Flask-Signoff's fixtures plugin: nothing of the suite's.
            "-p",
            "no:signoff",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
            str(test_file.relative_to(test_file.parents[1])),
        ],
        cwd=test_file.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 0: all passed, 1: some failed; anything else is a broken run.
    assert done.returncode in (0, 1), done.stdout[-4000:] + done.stderr[-4000:]
    outcomes = {}
    # The report is written by the pytest just run, not by a stranger.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        name = f"{case.get('classname', '').rpartition('.')[2]}.{case.get('name')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            outcomes[name] = "failed"
        elif "skipped" in tags:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def listed_differences(text: str) -> set[str]:
    """The test names in the first column of the section's table."""
    section = text.partition(SECTION)[2]
    assert section, f"docs/migration.md has no {SECTION!r} section"
    section = section.split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+\.test_\w+)` \|", section, re.MULTILINE))


def test_listed_differences_reads_the_table() -> None:
    text = (
        "## Other\n| `A.test_other` | x | y |\n"
        f"{SECTION}\n\n| test | differs | why |\n|---|---|---|\n"
        "| `A.test_one` | x | y |\n| `B.test_two` | x | y |\n"
        "## Next\n| `A.test_three` | x | y |\n"
    )
    assert listed_differences(text) == {"A.test_one", "B.test_two"}


def test_flask_login_suite_fails_only_where_listed(tmp_path: Path) -> None:
    test_file = extract(sdist(tmp_path), tmp_path / "flask-login")
    outcomes = run_upstream(test_file, tmp_path / "report.xml")
    assert len(outcomes) == TOTAL, f"{len(outcomes)} tests, not {TOTAL}"
    skipped = sorted(n for n, o in outcomes.items() if o == "skipped")
    assert not skipped, f"skipped, so not compared: {skipped}"
    failing = {n for n, o in outcomes.items() if o == "failed"}
    listed = listed_differences(MIGRATION.read_text())
    unknown = listed - set(outcomes)
    assert not unknown, f"docs/migration.md lists tests that do not exist: {unknown}"
    assert not failing - listed, (
        "These Flask-Login tests fail and are not listed as deliberate "
        f"differences in docs/migration.md: {sorted(failing - listed)}"
    )
    assert not listed - failing, (
        "These Flask-Login tests pass now: remove them from the list in "
        f"docs/migration.md: {sorted(listed - failing)}"
    )
    # The counts the page states.
    stated = f"{TOTAL - len(failing)} pass. The {len(failing)} that fail"
    assert stated in " ".join(MIGRATION.read_text().split())
