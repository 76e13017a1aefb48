#!/usr/bin/env bash
# Find (or install) the Azure CLI the tests drive against the simulator: PyPI's `azure-cli`, pinned, in a virtual
# environment of its own, outside uv.lock (azure-cli pins its own Azure SDK versions, which must not move the
# operator's).
#
# Prints, as its last line on stdout, the path of the `az` executable. Everything else goes to stderr. Exits
# non-zero, with pip's own error above, if it cannot.
# Idempotent: a second run finds what the first one left (a stamp file written last) and installs nothing.
#
#   cache: ${SCALESET_AZURE_CLI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scaleset-image-operator/azure-cli}/<version>/
#   the venv is made with ${PYTHON:-python3} -m venv, then `pip install azure-cli==<version>`.
#
# Nothing is installed system-wide and nothing is written inside the repository. Environment:
# SCALESET_AZURE_CLI_CACHE, PYTHON.
set -euo pipefail

VERSION=2.91.0

log() { printf 'azure-cli: %s\n' "$*" >&2; }

cache_root="${SCALESET_AZURE_CLI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scaleset-image-operator/azure-cli}"
target="$cache_root/$VERSION"
stamp="$target/.installed"
python="${PYTHON:-python3}"

done_already() { [[ -f "$stamp" && -x "$target/bin/az" ]]; }

if done_already; then
    log "azure-cli $VERSION already in $target"
    printf '%s\n' "$target/bin/az"
    exit 0
fi

mkdir -p "$cache_root"
# Serialise concurrent installs into the same cache (another one may finish while we wait).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_root/.lock"
    if ! flock -n 9; then
        log "another install holds $cache_root/.lock; waiting for it"
        flock 9
    fi
    if done_already; then
        log "azure-cli $VERSION already in $target"
        printf '%s\n' "$target/bin/az"
        exit 0
    fi
fi

started=$SECONDS
# A folder without the stamp is a half-done install: start it again from nothing.
rm -rf "$target"
log "creating $target with $python -m venv, then pip install azure-cli==$VERSION (a few minutes the first time)"
"$python" -m venv "$target" >&2
"$target/bin/python" -m pip install --quiet --disable-pip-version-check "azure-cli==$VERSION" >&2
# The check runs with a config folder of its own: `az` writes its profile and telemetry settings there, never into
# the user's ~/.azure.
check_config="$(mktemp -d "${TMPDIR:-/tmp}/scaleset-azure-cli.XXXXXX")"
trap 'rm -rf "$check_config"' EXIT
if ! AZURE_CONFIG_DIR="$check_config" AZURE_CORE_COLLECT_TELEMETRY=false "$target/bin/az" version --output none >&2; then
    log "the installed az does not run (see above)"
    exit 1
fi
date -u +%Y-%m-%dT%H:%M:%SZ >"$stamp"
log "azure-cli $VERSION ready in $target after $((SECONDS - started)) s"
printf '%s\n' "$target/bin/az"
