#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run
# the linters, the type checker and the whole test suite, then build the
# documentation and the package, and smoke-test the wheel
# (scripts/package_check.sh).
#
#   bash scripts/test.sh [pytest arguments]
#
# System packages (redis-server, chromium, chromium-driver, wrk for the
# benchmark smoke run, and Node.js with npm) are installed with apt-get when
# missing; PostgreSQL's binaries come from the machine (initdb, pg_ctl).
# The OpenID Connect provider of the demo's tests (panva's oidc-provider) is
# installed from the npm registry into tests/oidc_provider/node_modules, as
# its lock file pins it. The tests start and stop their own servers on
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v wrk >/dev/null || need+=(wrk)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "Installing ${need[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "== npm ci tests/oidc_provider"
npm ci --prefix tests/oidc_provider --no-audit --no-fund --loglevel=error >/dev/null

paths=(src tests)
for d in examples benchmarks scripts; do [ -d "$d" ] && paths+=("$d"); done
echo "== ruff"
.venv/bin/ruff check "${paths[@]}"
.venv/bin/ruff format --check "${paths[@]}"
echo "== mypy --strict src/"
.venv/bin/mypy src/flask_signoff
echo "== pytest"
# coverage run (not pytest-cov): our pytest plugin is imported before
# pytest-cov would start measuring.
status=0
.venv/bin/python -m coverage run -m pytest "$@" || status=$?
.venv/bin/python -m coverage report || true
echo "== sphinx-build -W docs"
# After pytest, so its result is reported either way; a warning fails CI.
docs=0
docs_out=$(mktemp -d)
.venv/bin/sphinx-build -W --keep-going -q -b html docs "$docs_out" || docs=$?
rm -rf "$docs_out"
# The package as users get it: built, installed from the wheel, smoke-tested.
# It runs even when pytest failed, so a run reports all three; any fails it.
echo "== package"
package=0
bash scripts/package_check.sh || package=$?
if [ "$status" -ne 0 ]; then echo "pytest failed (exit $status)" >&2; fi
if [ "$docs" -ne 0 ]; then echo "documentation build failed (exit $docs)" >&2; fi
if [ "$package" -ne 0 ]; then echo "package check failed (exit $package)" >&2; fi
if [ "$status" -ne 0 ]; then exit "$status"; fi
if [ "$docs" -ne 0 ]; then exit "$docs"; fi
exit "$package"
