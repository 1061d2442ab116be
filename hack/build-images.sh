#!/usr/bin/env bash
# Build, without Docker and without pulling a base image, the images the real node runs:
#   modelreg  the operator and storage-initializer: what the Dockerfile describes (its
#             install steps are hack/image/*.sh, run here as there; its ENV, USER,
#             ENTRYPOINT, CMD, EXPOSE and LABELs are read from it by dockerfile-config.py)
#   mlserver  MLServer with its scikit-learn runtime (hack/image/mlserver/requirements.lock,
#             every wheel pinned by hash), the examples' serving runtime
# Both sit on one base layer: Debian bookworm's minbase with python3 (debootstrap from
# Debian's packages). Each image is a directory, $MODELREG_CACHE_DIR/images/<name>-<key>/,
# holding its layers (layers/0-base.tar.gz, a hard link to the shared base layer, and
# layers/1-app.tar.gz) and the crane flags of its configuration (config.flags); the key
# hashes everything the image is made of, so it is built only when an input changed.
# Prints one line per image: "<name> <directory>". Needs root (debootstrap, chroot).
#
#   hack/build-images.sh                 build what is missing
#   hack/build-images.sh --print         print only (fails if an image is missing)
#   hack/build-images.sh --lock-mlserver regenerate hack/image/mlserver/requirements.lock
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
# shellcheck source=hack/lib.sh
source "$here/lib.sh"
mode=${1:-build}
cache=$(modelreg_cache_dir)/images
mkdir -p "$cache"
python=${PYTHON:-python3}

base_packages="python3,python3-venv,python-is-python3,ca-certificates"
mirror=${MODELREG_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "$mode" = "--lock-mlserver" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  grep -v '^#' "$here/image/mlserver/requirements.in" > "$tmp/req.txt"
  "$python" -m pip download --quiet --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$tmp/w" -r "$tmp/req.txt"
  "$python" - "$tmp/w" "$here/image/mlserver/requirements.lock" <<'EOF'
import hashlib, pathlib, re, sys
lines = ["# Generated from requirements.in: every wheel of MLServer's image, pinned by hash.",
         "# Regenerate: hack/build-images.sh --lock-mlserver (pip download for CPython 3.11 on",
         "# manylinux x86_64, then sha256 of each wheel)."]
for w in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name, version = w.name.split("-")[:2]
    name = re.sub(r"[-_.]+", "-", name).lower()
    lines.append(f"{name}=={version} \\\n    --hash=sha256:{hashlib.sha256(w.read_bytes()).hexdigest()}")
pathlib.Path(sys.argv[2]).write_text("\n".join(lines) + "\n")
EOF
  exit 0
fi

hash_of() { # files or directories... -> one sha256 of their names and contents (names
  # relative to the checkout, so that every clone of the same commit has the same key)
  (for p in "$@"; do
     if [ -d "$p" ]; then
       (cd "$p" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z \
          | xargs -0 sha256sum)
     else echo "$(sha256sum < "$p" | cut -c1-64) ${p#"$root"/}"; fi
   done) | sha256sum | cut -c1-16
}

base_key=$(printf '%s\n' "bookworm" "$base_packages" "$(sed -n '/^# --- base/,/^# --- end base/p' "$0")" \
  | sha256sum | cut -c1-16)
base="$cache/base-$base_key"
modelreg_key=$(hash_of "$root/Dockerfile" "$root/pyproject.toml" "$root/README.md" "$root/operator" \
  "$here/image/build-wheels.sh" "$here/image/install.sh" "$here/image/dockerfile-config.py" "$here/build-images.sh" \
  | sed "s/^/$base_key-/" | sha256sum | cut -c1-16)
mlserver_key=$(hash_of "$here/image/mlserver/requirements.lock" "$here/build-images.sh" | sed "s/^/$base_key-/" \
  | sha256sum | cut -c1-16)
out_modelreg="$cache/modelreg-$modelreg_key"
out_mlserver="$cache/mlserver-$mlserver_key"

if [ "$mode" = "--print" ]; then
  for d in "$out_modelreg" "$out_mlserver"; do
    [ -e "$d/layers/1-app.tar.gz" ] || { echo "missing: $d (run hack/build-images.sh)" >&2; exit 1; }
  done
  echo "modelreg $out_modelreg"; echo "mlserver $out_mlserver"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "hack/build-images.sh needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is missing (Debian package debootstrap)" >&2; exit 1; }

exec 9>"$cache/build.lock"
flock 9

