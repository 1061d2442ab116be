"""Session fixtures: the cluster (local by default, kind with --cluster=kind), per-test
namespaces, per-user API clients, S3 buckets, registries and a kopf operator runner.

Tests marked ``cluster`` need them; everything else is a fast unit test.
"""

from __future__ import annotations

import gc
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from modelreg import devenv
from modelreg.devenv import components as devenv_components
from modelreg.devenv import manifests
from modelreg.devenv.s3 import client as s3_client
from tests.support.cluster import Cluster, Registries, environ

REPO = Path(__file__).resolve().parent.parent

#: the test servers (registries, HTTPS artifacts) are on loopback, which the operator's
#: checks reach only when allowed (verify/egress.py; the local environment allows it for
#: its operator the same way)
os.environ.setdefault("MODELREG_ALLOWED_ADDRESSES", devenv_components.LOOPBACK)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelreg")
    group.addoption(
        "--cluster",
        choices=["local", "kind"],
        default=os.environ.get("MODELREG_TEST_CLUSTER", "local"),
        help="local: the environment of `modelreg dev up` (default); kind: pytest-kind (Docker)",
    )
    group.addoption(
        "--no-real-node",
        action="store_true",
        default=os.environ.get("MODELREG_TEST_REAL_NODE", "1") == "0",
        help="start the local environment without its real node (kubelet, containerd): the "
        "tests that need real pods are then skipped, saying so (MODELREG_TEST_REAL_NODE=0)",
    )
    group.addoption(
        "--keep-env",
        action="store_true",
        help="leave the local test environment running after the session (faster reruns)",
    )


#: Fixtures that need the local environment's operator (started by `modelreg dev up`
#: against its own API server): a test using one is marked ``local_env``.
OPERATOR_FIXTURES = frozenset({"registry"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if OPERATOR_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.local_env)
    if config.getoption("--cluster") != "kind":
        return
    # Under kind the session starts no operator (no control plane of its own), and kind's
    # API server, in a container, cannot call a webhook or pull from a registry on the
    # host's 127.0.0.1; KWOK's fake kubelet and the static-token users do not exist there.
    operator = pytest.mark.skip(
        reason="needs the local environment's operator, webhooks or 127.0.0.1 servers as "
        "the cluster sees them (not started under --cluster=kind)"
    )
    kwok = pytest.mark.skip(reason="needs KWOK's fake kubelet or static users (local cluster only)")
    for item in items:
        if "local_env" in item.keywords:
            item.add_marker(operator)
        elif "kwok" in item.keywords:
            item.add_marker(kwok)


@pytest.fixture(scope="session")
def dev_env(request: pytest.FixtureRequest) -> Iterator[devenv.Environment]:
    """The local environment in .dev-test/ (or $MODELREG_TEST_DEV_DIR), started if needed.

    If it already runs (``--keep-env`` last time) it is reused; otherwise it starts from
    an empty directory and is stopped after the session.
    """
    root = Path(os.environ.get("MODELREG_TEST_DEV_DIR", REPO / ".dev-test"))
    kind = request.config.getoption("--cluster") == "kind"
    was_running = root.exists() and all(s.ok for s in devenv.status(root))
    if not was_running:
        devenv.down(root, log=lambda _: None)
        shutil.rmtree(root, ignore_errors=True)
    real_node = not request.config.getoption("--no-real-node")
    env = devenv.up(root, log=print, control_plane=not kind, real_node=real_node)
    yield env
    if not was_running and not request.config.getoption("--keep-env"):
        devenv.down(root, log=lambda _: None)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, dev_env: devenv.Environment) -> Iterator[Cluster]:
    """The cluster under test, with API clients and kubectl per person."""
    tools = dev_env.tools
    if request.config.getoption("--cluster") == "kind":
        kind = request.getfixturevalue("kind_cluster")
        c = Cluster(
            "kind",
            Path(kind.kubeconfig_path),
            str(kind.kubectl_path),
            tools["crane"],
            tools["helm"],
            dev_env.env_vars(),
        )
        c.env["KUBECONFIG"] = str(kind.kubeconfig_path)
    else:
        c = Cluster(
            "local",
            dev_env.layout.kubeconfig,
            tools["kubectl"],
            tools["crane"],
            tools["helm"],
            dev_env.env_vars(),
        )
    yield c
    c.close()


