#!/usr/bin/env bash
# Find (or fetch) Prometheus and promtool: Debian's `prometheus` package, unpacked without installing it.
#
# Prints, as its last line on stdout, the folder that holds both `prometheus` and `promtool`.
# Everything else goes to stderr. Exits non-zero, with the failing tool's own error above, if it cannot.
# Idempotent: a second run finds what the first one left and downloads nothing.
#
#   1. If `prometheus` and `promtool` are both on PATH, in the same folder, print that folder and stop.
#   2. Otherwise look in the cache folder
#        ${SCALESET_PROMETHEUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scaleset-image-operator/prometheus}/<version>/
#      (<version> is the Debian package version, e.g. 2.42.0+ds-5+deb12u1) and print the newest folder that holds
#      both binaries and whose promtool runs.
#   3. Otherwise `apt-get download prometheus` into a temporary folder (running `apt-get update` and trying once
#      more only when the download fails because the package lists are missing or stale), unpack the .deb with
#      `dpkg-deb -x`, and copy usr/bin/prometheus and usr/bin/promtool into the cache folder of that version.
#
# Nothing is installed system-wide and nothing is written inside the repository. On Debian bookworm this is
# Prometheus 2.42.0 (package 2.42.0+ds-5+deb12u1). Environment: SCALESET_PROMETHEUS_CACHE.
set -euo pipefail

log() { printf 'prometheus: %s\n' "$*" >&2; }

has_binaries() { [[ -f "$1/prometheus" && -x "$1/prometheus" && -f "$1/promtool" && -x "$1/promtool" ]]; }

works() { "$1/promtool" --version >/dev/null 2>&1; }

# 1. On PATH.
if on_path="$(command -v promtool 2>/dev/null)" && command -v prometheus >/dev/null 2>&1; then
    dir="$(cd "$(dirname "$on_path")" && pwd)"
    if has_binaries "$dir" && works "$dir"; then
        log "using prometheus and promtool on PATH in $dir ($("$dir/promtool" --version 2>&1 | head -n1))"
        printf '%s\n' "$dir"
        exit 0
    fi
fi

cache_root="${SCALESET_PROMETHEUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scaleset-image-operator/prometheus}"

# 2. In the cache (newest version first).
newest_cached() {
    [[ -d "$cache_root" ]] || return 1
    local candidate
    while IFS= read -r candidate; do
        if has_binaries "$cache_root/$candidate" && works "$cache_root/$candidate"; then
            printf '%s\n' "$cache_root/$candidate"
            return 0
        fi
    done < <(find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' | sort -rV)
    return 1
}

if dir="$(newest_cached)"; then
    log "prometheus and promtool already in $dir"
    printf '%s\n' "$dir"
    exit 0
fi

# 3. Download and unpack Debian's package.
for tool in apt-get dpkg-deb; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "$tool not found: cannot fetch Debian's prometheus package (put prometheus and promtool on PATH instead)"
        exit 1
    fi
done

mkdir -p "$cache_root"
# Serialise concurrent fetches into the same cache (another one may finish while we wait).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_root/.lock"
    if ! flock -n 9; then
        log "another fetch holds $cache_root/.lock; waiting for it"
        flock 9
    fi
    if dir="$(newest_cached)"; then
        log "prometheus and promtool already in $dir"
        printf '%s\n' "$dir"
        exit 0
    fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/scaleset-prometheus.XXXXXX")"
trap 'rm -rf "$work"' EXIT

started=$SECONDS
log "apt-get download prometheus (into $work)"
if ! (cd "$work" && apt-get download prometheus >"$work/download.log" 2>&1); then
    cat "$work/download.log" >&2
    # Only missing or stale package lists are worth an `apt-get update`; anything else is reported as it is.
    if ! grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found' \
        "$work/download.log"; then
        log "apt-get download prometheus failed (see above)"
        exit 1
    fi
    log "download failed for missing or stale package lists; running apt-get update, then trying once more"
    apt-get update >&2
    rm -f "$work"/*.deb
    (cd "$work" && apt-get download prometheus) >&2
fi

shopt -s nullglob
debs=("$work"/prometheus_*.deb)
shopt -u nullglob
if [[ ${#debs[@]} -ne 1 ]]; then
    log "expected one prometheus_*.deb in $work after apt-get download, found ${#debs[@]}"
    exit 1
fi
deb="${debs[0]}"
version="$(dpkg-deb -f "$deb" Version)"
log "downloaded $(basename "$deb") ($(du -h "$deb" | cut -f1)) in $((SECONDS - started)) s; unpacking"

dpkg-deb -x "$deb" "$work/root"
for tool in prometheus promtool; do
    if [[ ! -f "$work/root/usr/bin/$tool" ]]; then
        log "$(basename "$deb") holds no usr/bin/$tool"
        exit 1
    fi
done

# Copy into a staging folder first and rename it into place, so a half-copied folder is never seen as done.
target="$cache_root/$version"
staging="$cache_root/.staging-$$"
rm -rf "$staging"
mkdir -p "$staging"
install -m 0755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$staging/"
if ! works "$staging"; then
    "$staging/promtool" --version >&2 || true
    rm -rf "$staging"
    log "the unpacked promtool does not run"
    exit 1
fi
rm -rf "$target"
mv "$staging" "$target"
log "$("$target/promtool" --version 2>&1 | head -n1) ready in $target after $((SECONDS - started)) s"
printf '%s\n' "$target"
