# shellcheck shell=bash
# Shared helpers for hack/*.sh. Source it; it does not run anything by itself.
_modelreg_hack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Root of modelreg's cache, outside any clone so a fresh clone on a warm machine reuses it.
modelreg_cache_dir() { echo "${MODELREG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelreg}"; }

# Go's module and build caches live in the modelreg cache too (unless the caller set them),
# so `rm -rf ~/.cache/modelreg` is a true cold start and CI can cache one directory.
setup_go_env() {
  local cache; cache=$(modelreg_cache_dir)
  export GOMODCACHE="${MODELREG_GOMODCACHE:-$cache/go/mod}"
  export GOCACHE="${MODELREG_GOCACHE:-$cache/go/build}"
  export GOFLAGS="-modcacherw -buildvcs=false"
  export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
  export CGO_ENABLED=0
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

# go_version_at_least HAVE MIN: whether Go version HAVE (go1.26.8 or 1.26.8) is >= MIN.
go_version_at_least() {
  local have=${1#go} min=${2#go}
  [ "$(printf '%s\n%s\n' "$min" "$have" | sort -V | head -n 1)" = "$min" ]
}

# ensure_go MIN VERSION SUMS: put a Go >= MIN first on PATH. The machine's Go is used when
# it is recent enough; otherwise the official toolchain VERSION is fetched once from the Go
# module proxy, checked against its pinned go.sum hash (SUMS, from versions.env) and kept in
# $(modelreg_cache_dir)/go-toolchain/VERSION.
ensure_go() {
  local min=$1 version=$2 sums=$3 have="" dir
  # GOTOOLCHAIN=local from /: report this go binary, not one a go.mod would switch to
  have=$(cd / && GOTOOLCHAIN=local go version 2>/dev/null | awk '{print $3}') || have=""
  if [ -n "$have" ] && go_version_at_least "$have" "$min"; then return 0; fi
  dir="$(modelreg_cache_dir)/go-toolchain/$version"
  if [ ! -x "$dir/bin/go" ]; then
    echo ">>> Go >= $min is needed (found: ${have:-none}): fetching $version from the Go module proxy" >&2
    python3 "$_modelreg_hack/go-toolchain.py" "$version" "$sums" "$dir" || return 1
  fi
  export PATH="$dir/bin:$PATH"
}
