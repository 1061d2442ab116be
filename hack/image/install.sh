#!/usr/bin/env bash
# Install modelreg from the wheels in DIST (offline) into a new virtualenv PREFIX, then
# drop pip and setuptools from it: the final image carries no build or install tools.
# Run by the Dockerfile's build stage, and by tests/test_image.py.
set -euo pipefail
dist=${1:?usage: install.sh DIST PREFIX}
prefix=${2:?usage: install.sh DIST PREFIX}
python -m venv "$prefix"
"$prefix/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \
  --no-index --find-links "$dist" modelreg
"$prefix/bin/python" -m pip uninstall --yes --quiet pip setuptools
# the entrypoints work (and nothing shadows the standard library's `operator`)
"$prefix/bin/modelreg" --help >/dev/null
"$prefix/bin/modelreg" run --help >/dev/null
"$prefix/bin/modelreg" fetch-artifact --help >/dev/null
"$prefix/bin/python" -c 'import operator, modelreg; assert operator.add(1, 2) == 3'
