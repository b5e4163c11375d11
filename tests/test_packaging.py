"""The package's metadata, and the files that release it."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any

import yaml

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


def test_changelog_names_the_version_being_made() -> None:
    # The Pallets layout: "## Version X.Y.Z", then "Unreleased" or
    # "Released YYYY-MM-DD"; the top section is the version in the code.
    changes = (ROOT / "CHANGES.md").read_text(encoding="utf-8")
    sections = re.findall(
        r"^## Version (\S+)\n\n(Unreleased|Released \d{4}-\d{2}-\d{2})$", changes, re.M
    )
    assert sections, "CHANGES.md has no '## Version X.Y.Z' section"
    assert len(sections) == changes.count("\n## ")
    top, status = sections[0]
    release = re.sub(
        r"((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$", "", flask_signoff.__version__
    )
    assert top == release
    assert (status == "Unreleased") == (".dev" in flask_signoff.__version__)


def test_package_is_marked_typed() -> None:
    assert (ROOT / "src" / "flask_signoff" / "py.typed").is_file()
    metadata = importlib.metadata.metadata("flask-signoff")
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])


WORKFLOWS = ROOT / ".github" / "workflows"
#: ``owner/repo@<40 hex> # vX.Y.Z``: a tag can be moved, a commit cannot.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def load_workflow(name: str) -> Any:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def uses_lines() -> list[str]:
    lines = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            _, sep, rest = line.partition("uses:")
            if sep and not line.lstrip().startswith("#"):
                lines.append(rest.strip())
    return lines


def test_workflows_parse() -> None:
    names = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert names == ["publish.yml", "tests.yml"]
    for name in names:
        workflow = load_workflow(name)
        assert workflow["jobs"], name
        # Least privilege by default; a job asks for more itself.
        assert workflow["permissions"] == {"contents": "read"}, name


def test_every_action_is_pinned_to_a_commit() -> None:
    lines = uses_lines()
    assert len(lines) >= 5
    for line in lines:
        assert PINNED.match(line), f"not pinned to a full commit SHA: {line}"


def test_the_pin_check_refuses_a_tag() -> None:
    assert not PINNED.match("actions/checkout@v4")
    assert not PINNED.match("actions/checkout@11bd719")
    assert not PINNED.match("actions/checkout@" + "a" * 40)  # no version comment


def test_tests_workflow_runs_ci_on_every_supported_python() -> None:
    job = load_workflow("tests.yml")["jobs"]["tests"]
    assert job["strategy"]["matrix"]["python"] == ["3.10", "3.11", "3.12", "3.13"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert "bash .ci/run" in runs
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for version in job["strategy"]["matrix"]["python"]:
        assert f'"Programming Language :: Python :: {version}"' in pyproject


def test_publish_uses_trusted_publishing_on_a_tag() -> None:
    workflow = load_workflow("publish.yml")
    # PyYAML reads the key ``on`` as True (YAML 1.1).
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    (step,) = [s for s in publish["steps"] if "gh-action-pypi-publish" in s["uses"]]
    # No token or password: PyPI trusts the workflow through OIDC.
    assert "with" not in step
    text = (WORKFLOWS / "publish.yml").read_text(encoding="utf-8")
    assert "secrets." not in text
    assert "password" not in text


def test_pre_commit_hooks_are_pinned() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text("utf-8"))
    hooks = {}
    for repo in config["repos"]:
        assert re.fullmatch(r"v\d+\.\d+\.\d+", repo["rev"]), repo
        for hook in repo["hooks"]:
            hooks[hook["id"]] = hook
    assert {"ruff", "ruff-format", "mypy"} <= set(hooks)
