"""examples/ and the README's Quick start work as written, against the real cluster.

Without a cluster: the sha256 written in the manifests is what hack/seed-examples.py
uploads, everything the examples name is seeded, and the documents' commands are
runnable (nothing skipped but setup, no unbounded watches).

With the cluster: every manifest, rendered with envsubst, passes a server-side dry run;
the README's Quick start and every example's README run command by command, exactly as
written (only the env.sh path and the namespace are the test's), and then the end
state is checked: what runs, which version, which digest, which decisions.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes
import pytest
import yaml

from modelreg.devenv import components, node
from tests.support import readme
from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Registry, wait_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*/*.yaml"))
EXAMPLE_READMES = sorted(p.parent.name for p in EXAMPLES.glob("*/README.md"))
README = REPO / "README.md"
QUICK_START = "Quick start"
MD, MV = "modeldeployments", "modelversions"

#: every command the documents show but these tests do not run, and what runs it instead
SKIPPED = {
    "bash hack/up.sh": ".ci/run installs (hack/install-deps.sh), the session fixture starts "
    "the environment, the `seeded` fixture runs hack/seed-examples.py",
    ".venv/bin/modelreg dev down": "tests/devenv/test_lifecycle.py (here it would stop the "
    "test session's environment)",
    "bash hack/test.sh": ".ci/run",
}
ENV_SH = ". .dev/env.sh"  # the documents' first command; the test sources its own env.sh
DEMO_NAMESPACE = "ml-demo"  # the documents' namespace; each test uses a fresh one


def documents() -> dict[str, list[readme.Command]]:
    """The runnable documents: the README's Quick start and each example's README."""
    docs = {
        f"README.md ({QUICK_START})": readme.commands(
            readme.section(README.read_text(), QUICK_START)
        )
    }
    for name in EXAMPLE_READMES:
        docs[f"examples/{name}/README.md"] = readme.commands(
            (EXAMPLES / name / "README.md").read_text()
        )
    return docs


def seed_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "seed_examples", REPO / "hack" / "seed-examples.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def versions() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "ModelVersion":
                yield path, doc


# --- without a cluster ------------------------------------------------------------------


def test_artifact_checksums_are_what_the_seed_script_uploads() -> None:
    seed = seed_script()
    uploaded = seed.artifact_sha256s()
    used = set()
    for path, mv in versions():
        artifact = mv["spec"]["artifact"]
        prefix = f"s3://{components.S3_BUCKET}/"
        assert artifact["uri"].startswith(prefix), path
        key = artifact["uri"].removeprefix(prefix)
        assert key in uploaded, f"{path}: hack/seed-examples.py does not upload {key}"
        assert artifact["sha256"] == uploaded[key], f"{path}: sha256 of {key}"
        used.add(key)
    assert used == set(uploaded), "the seed script uploads artifacts no example uses"
    # byte-for-byte the same on every run: the manifests' literals stay valid
    assert seed.artifact_sha256s() == uploaded


def test_example_images_are_what_the_seed_script_pushes() -> None:
    pushed = {f"${{{var}}}/{repository}" for var, repository in seed_script().IMAGES}
    used = {mv["spec"]["image"]["reference"] for _, mv in versions()}
    assert used == pushed
    # the quickstart's versions are served by the real runtime the seed script copies in
    assert {f"${{MODELREG_REGISTRY}}/{r}" for r in seed_script().SERVING} <= used
    assert any(image.startswith("${MODELREG_PRIVATE_REGISTRY}/") for image in used)


def test_documents_are_runnable_as_written() -> None:
    skipped = set()
    for doc, cmds in documents().items():
        runnable = [c for c in cmds if not c.skipped]
        assert runnable, doc
        assert runnable[0].text == ENV_SH, f"{doc} must start with `{ENV_SH}`"
        for c in cmds:
            if c.skipped:
                assert c.text in SKIPPED, f"{doc}: {c.text!r} is skipped but not accounted for"
                skipped.add(c.text)
            # a test cannot wait for a watch to end: bounded `kubectl wait` instead
            assert not re.search(r"\s(-w|--watch)\b", c.text), f"{doc}: {c.text!r}"
            # `kubectl wait --for=jsonpath=` fails at once on an index past the end of a list
            assert not re.search(r"--for=jsonpath=\S*\[[1-9]", c.text), f"{doc}: {c.text!r}"
            assert DEMO_NAMESPACE not in c.text or f"-n {DEMO_NAMESPACE}" in c.text, c.text
    assert skipped == set(SKIPPED)


def test_up_script_applies_the_examples_as_their_readmes_do() -> None:
    """The main job ends with the examples registered: hack/up.sh runs the README's and
    the two-approvers example's apply commands, word for word."""
    script = (REPO / "hack" / "up.sh").read_text()
    applies = [line for line in script.splitlines() if line.startswith("envsubst <")]
    documented = {
        c.text
        for doc, heading in (
            (README, QUICK_START),
            (EXAMPLES / "two-approvers" / "README.md", None),
        )
        for c in readme.commands(
            readme.section(doc.read_text(), heading) if heading else doc.read_text()
        )
    }
    assert [a.split()[2] for a in applies] == [
        "examples/quickstart/fraud-detector.yaml",
        "examples/two-approvers/credit-scoring.yaml",
    ]
    assert [a for a in applies if a not in documented] == []


