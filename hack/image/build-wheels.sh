#!/usr/bin/env bash
# Build the modelreg wheel and the wheels of all its dependencies into DIST.
# Run by the Dockerfile's build stage, and by tests/test_image.py on this machine, so the
# image's install steps are tested without a Docker engine.
set -euo pipefail
dist=${1:?usage: build-wheels.sh DIST [SOURCE]}
src=${2:-.}
python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir "$dist" "$src"
