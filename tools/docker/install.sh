#!/bin/sh
# Installs scaleset-image-operator with its LOCKED runtime dependencies into a new virtual environment.
#
#   usage: tools/docker/install.sh SOURCE_DIR VENV_DIR
#
# SOURCE_DIR holds what the Dockerfile copies: pyproject.toml, uv.lock, README.md and operator/.
# VENV_DIR is created; it must not exist yet (or be an empty folder).
# Needs on PATH: python3 (with pip; the venv is made from it, so it is the Python the image runs) and uv.
# PYTHON and UV may name other commands for the two.
#
# The Dockerfile's builder stage runs exactly this script, and tests/component/test_install_steps.py runs it the
# same way on a copy of the build context, so what the test proves holds for the image.
#
# Steps:
#   1. uv export --frozen --no-dev --no-emit-project: the runtime dependencies at the versions in uv.lock, each with
#      its sha256 hashes (--frozen: the lock is taken as it is, never re-resolved; no dev dependencies).
#   2. python3 -m venv --without-pip: a bare virtual environment (pip stays outside it, in the base Python).
#   3. pip install --require-hashes --no-deps --only-binary=:all: those pins: exactly the locked files, verified by
#      hash, nothing resolved at build time, nothing compiled from source.
#   4. uv build --wheel: the project's own wheel.
#   5. pip install --no-deps --no-index that wheel (it brings the scaleset-image command).
#   6. pip check: every installed distribution has its requirements installed.
# No cache is left behind: pip runs with --no-cache-dir, uv with UV_NO_CACHE=1 (a throw-away cache of its own), and
# the work folder (requirements file, wheel) is removed on exit.
set -eu

usage="usage: $0 SOURCE_DIR VENV_DIR (SOURCE_DIR holds pyproject.toml, uv.lock and operator/; VENV_DIR is created)"
if [ "$#" -ne 2 ]; then
    echo "$usage" >&2
    exit 2
fi
source_dir=$1
venv_dir=$2
python=${PYTHON:-python3}
uv=${UV:-uv}

for required in pyproject.toml uv.lock README.md operator; do
    if [ ! -e "$source_dir/$required" ]; then
        echo "install.sh: $source_dir has no $required: SOURCE_DIR must be the project folder" >&2
        echo "$usage" >&2
        exit 2
    fi
done
if [ -e "$venv_dir" ] && [ -n "$(ls -A "$venv_dir")" ]; then
    echo "install.sh: $venv_dir exists and is not empty: give a new folder for the virtual environment" >&2
    exit 2
fi

# The image runs as another user than the one building it: everything installed must be readable by all.
umask 022
export UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
    echo "install.sh: $*" >&2
}

step "exporting the locked runtime dependencies from $source_dir/uv.lock"
(cd "$source_dir" && "$uv" export --frozen --no-dev --no-emit-project --format requirements.txt \
    --quiet --output-file "$work/requirements.txt")

step "creating the virtual environment $venv_dir"
"$python" -m venv --without-pip "$venv_dir"
venv_python=$venv_dir/bin/python

step "installing the locked dependencies (hashes required)"
"$python" -m pip --python "$venv_python" install --no-cache-dir --no-input --require-hashes --no-deps \
    --only-binary=:all: --requirement "$work/requirements.txt"

step "building the scaleset-image-operator wheel"
"$uv" build --wheel --quiet --python "$python" --out-dir "$work/dist" "$source_dir"

step "installing the wheel"
"$python" -m pip --python "$venv_python" install --no-cache-dir --no-input --no-deps --no-index "$work"/dist/*.whl

step "checking that every requirement is installed"
"$python" -m pip --python "$venv_python" check

step "done: $venv_dir/bin/scaleset-image"
