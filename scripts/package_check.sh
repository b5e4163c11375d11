#!/usr/bin/env bash
# Build the wheel and the sdist, check what they hold, then install the wheel
# (not the source tree) into a fresh virtualenv and smoke-test it there, from
# a directory outside the repository.
#
#   bash scripts/package_check.sh
#
# Needs the dev extra (build, twine) in .venv and the package index (pip
# installs the wheel's dependencies). Takes well under a minute and a half.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PACKAGE_CHECK_PYTHON:-$root/.venv/bin/python}

work=$(mktemp -d "${TMPDIR:-/tmp}/signoff-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
dist=$work/dist

echo "== build"
"$python" -m build --outdir "$dist" . >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    echo "package_check: the build failed" >&2
    exit 1
}
ls "$dist"

echo "== file lists"
"$python" scripts/package_files.py "$dist"
"$python" -m twine --no-color check --strict "$dist"/*

echo "== install the wheel into a fresh virtualenv"
"$python" -m venv "$work/venv"
wheel=$(echo "$dist"/*.whl)
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "${wheel}[redis]"
# The one place the version is written, as the dev install reads it.
version=$("$python" -c 'import flask_signoff; print(flask_signoff.__version__)')
case "$wheel" in
    *"-${version}-"*) ;;
    *) echo "package_check: $wheel is not version $version" >&2; exit 1 ;;
esac

echo "== smoke test of the installed wheel"
mkdir "$work/run"
cp scripts/package_smoke.py "$work/run/"
cd "$work/run"
# -I: isolated mode, so neither the current directory nor PYTHONPATH can put
# the source tree in front of the installed package.
"$work/venv/bin/python" -I package_smoke.py "$version" "$work/run/smoke.sqlite3"
SMOKE_DB=$work/run/cli.sqlite3 "$work/venv/bin/flask" --app package_smoke signoff --help >/dev/null
echo "flask --app package_smoke signoff --help: OK"
echo "package_check: OK"
