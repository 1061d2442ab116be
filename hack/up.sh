#!/usr/bin/env bash
# The main job, from a fresh machine: install modelreg, start the local environment
# (`modelreg dev up`: cluster, S3, registries, the operator), upload the artifacts and
# push the images that examples/ needs, and apply the Quick start's and the two-approvers
# example as dana (README.md). Safe to run again: nothing applied twice changes.
# The environment lives in .dev/ ($MODELREG_DEV_DIR if set, as for `modelreg dev`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${MODELREG_DEV_DIR:-.dev}

hack/install-deps.sh
.venv/bin/modelreg dev up --dir "$dir"
# shellcheck source=/dev/null
. "$dir/env.sh"
.venv/bin/python hack/seed-examples.py
# README.md step 3 and examples/two-approvers/README.md, as written there (tests/test_examples.py
# checks these lines are theirs)
envsubst < examples/quickstart/fraud-detector.yaml | kubectl --context dana -n ml-demo apply -f -
envsubst < examples/two-approvers/credit-scoring.yaml | kubectl --context dana -n ml-demo apply -f -
cat >&2 <<NEXT
modelreg is up, and dana has registered the examples' models, versions and deployment in
the namespace ml-demo. Next, as in README.md (Quick start; tests/test_examples.py checks
these lines are there):
  . $dir/env.sh
  kubectl get modelreg -n ml-demo
  kubectl --context alice -n ml-demo annotate mv fraud-detector-v1 modelreg.dev/approval=Approved modelreg.dev/approval-comment="AUC 0.931, p95 31 ms"
  kubectl -n ml-demo wait mdep/fraud-detector --for=condition=Ready --timeout=180s
  kubectl get mdep,deploy,pods -n ml-demo
NEXT
