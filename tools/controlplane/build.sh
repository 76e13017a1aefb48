#!/usr/bin/env bash
# Build (or find) the test control plane: kube-apiserver and etcd.
#
# Prints, as its last line on stdout, the folder that holds both binaries (usable as KUBEBUILDER_ASSETS).
# Everything else goes to stderr. Exits non-zero, with the compiler's own error above, if the build fails.
#
#   1. If KUBEBUILDER_ASSETS is set and holds executable kube-apiserver and etcd, print it and stop.
#   2. Otherwise use the cache folder
#        ${SCALESET_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scaleset-image-operator/controlplane}/<k8s version>/bin
#      and build into it from the Go module proxy, unless both binaries are already there and were built from the
#      current go.mod / go.sum / etcd/main.go (a stamp file beside bin/ records a hash of those).
#
# Environment: GO (the go command; default `go` on PATH, else /usr/local/go/bin/go), SCALESET_CONTROLPLANE_CACHE,
# SCALESET_CONTROLPLANE_JOBS (go build -p, default 2), and the usual GOMODCACHE / GOCACHE / GOPROXY.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'controlplane: %s\n' "$*" >&2; }

has_binaries() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" && -f "$1/kube-apiserver" && -f "$1/etcd" ]]; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    if has_binaries "$KUBEBUILDER_ASSETS"; then
        log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
        (cd "$KUBEBUILDER_ASSETS" && pwd)
        exit 0
    fi
    log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable kube-apiserver and etcd; using the build cache instead"
fi

# The Kubernetes version is the one that go.mod pins (`k8s.io/kubernetes vX.Y.Z`).
k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$here/go.mod")"
if [[ ! "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
    log "cannot read the k8s.io/kubernetes version from $here/go.mod (got '${k8s_version}')"
    exit 1
fi
k8s_major="${BASH_REMATCH[1]}"
k8s_minor="${BASH_REMATCH[2]}"

cache_root="${SCALESET_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scaleset-image-operator/controlplane}"
version_dir="$cache_root/$k8s_version"
bin_dir="$version_dir/bin"
stamp_file="$version_dir/build-stamp"
stamp="$(cat "$here/go.mod" "$here/go.sum" "$here/etcd/main.go" | sha256sum | cut -d' ' -f1)"

up_to_date() { has_binaries "$bin_dir" && [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; }

if up_to_date; then
    log "kube-apiserver and etcd $k8s_version already built in $bin_dir"
    printf '%s\n' "$bin_dir"
    exit 0
fi

mkdir -p "$version_dir"

# Serialise concurrent builds into the same cache folder (another one may finish while we wait).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$version_dir/.lock"
    if ! flock -n 9; then
        log "another build holds $version_dir/.lock; waiting for it"
        flock 9
    fi
    if up_to_date; then
        log "kube-apiserver and etcd $k8s_version were built by another process in $bin_dir"
        printf '%s\n' "$bin_dir"
        exit 0
    fi
fi

go_cmd="${GO:-}"
if [[ -z "$go_cmd" ]]; then
    if command -v go >/dev/null 2>&1; then go_cmd="go"; else go_cmd="/usr/local/go/bin/go"; fi
fi
if ! "$go_cmd" version >/dev/null 2>&1; then
    log "no usable Go toolchain ('$go_cmd'); Go >= 1.24 is needed to build kube-apiserver $k8s_version"
    exit 1
fi

tmp_dir="$(mktemp -d "$version_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT

ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$k8s_version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=$k8s_major"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$k8s_minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
jobs="${SCALESET_CONTROLPLANE_JOBS:-2}"

build() {  # build NAME PACKAGE
    local name="$1" pkg="$2" start rc=0
    start=$SECONDS
    log "building $name ($pkg) with $("$go_cmd" version | cut -d' ' -f3), -p $jobs ..."
    (cd "$here" && "$go_cmd" build -p "$jobs" -trimpath -tags grpcnotrace -ldflags "$ldflags" -o "$tmp_dir/$name" "$pkg") \
        || rc=$?
    if [[ $rc -ne 0 ]]; then
        log "building $name failed (go build exit code $rc); see the error above"
        exit "$rc"
    fi
    log "built $name in $((SECONDS - start)) s"
}

build_start=$SECONDS
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build etcd ./etcd

# Smoke-check the results before publishing them.
log "$("$tmp_dir/kube-apiserver" --version 2>&1 | head -n1)"
log "etcd: $("$tmp_dir/etcd" --version 2>&1 | tr '\n' ' ')"

mkdir -p "$bin_dir"
rm -f "$stamp_file"
mv -f "$tmp_dir/kube-apiserver" "$bin_dir/kube-apiserver"
mv -f "$tmp_dir/etcd" "$bin_dir/etcd"
printf '%s\n' "$stamp" >"$stamp_file"
log "kube-apiserver and etcd $k8s_version built in $((SECONDS - build_start)) s into $bin_dir"
printf '%s\n' "$bin_dir"
