"""The README's four statements from a training script to a deployed, approved version, run as
written against the local cluster (in a fresh namespace instead of ml-demo)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Registry

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
README = Path(__file__).resolve().parent.parent / "README.md"


def sdk_block() -> str:
    text = README.read_text()
    marker = text.index("<!-- tests/test_readme_sdk.py runs this block")
    found = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert found is not None
    return found.group(1)


def test_readme_sdk_block_is_four_statements_after_its_imports() -> None:
    body = ast.parse(sdk_block()).body
    statements = [s for s in body if not isinstance(s, ast.Import | ast.ImportFrom)]
    assert len(statements) == 4, [ast.unparse(s) for s in statements]


def test_readme_sdk_block_registers_approves_and_deploys(
    cluster: Cluster, registry: Registry, registries: Registries, tmp_path: Path, dev_env: Any
) -> None:
    registry.model(
        "fraud-detector",
        approvalPolicy={"approvers": {"groups": ["ml-approvers"]}, "selfApproval": "Forbidden"},
    )
    image = registries.push("serving/sklearn", "1.5")
    model = tmp_path / "model"  # what the training script wrote
    model.mkdir()
    (model / "model.txt").write_text("weights\n")
    code = sdk_block().replace('"ml-demo"', f'"{registry.namespace}"')
    env = {
        **os.environ,
        **cluster.env,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{dev_env.tools.bin_path}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    md = registry.get("modeldeployments", "fraud-detector-sdk")
    current = md["status"]["currentVersion"]
    versions = registry.api().list_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "modelversions"
    )["items"]
    (mv,) = versions
    assert current["name"] == mv["metadata"]["name"]
    assert mv["status"]["registeredBy"] == "dana"
    assert [(d["user"], d["decision"]) for d in mv["status"]["approval"]["decisions"]] == [
        ("alice", "Approved")
    ]
    assert mv["status"]["image"]["resolved"] == image.pinned
    # the Python environment was captured as lineage without being asked
    assert any(k.startswith("lineage.modelreg.dev/python") for k in mv["spec"]["tags"]), mv["spec"]
