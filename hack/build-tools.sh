#!/usr/bin/env bash
# Build, from the Go module proxy, every binary modelreg's local environment runs:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm,
# crane, minio and the distribution registry; and for the real node the kubelet,
# containerd (with its runc shim and ctr) and the pause program. No Docker, no prebuilt
# downloads. Without a Go >= GO_MIN_VERSION on PATH, the official toolchain comes from the
# Go module proxy too
# (ensure_go in lib.sh; into $MODELREG_CACHE_DIR/go-toolchain/).
#
# Binaries go to $MODELREG_CACHE_DIR/bin/<tool>-<version>/ (default ~/.cache/modelreg),
# outside the clone, and are built only when missing: a warm machine builds nothing.
# Prints the bin directories on the last line as a PATH fragment.
#
#   hack/build-tools.sh            build what is missing
#   hack/build-tools.sh --print    print the PATH fragment only (no build; fails if missing)
#   hack/build-tools.sh --force    rebuild everything
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
# shellcheck source=hack/lib.sh
source "$here/lib.sh"

mode=${1:-build}
cache=$(modelreg_cache_dir)
bindir="$cache/bin"
log="$cache/build.log"
mkdir -p "$bindir"
setup_go_env
# One build at a time per cache: two runs (two clones, or a test that builds while
# hack/test.sh does) would otherwise build into the same $out.tmp and delete each
# other's output. A second run waits, then finds the tools built.
if [ "$mode" != "--print" ]; then
  exec 9>"$cache/build.lock"
  flock 9
fi

path_fragment=""
failed=0
go_ready=0

# build <name> <version> <binary...> -- <command...>: run command with $OUT set, once.
build() {
  local name=$1 version=$2; shift 2
  local bins=()
  while [ "$1" != "--" ]; do bins+=("$1"); shift; done; shift
  local out="$bindir/$name-$version"
  path_fragment="${path_fragment:+$path_fragment:}$out"
  local missing=0 b
  for b in "${bins[@]}"; do [ -e "$out/$b" ] || missing=1; done
  if [ "$mode" = "--force" ]; then missing=1; fi
  if [ $missing = 0 ]; then return 0; fi
  if [ "$mode" = "--print" ]; then echo "missing: $out (run hack/build-tools.sh)" >&2; failed=1; return 0; fi
  # Go is needed only to build: a warm cache runs without it. Fetched once if missing or old.
  if [ $go_ready = 0 ]; then
    ensure_go "$GO_MIN_VERSION" "$GO_TOOLCHAIN_VERSION" "$GO_TOOLCHAIN_SUMS"; go_ready=1
  fi
  echo ">>> building $name $version" >&2
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  # /usr/bin/time reports peak RSS of the go command and its children (compile, link).
  if ! OUT="$out.tmp" /usr/bin/time -f "%e %M" -o "$out.tmp/.time" "$@" >&2; then
    echo "!!! build of $name $version failed" >&2; rm -rf "$out.tmp"; exit 1
  fi
  local secs kb
  read -r secs kb < "$out.tmp/.time"
  printf '%s %s %s seconds, peak %s MiB\n' "$(date -u +%FT%TZ)" "$name-$version" "$secs" $((kb / 1024)) | tee -a "$log" >&2
  rm -rf "$out"; mv "$out.tmp" "$out"
}

