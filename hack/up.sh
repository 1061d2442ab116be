#!/usr/bin/env bash
# The main job, from a fresh machine: install modelreg, start the local environment
# (`modelreg dev up`: cluster, S3, registries) and apply examples/. Then:
#   . .dev/env.sh && kubectl get modelreg,deploy,pods -A
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

hack/install-deps.sh
.venv/bin/modelreg dev up
# shellcheck source=/dev/null
. .dev/env.sh
shopt -s nullglob
manifests=(examples/*.yaml)
if [ ${#manifests[@]} -gt 0 ]; then
  kubectl apply -n ml-demo -f examples/
fi
echo "modelreg is up. Next: . .dev/env.sh && kubectl get nodes,all -n ml-demo" >&2