@pytest.fixture(scope="session")
def modelreg_crds(cluster: Cluster) -> list[str]:
    """modelreg's CRDs from crds/, applied and Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    names = [f"crd/{p.name.removesuffix('.yaml')}" for p in sorted((REPO / "crds").glob("*.yaml"))]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names


def _fresh_namespace(cluster: Cluster, name: str, objects: list[Any]) -> Iterator[str]:
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=modelreg-tests",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
    )
    yield name
    core = kubernetes.client.CoreV1Api(cluster.api())
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace where every person may work with modelreg objects (as ml-demo)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield from _fresh_namespace(cluster, name, manifests.demo_namespace_objects(name))


@pytest.fixture(scope="session")
def real_node(request: pytest.FixtureRequest, dev_env: devenv.Environment) -> devenv.Environment:
    """The local environment, whose real node (kubelet, containerd, runc) is Ready.

    Skipped, saying why, where the session runs without it (``--no-real-node``, or under
    kind, whose nodes are not this environment's); never passed without a real pod.
    """
    if request.config.getoption("--cluster") == "kind":
        pytest.skip("needs the local environment's real node (not started under --cluster=kind)")
    if "kubelet" in dev_env.layout.load_disabled():
        pytest.skip(
            "needs the local environment's real node, which this session left out "
            "(--no-real-node or MODELREG_TEST_REAL_NODE=0)"
        )
    if not dev_env.node_ready():
        pytest.fail(f"the real node is not Ready; see {dev_env.layout.log('kubelet')}")
    return dev_env


@pytest.fixture
def real_namespace(cluster: Cluster, real_node: devenv.Environment) -> Iterator[str]:
    """A fresh namespace as :func:`namespace`, whose pods all run on the real node, with
    the storage Secret (``model-store``) its storage-initializers use, as ml-demo has."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    s = real_node.secrets
    objects = manifests.real_node_namespace_objects(
        name,
        real_node.node_s3_endpoint,
        s.s3_access_key,
        s.s3_secret_key,
        devenv_components.S3_REGION,
    )
    yield from _fresh_namespace(cluster, name, objects)


@pytest.fixture(scope="session")
def s3(dev_env: devenv.Environment) -> Any:
    """A boto3 S3 client for the environment's S3 server (MinIO)."""
    v = dev_env.env_vars()
    return s3_client(
        v["MODELREG_S3_ENDPOINT"],
        v["AWS_ACCESS_KEY_ID"],
        v["AWS_SECRET_ACCESS_KEY"],
        v["AWS_DEFAULT_REGION"],
    )


@pytest.fixture
def s3_bucket(s3: Any) -> Iterator[str]:
    """A fresh, versioned, empty bucket; emptied and deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def registries(dev_env: devenv.Environment, tmp_path_factory: pytest.TempPathFactory) -> Registries:
    """Push test images to the anonymous and the htpasswd-protected registry."""
    v = dev_env.env_vars()
    return Registries(
        dev_env.tools["crane"],
        v["MODELREG_REGISTRY"],
        v["MODELREG_PRIVATE_REGISTRY"],
        v["MODELREG_PRIVATE_REGISTRY_USERNAME"],
        v["MODELREG_PRIVATE_REGISTRY_PASSWORD"],
        tmp_path_factory.mktemp("registries"),
    )


@pytest.fixture(scope="session")
def kopf_operator(cluster: Cluster) -> Callable[..., AbstractContextManager[Any]]:
    """Run a kopf operator (handler modules by path) against the cluster, in-process.

    ``with kopf_operator("handlers.py", namespace="t-...") as runner: ...``; on exit the
    runner must have stopped cleanly, and its output is available as ``runner.output``.
    """
    from kopf.testing import KopfRunner

    @contextmanager
    def run(*paths: str, namespace: str | None = None) -> Iterator[Any]:
        scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
        with (
            environ({"KUBECONFIG": str(cluster.kubeconfig)}),
            KopfRunner(["run", "--standalone", *scope, *paths], timeout=60) as runner,
        ):
            yield runner
        # kopf's in-process runner can leave its API client's sockets to the garbage
        # collector; collected later, they failed whatever test ran then (an unclosed
        # transport warning, seen in test_operator_kills). Collect them here, where they
        # are known to be the runner's.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        assert runner.exit_code == 0, runner.output
        assert runner.exception is None, runner.output

    return run


@pytest.fixture
def registry(cluster: Cluster, namespace: str, modelreg_crds: list[str]) -> Any:
    """modelreg objects in the test's namespace, as any user (operator running)."""
    from tests.support.modelreg import Registry

    return Registry(cluster, namespace)


@pytest.fixture
def artifacts(s3: Any, s3_bucket: str) -> Any:
    from tests.support.modelreg import Artifacts

    return Artifacts(s3, s3_bucket)