def test_up_script_prints_the_readme_next_steps() -> None:
    script = (REPO / "hack" / "up.sh").read_text()
    printed = script[script.index("<<NEXT\n") : script.index("\nNEXT\n")].splitlines()
    steps = [line.strip().replace("$dir/", ".dev/") for line in printed if line.startswith("  ")]
    quick_start = [c.text for c in readme.commands(readme.section(README.read_text(), QUICK_START))]
    assert steps
    assert [s for s in steps if s not in quick_start] == []
    remaining = iter(quick_start)
    assert all(step in remaining for step in steps), "not in the README's order"


def test_readme_parser() -> None:
    text = "\n".join(
        [
            "## Quick start",
            "<!-- test: skip (setup) -->",
            "```sh",
            "bash hack/up.sh",
            "```",
            "```text",
            "## not a heading: output",
            "```",
            "```sh",
            "# a comment",
            "kubectl annotate x \\",
            "  a=b",
            "kubectl --context eve annotate y a=b  # refused: eve",
            "```",
            "## Layout",
            "```sh",
            "echo elsewhere",
            "```",
        ]
    )
    cmds = readme.commands(readme.section(text, "Quick start"))
    assert cmds == [
        readme.Command("bash hack/up.sh", skipped=True, refused=False),
        readme.Command("kubectl annotate x \\\n  a=b", skipped=False, refused=False),
        readme.Command(
            "kubectl --context eve annotate y a=b  # refused: eve", skipped=False, refused=True
        ),
    ]
    shell = {"PATH": "/bin:/usr/bin"}
    failed = readme.run(
        [readme.Command("true", False, False), readme.Command("false", False, False)], REPO, shell
    )
    assert failed.returncode == 1
    assert "command 2 failed" in failed.stdout
    refused = [readme.Command("echo 'denied the request'; false  # refused", False, True)]
    assert readme.run(refused, REPO, shell).returncode == 0
    not_refused = [readme.Command("true  # refused", False, True)]
    assert "was not refused" in readme.run(not_refused, REPO, shell).stdout
    other_failure = [readme.Command("false  # refused", False, True)]
    assert "without a refusal" in readme.run(other_failure, REPO, shell).stdout


# --- against the cluster ----------------------------------------------------------------


