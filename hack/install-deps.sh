#!/usr/bin/env bash
# Install what modelreg's scripts need on a fresh Debian machine: a few apt packages
# (only if missing), a virtualenv in .venv with modelreg and its dev/test extras.
# Go is not needed here: hack/build-tools.sh uses the machine's Go if it is recent enough
# and otherwise fetches the pinned toolchain from the Go module proxy (hack/versions.env).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need_apt=()
[ -x /usr/bin/time ] || need_apt+=(time)
command -v git >/dev/null || need_apt+=(git)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
command -v envsubst >/dev/null || need_apt+=(gettext-base)  # renders examples/
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
# the real node of `modelreg dev up` (operator/modelreg/devenv/node.py): runc, the CNI
# plugins, iptables (the pods' masquerade, inside the node's own network namespace),
# iproute2 (its namespace and veth) and gcc with a static libc (the pause program)
[ -x /usr/bin/runc ] || need_apt+=(runc)
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v nsenter >/dev/null || need_apt+=(util-linux)
command -v gcc >/dev/null || need_apt+=(gcc)
# the real node's tests: a shell, an HTTP server and failing processes in a 2 MB image
[ -x /bin/busybox ] || need_apt+=(busybox-static)
# hack/build-images.sh: the images' Debian base
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need_apt[@]}"
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Python >= 3.11 is required" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
