#!/usr/bin/env bash
# The main job, from a fresh machine: install modelreg, start the local environment
# (`modelreg dev up`: cluster, S3, registries, the operator) and apply examples/ (after
# uploading their artifact and pushing their image).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

hack/install-deps.sh
.venv/bin/modelreg dev up
# shellcheck source=/dev/null
. .dev/env.sh
.venv/bin/python hack/seed-examples.py
cat >&2 <<'NEXT'
modelreg is up, with examples/ applied in ml-demo. Next:
  . .dev/env.sh
  kubectl get modelreg -n ml-demo
  kubectl --context alice -n ml-demo annotate mv fraud-detector-v1 modelreg.dev/approval=Approved
  kubectl get mdep,deploy,pods -n ml-demo
NEXT