kube_ldflags() {
  local v=$KUBE_VERSION minor; minor=${v#v1.}; minor=${minor%%.*}
  local f="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    f+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

# shellcheck disable=SC2016 # $OUT is expanded by the inner shell
build etcd "$ETCD_VERSION" etcd -- \
  bash -c 'cd "'"$here"'/go/etcd" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3'
# shellcheck disable=SC2016
build kubernetes "$KUBE_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl -- \
  bash -c 'cd "'"$here"'/go/kube" && go build -trimpath -ldflags "'"$(kube_ldflags)"'" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl'

gobin_install() { # package@version ldflags
  GOBIN="$OUT" go install -trimpath -ldflags "-s -w $2" "$1"
}
export -f gobin_install

# KWOK's Stage CRD and default stages come from the same module version as the binary.
# shellcheck disable=SC2016
build kwok "$KWOK_VERSION" kwok manifests/kwok.x-k8s.io_stages.yaml -- bash -c 'gobin_install \
  "sigs.k8s.io/kwok/cmd/kwok@'"$KWOK_VERSION"'" "-X sigs.k8s.io/kwok/pkg/consts.Version='"$KWOK_VERSION"'" \
  && src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@'"$KWOK_VERSION"'/kustomize" && mkdir -p "$OUT/manifests" \
  && cp "$src/crd/bases/kwok.x-k8s.io_stages.yaml" "$src/stage/node/fast/node-initialize.yaml" \
    "$src/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    "$src/stage/pod/fast/pod-ready.yaml" "$src/stage/pod/fast/pod-complete.yaml" \
    "$src/stage/pod/fast/pod-delete.yaml" "$OUT/manifests/" && chmod -R u+w "$OUT/manifests"'
build helm "$HELM_VERSION" helm -- bash -c 'gobin_install "helm.sh/helm/v3/cmd/helm@'"$HELM_VERSION"'" \
  "-X helm.sh/helm/v3/internal/version.version='"$HELM_VERSION"'"'
build crane "$CRANE_VERSION" crane -- bash -c 'gobin_install \
  "github.com/google/go-containerregistry/cmd/crane@'"$CRANE_VERSION"'" \
  "-X github.com/google/go-containerregistry/cmd/crane/cmd.Version='"$CRANE_VERSION"'"'
build registry "$DISTRIBUTION_VERSION" registry -- bash -c 'gobin_install \
  "github.com/distribution/distribution/v3/cmd/registry@'"$DISTRIBUTION_VERSION"'" \
  "-X github.com/distribution/distribution/v3/version.version='"$DISTRIBUTION_VERSION"'"'
build minio "$MINIO_VERSION" minio -- bash -c 'gobin_install "github.com/minio/minio@'"$MINIO_VERSION"'" ""'

# --- the real node (operator/modelreg/devenv/node.py) ----------------------------------------
# The kubelet comes from the same module (and wrapper) as the control plane.
# shellcheck disable=SC2016
build kubelet "$KUBE_VERSION" kubelet -- \
  bash -c 'cd "'"$here"'/go/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "'"$(kube_ldflags)"'" \
    -o "$OUT/" k8s.io/kubernetes/cmd/kubelet'
# containerd 2.x (Debian's 1.6 lacks the CRI RuntimeConfig call the kubelet will require)
# shellcheck disable=SC2016
build containerd "$CONTAINERD_VERSION" containerd containerd-shim-runc-v2 ctr -- bash -c '
  m=github.com/containerd/containerd/v2 v='"$CONTAINERD_VERSION"'
  CGO_ENABLED=0 GOBIN="$OUT" go install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X $m/version.Version=${v#v}" \
    "$m/cmd/containerd@$v" "$m/cmd/containerd-shim-runc-v2@$v" "$m/cmd/ctr@$v"'
# The sandbox ("pause") program, compiled from the Kubernetes module's own source: no
# image can be pulled from outside, so the environment makes its pause image from this.
# shellcheck disable=SC2016
build pause "$PAUSE_VERSION-$KUBE_VERSION" pause -- bash -c 'cd "'"$here"'/go/kube" \
  && src="$(go list -m -f "{{.Dir}}" k8s.io/kubernetes)/build/pause/linux/pause.c" \
  && gcc -Os -Wall -Werror -static -DVERSION=v'"$PAUSE_VERSION"'-modelreg -o "$OUT/pause" "$src"'

[ $failed = 0 ] || exit 1
echo "$path_fragment"
