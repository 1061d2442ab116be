# shellcheck shell=bash
# Shared helpers for hack/*.sh. Source it; it does not run anything by itself.

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