@pytest.fixture(scope="session")
def seeded(cluster: Cluster, dev_env: Any) -> None:
    """What hack/up.sh does after `modelreg dev up`: the examples' artifacts and images."""
    env = {
        **os.environ,
        **cluster.env,
        "PATH": f"{dev_env.tools.bin_path}{os.pathsep}{os.environ['PATH']}",
    }
    for _ in range(2):  # hack/up.sh may run any number of times
        result = subprocess.run(
            [sys.executable, str(REPO / "hack" / "seed-examples.py")],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr


def render(path: Path, env: dict[str, str]) -> str:
    """The manifest as `envsubst < path` prints it, after checking every variable is set
    (envsubst silently replaces an unset one with nothing)."""
    text = path.read_text()
    for name in re.findall(r"\$\{(\w+)\}", text):
        assert env.get(name), f"{path}: ${{{name}}} is not set by env.sh"
    out = subprocess.run(
        ["envsubst"], input=text, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "$" not in out
    return out


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
@pytest.mark.cluster
@pytest.mark.kwok
def test_manifest_passes_server_side_dry_run(
    cluster: Cluster, namespace: str, modelreg_crds: list[str], path: Path
) -> None:
    rendered = render(path, {**os.environ, **cluster.env})
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    pull = sorted(
        {
            s["name"]
            for d in docs
            for s in ((d.get("spec") or {}).get("image") or {}).get("pullSecrets") or []
        }
    )
    stores = {
        ((d.get("spec") or {}).get("storage") or {}).get("secretRef", {}).get("name") for d in docs
    } - {None}
    pull = sorted({*pull, *stores})
    if pull:
        # as the example's README does (and the environment for ml-demo's model-store):
        # the admin lets dana name these Secrets
        names = [f"--resource-name={n}" for n in pull]
        cluster.kubectl(
            "-n", namespace, "create", "role", "pull", "--verb=get", "--resource=secrets", *names
        )
        cluster.kubectl(
            "-n", namespace, "create", "rolebinding", "pull", "--role=pull", "--user=dana"
        )
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", user="dana", stdin=rendered
    )
    assert result.stdout.count("(server dry run)") == len(docs), result.stdout


def run_document(
    cmds: list[readme.Command], registry: Registry, dev_env: Any, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a document's commands as a reader would, in the test's environment and namespace."""
    env_sh = f". {shlex.quote(str(dev_env.layout.env_sh))}"
    local = [
        readme.Command(
            re.sub(rf"\b{DEMO_NAMESPACE}\b", registry.namespace, c.text.replace(ENV_SH, env_sh)),
            c.skipped,
            c.refused,
        )
        for c in cmds
        if not c.skipped
    ]
    # a reader's shell: only what the documents' `. .dev/env.sh` sets, nothing of the session's
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBECONFIG" and not k.startswith(("MODELREG_", "AWS_"))
    }
    result = readme.run(local, REPO, env, timeout)
    print(result.stdout)  # the transcript, shown by pytest when the test fails
    assert result.returncode == 0, result.stdout[-8000:]
    return result


def decisions(registry: Registry, version: str) -> list[tuple[str, str]]:
    approval = registry.get(MV, version)["status"]["approval"]
    return [(d["user"], d["decision"]) for d in approval["decisions"]]


def served_v2_after_rolling_back_v3(registry: Registry) -> None:
    """The Quick start's end: v1, then v2 rolled out; v3 crashed; v2 serves again."""
    status = registry.get(MD, "fraud-detector")["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["currentVersion"]["name"] == "fraud-detector-v2"
    assert conditions["Ready"]["status"] == "True"
    rolled_back = conditions["RolledBack"]
    assert (rolled_back["status"], rolled_back["reason"]) == ("True", "RolloutFailed")
    assert "fraud-detector-v3 failed (CrashLoopBackOff)" in rolled_back["message"]
    assert [(h["name"], h["result"]) for h in status["history"]] == [
        ("fraud-detector-v2", "Succeeded"),
        ("fraud-detector-v3", "Failed"),
        ("fraud-detector-v2", "Succeeded"),
        ("fraud-detector-v1", "Succeeded"),
    ]
    assert status["history"][1]["reason"] == "CrashLoopBackOff"
    assert {"RolloutSucceeded", "RolloutFailed", "RolledBack"} <= {
        reason for reason, _ in registry.events("fraud-detector")
    }

    v2 = registry.get(MV, "fraud-detector-v2")["status"]
    dep = kubernetes.client.AppsV1Api(registry.cluster.api()).read_namespaced_deployment(
        "fraud-detector", registry.namespace
    )
    image = dep.spec.template.spec.containers[0].image
    assert image == v2["image"]["resolved"] == status["currentVersion"]["image"]
    assert "/serving/sklearn@sha256:" in image
    assert dep.spec.template.metadata.labels["modelreg.dev/version"] == str(v2["number"])
    assert dep.status.ready_replicas == dep.spec.replicas == 2

    # who decided: the approvers the document names, and nobody it shows being refused
    assert decisions(registry, "fraud-detector-v1") == [("alice", "Approved")]
    assert decisions(registry, "fraud-detector-v2") == [("bob", "Approved")]
    assert decisions(registry, "fraud-detector-v3") == [("alice", "Approved")]
    assert registry.get(MV, "fraud-detector-v1")["status"]["registeredBy"] == "dana"
    wait_for(
        "stages",
        lambda: (
            [registry.get(MV, f"fraud-detector-v{n}")["status"]["stage"] for n in (1, 2, 3)]
            == ["None", "Production", "None"]
        ),
    )


def private_image_resolved(registry: Registry, registries: Registries) -> None:
    reference = f"{registries.private}/team-churn/xgboost-server:2.0"
    status = registry.get(MV, "churn-predictor-v1")["status"]
    assert status["image"]["digest"] == registries.crane("digest", reference)
    assert status["image"]["resolved"] == (
        f"{registries.private}/team-churn/xgboost-server@{status['image']['digest']}"
    )
    assert registry.condition(MV, "churn-predictor-v1", "ArtifactVerified")["status"] == "True"
    secret = kubernetes.client.CoreV1Api(registry.cluster.api()).read_namespaced_secret(
        "team-churn-pull", registry.namespace
    )
    assert secret.type == "kubernetes.io/dockerconfigjson"


def approved_by_two(registry: Registry) -> None:
    status = registry.get(MV, "credit-scoring-v1")["status"]
    assert status["approval"]["state"] == "Approved"
    assert status["approval"]["required"] == 2
    assert decisions(registry, "credit-scoring-v1") == [
        ("alice", "Approved"),
        ("alice", "Approved"),
        ("bob", "Approved"),
    ]
    assert registry.condition(MV, "credit-scoring-v1", "Ready")["status"] == "True"


END_STATES: dict[str, Callable[[Registry, Registries], None]] = {
    "quickstart": lambda registry, _: served_v2_after_rolling_back_v3(registry),
    "private-registry": private_image_resolved,
    "two-approvers": lambda registry, _: approved_by_two(registry),
}


@pytest.fixture
def quickstart_registry(
    cluster: Cluster, real_namespace: str, modelreg_crds: list[str]
) -> Registry:
    """A namespace like the environment's ml-demo: its pods on the real node, with the
    storage Secret the Quick start's deployment names."""
    return Registry(cluster, real_namespace)


def served_for_real(registry: Registry, transcript: str) -> None:
    """The pods ran on the real node: the storage-initializer fetched, checked and
    unpacked the artifact, and MLServer answered the prediction the README shows."""
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    pods = core.list_namespaced_pod(
        registry.namespace, label_selector="modelreg.dev/deployment=fraud-detector"
    ).items
    running = [p for p in pods if p.metadata.labels["modelreg.dev/version"] == "2"]
    assert len(running) == 2
    for p in running:
        assert p.spec.node_name == node.NODE_NAME
        (init,) = p.status.init_container_statuses or []
        assert init.state.terminated.exit_code == 0
        assert init.image_id.split("@")[-1] == real_storage_initializer_digest(registry)
        log = core.read_namespaced_pod_log(p.metadata.name, registry.namespace, container=init.name)
        assert "(sha256 verified)" in log
        assert "unpacked" in log
    assert '"model_name":"fraud-detector"' in transcript
    assert '"data":[1,0]' in transcript  # the first transaction is fraud, the second not


def real_storage_initializer_digest(registry: Registry) -> str:
    env = registry.cluster.env
    return env["MODELREG_MODELREG_IMAGE"].split("@")[-1]


@pytest.mark.cluster
@pytest.mark.kwok
@pytest.mark.timeout(900)
def test_readme_quick_start_end_to_end(
    quickstart_registry: Registry, dev_env: Any, seeded: None
) -> None:
    registry = quickstart_registry
    cmds = readme.commands(readme.section(README.read_text(), QUICK_START))
    result = run_document(cmds, registry, dev_env, timeout=600)
    assert "denied the request: user 'eve' is not an approver" in result.stdout
    served_v2_after_rolling_back_v3(registry)
    served_for_real(registry, result.stdout)


@pytest.mark.parametrize("example", EXAMPLE_READMES)
@pytest.mark.cluster
@pytest.mark.kwok
def test_example_readme_end_to_end(
    request: pytest.FixtureRequest,
    registries: Registries,
    dev_env: Any,
    seeded: None,
    example: str,
) -> None:
    assert set(EXAMPLE_READMES) == set(END_STATES)
    # the quickstart's pods run for real, in a namespace like ml-demo
    fixture = "quickstart_registry" if example == "quickstart" else "registry"
    registry: Registry = request.getfixturevalue(fixture)
    cmds = readme.commands((EXAMPLES / example / "README.md").read_text())
    run_document(cmds, registry, dev_env, timeout=600)
    END_STATES[example](registry, registries)
