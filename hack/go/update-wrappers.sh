#!/usr/bin/env bash
# Regenerate the wrapper Go modules under hack/go/ from the versions in hack/versions.env.
#
# k8s.io/kubernetes and go.etcd.io/etcd/server/v3 cannot be `go install`ed directly: their
# go.mod files `replace` sibling modules with relative paths. A wrapper module requires them
# at the pinned version and maps each replaced module to its published version instead
# (k8s.io/api => k8s.io/api v0.X.Y for Kubernetes v1.X.Y). The result (go.mod + go.sum) is
# checked in, so builds are reproducible and verified by go.sum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/../versions.env"
source "$here/../lib.sh"
setup_go_env
ensure_go "$GO_MIN_VERSION" "$GO_TOOLCHAIN_VERSION" "$GO_TOOLCHAIN_SUMS"

gomod_of() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])'; }

write_wrapper() { # dir module-path go-version
  mkdir -p "$1"; rm -f "$1/go.mod" "$1/go.sum"
  printf 'module %s\n\ngo %s\n' "$2" "$3" > "$1/go.mod"
}

# --- Kubernetes ---------------------------------------------------------------------------
kube_mod=$(gomod_of "k8s.io/kubernetes@${KUBE_VERSION}")
staging_version="v0.${KUBE_VERSION#v1.}"
gover=$(awk '$1=="go"{print $2; exit}' "$kube_mod")
write_wrapper "$here/kube" modelreg.dev/hack/kube "$gover"
{
  echo
  echo "require k8s.io/kubernetes ${KUBE_VERSION}"
  echo
  echo "replace ("
  # every `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.X.Y`
  awk '/=> \.\/staging\/src\//{print "\t" $1 " => " $1 " '"$staging_version"'"}' "$kube_mod"
  echo ")"
} >> "$here/kube/go.mod"
(cd "$here/kube" && for t in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
   go get -tool "k8s.io/kubernetes/cmd/$t@${KUBE_VERSION}"; done && go mod tidy)

# --- etcd ---------------------------------------------------------------------------------
etcd_mod=$(gomod_of "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
gover=$(awk '$1=="go"{print $2; exit}' "$etcd_mod")
write_wrapper "$here/etcd" modelreg.dev/hack/etcd "$gover"
(cd "$here/etcd" && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" \
   "go.etcd.io/etcd/api/v3@${ETCD_VERSION}" "go.etcd.io/etcd/client/pkg/v3@${ETCD_VERSION}" \
   "go.etcd.io/etcd/client/v3@${ETCD_VERSION}" "go.etcd.io/etcd/pkg/v3@${ETCD_VERSION}" \
   && go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" && go mod tidy)
echo "wrappers updated: $here/kube $here/etcd"
