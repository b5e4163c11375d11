"""docs/testing.md: its example app, fixtures and tests pass under pytest.

The page's files (the blocks whose first line names one, ``# conftest.py``)
are written to a folder and pytest runs there in a process of its own, as a
user's suite would run, with the plugin that flask-signoff installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs import files_on_page

FILES = ("myapp.py", "conftest.py", "test_myapp.py")


def test_the_page_has_the_three_files_and_they_compile() -> None:
    files = files_on_page("testing.md")
    assert sorted(files) == sorted(FILES)
    for name, code in files.items():
        compile(code, name, "exec")


@pytest.mark.slow
def test_the_pages_tests_pass(tmp_path: Path) -> None:
    for name, code in files_on_page("testing.md").items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
