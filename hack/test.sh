#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs dependencies, builds the local
# cluster's binaries (cached in ~/.cache/modelreg), lints, type-checks, then runs pytest
# (unit tests and the cluster tests against a real API server, S3 server and registries).
# Extra arguments go to pytest, e.g. `hack/test.sh -k smoke`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

hack/install-deps.sh
hack/build-tools.sh >/dev/null
shellcheck -x hack/*.sh hack/go/*.sh hack/image/*.sh .ci/run
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