# layer DIR OUT [PATHS...]: a reproducible gzipped tarball of DIR (or of PATHS in it),
# compressed once here so that pushing it is only a copy
layer() {
  local dir=$1 out=$2; shift 2
  local paths=("$@"); [ ${#paths[@]} -gt 0 ] || paths=(.)
  tar --sort=name --numeric-owner --mtime=@0 --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$dir" -cf - "${paths[@]}" | gzip -n -6 > "$out.tmp"
  mv "$out.tmp" "$out"
}

# in_chroot DIR COMMAND...: run in DIR with /proc and /dev, in a mount namespace of its
# own (so nothing stays mounted on the host, whatever happens), with an empty environment
# (nothing of the host's pip configuration leaks in)
in_chroot() {
  local dir=$1; shift
  # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
  unshare --mount --propagation private -- sh -c '
    mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" \
      && exec chroot "$0" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"' \
    "$dir" "$@"
}

# --- base: Debian bookworm minbase with python3 --------------------------------------------
if [ ! -e "$base/layer.tar.gz" ]; then
  echo ">>> building the base layer (debootstrap bookworm: $base_packages)" >&2
  rm -rf "$base.tmp"; mkdir -p "$base.tmp"
  started=$SECONDS
  debootstrap --variant=minbase --include="$base_packages" bookworm "$base.tmp/rootfs" "$mirror" >&2
  rm -rf "$base.tmp/rootfs/var/cache/apt/archives/"*.deb "$base.tmp/rootfs/var/lib/apt/lists/"* \
    "$base.tmp/rootfs/usr/share/doc" "$base.tmp/rootfs/usr/share/man" "$base.tmp/rootfs/usr/share/info" \
    "$base.tmp/rootfs/var/log/"*
  layer "$base.tmp/rootfs" "$base.tmp/layer.tar.gz"
  echo "base layer: $((SECONDS - started)) s, $(du -m "$base.tmp/layer.tar.gz" | cut -f1) MiB" >&2
  rm -rf "$base"; mv "$base.tmp" "$base"
fi
# --- end base

# app NAME OUT SETUP: a copy of the base root, SETUP run in it (chroot), and its new and
# changed files (under /opt and /etc) as the image's second layer
app() {
  local name=$1 out=$2 setup=$3
  [ -e "$out/layers/1-app.tar.gz" ] && return 0
  echo ">>> building the $name image" >&2
  local started=$SECONDS work="$out.tmp"
  rm -rf "$work"; mkdir -p "$work"
  cp -a "$base/rootfs" "$work/rootfs"
  "$setup" "$work"
  rm -rf "$work/rootfs/src"
  mkdir -p "$work/layers"
  ln "$base/layer.tar.gz" "$work/layers/0-base.tar.gz"
  layer "$work/rootfs" "$work/layers/1-app.tar.gz" ./opt ./etc/passwd ./etc/group ./etc/shadow ./etc/gshadow
  echo "$name layer: $((SECONDS - started)) s, $(du -m "$work/layers/1-app.tar.gz" | cut -f1) MiB" >&2
  rm -rf "$work/rootfs"
  rm -rf "$out"; mv "$work" "$out"
}

# the user of the Dockerfile's final stage, made the same way
add_user() { in_chroot "$1/rootfs" useradd --uid 65532 --user-group --no-create-home \
  --shell /usr/sbin/nologin modelreg; }

setup_modelreg() {
  local work=$1
  # the Dockerfile's build stage: wheels, then the virtualenv from them (offline)
  "$here/image/build-wheels.sh" "$work/dist" "$root" >&2
  mkdir -p "$work/rootfs/src"
  cp -a "$work/dist" "$work/rootfs/src/dist"
  cp -a "$here/image" "$work/rootfs/src/image"
  in_chroot "$work/rootfs" bash /src/image/install.sh /src/dist /opt/modelreg >&2
  add_user "$work"
  rm -rf "$work/dist"
  "$python" "$here/image/dockerfile-config.py" "$root/Dockerfile" > "$work/config.flags"
}

setup_mlserver() {
  local work=$1
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any --require-hashes \
    -d "$work/rootfs/src/wheels" -r "$here/image/mlserver/requirements.lock" >&2
  cp "$here/image/mlserver/requirements.lock" "$work/rootfs/src/requirements.lock"
  in_chroot "$work/rootfs" sh -c 'python -m venv /opt/mlserver \
    && /opt/mlserver/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
         --no-index --find-links /src/wheels --require-hashes -r /src/requirements.lock \
    && /opt/mlserver/bin/pip uninstall --yes --quiet pip \
    && /opt/mlserver/bin/mlserver --help >/dev/null' >&2
  add_user "$work"
  # one model per pod, served from /mnt/models (the storage-initializer's directory). No
  # parallel inference workers: MLServer 1.7.1's workers fail to start with uvloop 0.23
  # ("There is no current event loop"), and one model per pod needs none.
  cat > "$work/config.flags" <<'FLAGS'
--env=PATH=/opt/mlserver/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
--env=PYTHONUNBUFFERED=1
--env=MLSERVER_HTTP_PORT=8080
--env=MLSERVER_GRPC_PORT=8081
--env=MLSERVER_METRICS_PORT=8082
--env=MLSERVER_MODEL_IMPLEMENTATION=mlserver_sklearn.SKLearnModel
--env=MLSERVER_MODEL_URI=/mnt/models/model.joblib
--env=MLSERVER_PARALLEL_WORKERS=0
--user=65532:65532
--exposed-ports=8080
--exposed-ports=8081
--entrypoint=mlserver,start,/mnt/models
--label=org.opencontainers.image.title=mlserver-sklearn
FLAGS
}

app modelreg "$out_modelreg" setup_modelreg
app mlserver "$out_mlserver" setup_mlserver
echo "modelreg $out_modelreg"
echo "mlserver $out_mlserver"
