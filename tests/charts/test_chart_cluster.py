"""The Helm chart against the real cluster: server-side dry runs of every values file, and
install → register, approve, deploy through the chart's operator → upgrade → uninstall.

The local cluster runs no containers (KWOK fakes the kubelet), so the chart's operator
Deployment cannot run the image. The test runs the operator from this checkout instead,
"image-equivalent": with exactly the arguments and environment the chart renders, under
the chart's ServiceAccount (a token from the TokenRequest API), so its RBAC is what is
tested. The API server reaches it through ``webhook.url`` (its documented out-of-cluster
mode); the Service path of the webhook is checked by the dry runs and tests/charts/test_chart.py.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest
import yaml

from modelreg.devenv.layout import free_ports
from tests.charts.support import CHART, CI_VALUES, helm, of_kind, render
from tests.controller.test_deployments import MD, deployment, ready_version, served
from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Artifacts, Registry, denied, stopped, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]

#: cert-manager is not installed in the local cluster (no container images here): its
#: objects are checked by tests/charts/test_chart.py only.
CERT_MANAGER_KINDS = {"Certificate", "Issuer"}


def ensure_namespaces(cluster: Cluster, *names: str) -> None:
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_rendered_chart_is_accepted_by_the_api_server(
    cluster: Cluster, modelreg_crds: list[str], values: Path
) -> None:
    objects = render(cluster.helm_bin, "-f", str(values), namespace="modelreg-dry-run")
    ensure_namespaces(cluster, "modelreg-dry-run", "team-a", "team-b")
    applied = [o for o in objects if o["kind"] not in CERT_MANAGER_KINDS]
    if "cert-manager" not in values.name:
        assert applied == objects
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "--field-manager=helm-dry-run",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(applied),
    )
    assert result.stdout.count("(server dry run)") == len(applied), result.stdout


# --- install, use, upgrade, uninstall ----------------------------------------------------


def sa_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that acts as the ServiceAccount, with a short-lived token."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    return path


def container_env(cluster: Cluster, namespace: str, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would resolve it."""
    core = kubernetes.client.CoreV1Api(cluster.api())
    env = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom") or {}
        if "value" in var:
            env[var["name"]] = var["value"]
        elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = namespace
        elif "secretKeyRef" in ref:
            key = ref["secretKeyRef"]
            secret = core.read_namespaced_secret(key["name"], namespace)
            env[var["name"]] = base64.b64decode(secret.data[key["key"]]).decode()
        else:
            raise AssertionError(f"cannot resolve {var}")
    return env


@contextlib.contextmanager
def chart_operator(cluster: Cluster, release: str, namespace: str, workdir: Path) -> Iterator[Path]:
    """Run the operator the release's Deployment describes, as its ServiceAccount."""
    manifest = list(
        yaml.safe_load_all(
            helm(cluster.helm_bin, "get", "manifest", release, "-n", namespace, env=cluster.env)
        )
    )
    (dep,) = of_kind([m for m in manifest if m], "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    kubeconfig = sa_kubeconfig(cluster, namespace, pod["serviceAccountName"], workdir / "sa.yaml")
    log = workdir / "operator.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "KUBECONFIG": str(kubeconfig),
        **container_env(cluster, namespace, container),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelreg", *container["args"]],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def released_objects(cluster: Cluster, release: str, namespace: str) -> list[str]:
    """Every object labelled as part of the release, CRDs aside."""
    selector = f"app.kubernetes.io/instance={release}"
    namespaced = "deployments,services,secrets,serviceaccounts,roles,rolebindings,configmaps"
    cluster_scoped = (
        "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,"
        "validatingwebhookconfigurations"
    )
    out = cluster.kubectl("get", namespaced, "-n", namespace, "-l", selector, "-o", "name").stdout
    out += cluster.kubectl("get", cluster_scoped, "-l", selector, "-o", "name").stdout
    return sorted(out.split())


def adopt_crds(cluster: Cluster, crds: list[str], release: str | None, namespace: str) -> None:
    """Hand the CRDs applied from crds/ over to the release (Helm's adoption of existing
    objects, as when moving from `kubectl apply -f crds/` to the chart), or back."""
    if release:
        cluster.kubectl(
            "annotate", "--overwrite", *crds,
            f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
        )  # fmt: skip
        cluster.kubectl("label", "--overwrite", *crds, "app.kubernetes.io/managed-by=Helm")
    else:
        cluster.kubectl(
            "annotate", *crds, "meta.helm.sh/release-name-", "meta.helm.sh/release-namespace-",
            "helm.sh/resource-policy-",
        )  # fmt: skip


def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    core = kubernetes.client.CoreV1Api(cluster.api())
    return dict(core.read_namespaced_secret(name, namespace).data or {})


def test_helm_install_serves_approved_versions_then_upgrades_and_uninstalls_cleanly(
    cluster: Cluster,
    dev_env: Any,
    modelreg_crds: list[str],
    registry: Registry,
    artifacts: Artifacts,
    registries: Registries,
    tmp_path: Path,
) -> None:
    release, ns = "mr", f"modelreg-{uuid.uuid4().hex[:6]}"
    webhook, health, metrics = free_ports(3)
    v = cluster.env
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "webhook": {"port": webhook, "url": f"https://127.0.0.1:{webhook}"},
                "healthPort": health,
                "metrics": {"port": metrics},
                # the local environment's registries are on loopback
                "egress": {"allowedAddresses": ["127.0.0.0/8"]},
                # what the cluster admin lets the test's namespace use: its bucket and
                # the public registry only
                "sources": {
                    "allowed": {
                        registry.namespace: {
                            "artifacts": [f"s3://{artifacts.bucket}/"],
                            "images": [f"{registries.public}/"],
                        }
                    }
                },
                "s3": {
                    "endpoint": v["MODELREG_S3_ENDPOINT"],
                    "region": v["AWS_DEFAULT_REGION"],
                    "credentialsSecret": "s3-credentials",
                },
            }
        )
    )
    ensure_namespaces(cluster, ns)
    cluster.kubectl(
        "create", "secret", "generic", "s3-credentials", "-n", ns,
        f"--from-literal=AWS_ACCESS_KEY_ID={v['AWS_ACCESS_KEY_ID']}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={v['AWS_SECRET_ACCESS_KEY']}",
    )  # fmt: skip
    helm_env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(tmp_path)}
    config_name = f"{release}-modelreg.{ns}.modelreg.dev"
    admission = kubernetes.client.AdmissionregistrationV1Api(cluster.api())
    installed = False
    with stopped(dev_env, "operator"):
        # the development operator's own webhook configuration would answer too
        cluster.kubectl(
            "delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "modelreg.dev"
        )
        adopt_crds(cluster, modelreg_crds, release, ns)
        try:
            notes = helm(
                cluster.helm_bin, "install", release, str(CHART), "-n", ns, "-f", str(values),
                env=helm_env,
            )  # fmt: skip
            installed = True
            assert f"rollout status deployment/{release}-modelreg" in notes
            assert "watches all namespaces" in notes
            before = released_objects(cluster, release, ns)
            for kind in ("mutating", "validating"):
                assert (
                    f"{kind}webhookconfiguration.admissionregistration.k8s.io/{config_name}"
                    in before
                )

            with chart_operator(cluster, release, ns, tmp_path) as log:
                wait_for(
                    "the chart's operator to be healthy",
                    lambda: _ok(f"http://127.0.0.1:{health}/healthz"),
                    timeout=60,
                )
                # it issued its certificate into the chart's Secret and wrote the CA
                tls = secret_data(cluster, ns, f"{release}-modelreg-webhook-tls")
                assert set(tls) == {"ca.crt", "tls.crt", "tls.key"}
                for read in (
                    admission.read_mutating_webhook_configuration,
                    admission.read_validating_webhook_configuration,
                ):
                    for hook in read(config_name).webhooks:
                        assert hook.client_config.ca_bundle == tls["ca.crt"], hook.name
                record_key = secret_data(cluster, ns, f"{release}-modelreg-record-key")
                assert set(record_key) == {"record-key"}

                # register (through the chart's webhook), verify, approve, deploy
                registry.model("m")
                img, _ = ready_version(registry, artifacts, registries, "v1", "m")
                mv = registry.get("modelversions", "v1")
                assert mv["metadata"]["annotations"]["modelreg.dev/number"] == "1"
                assert mv["metadata"]["annotations"]["modelreg.dev/registered-by"] == "dana"
                deployment(registry)
                served(registry, "v1")
                apps = kubernetes.client.AppsV1Api(cluster.api())
                dep = apps.read_namespaced_deployment("serve", registry.namespace)
                assert dep.spec.template.spec.containers[0].image == img.pinned
                # a source the admin does not allow this namespace is refused at once
                message = denied(
                    lambda: registry.version(
                        "elsewhere", "m", {"uri": "s3://another-teams-bucket/model.bin"},
                        img.reference,
                    )
                )  # fmt: skip
                assert "not in a source a cluster admin allows namespace" in message
                # nothing unapproved: a version nobody approved does not roll out
                ready_version(registry, artifacts, registries, "v2", "m", approve=False)
                time.sleep(2)
                assert registry.get(MD, "serve")["status"]["currentVersion"]["name"] == "v1"

                scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text
                assert (
                    'modelreg_admission_reviews_total{operation="CREATE",result="allowed",'
                    'webhook="approval-record"}'
                ) in scraped
                assert 'kind="ModelVersion",reason="VersionReady"' in scraped

                # upgrade: a changed value; certificate and record key are kept
                helm(
                    cluster.helm_bin, "upgrade", release, str(CHART), "-n", ns,
                    "-f", str(values), "--set", "logLevel=debug", env=helm_env,
                )  # fmt: skip
                assert secret_data(cluster, ns, f"{release}-modelreg-webhook-tls") == tls
                assert secret_data(cluster, ns, f"{release}-modelreg-record-key") == record_key
                assert released_objects(cluster, release, ns) == before
                manifest = helm(
                    cluster.helm_bin, "get", "manifest", release, "-n", ns, env=helm_env
                )
                assert manifest.count("kind: CustomResourceDefinition") == 3
                assert "--verbose" in manifest
                # the operator kept working through the upgrade
                registry.approve("v2", "alice")
                served(registry, "v2")
            operator_log = log.read_text()
            # no RBAC gap: nothing forbidden, except creates in namespaces other tests are
            # deleting (this operator watches all namespaces)
            forbidden = [
                line
                for line in operator_log.splitlines()
                if "Forbidden" in line and "NamespaceTerminating" not in line
            ]
            assert not forbidden, "\n".join(forbidden)
            assert "Traceback" not in operator_log, operator_log

            helm(cluster.helm_bin, "uninstall", release, "-n", ns, "--wait", env=helm_env)
            installed = False
            assert released_objects(cluster, release, ns) == []
            # CRDs are kept, and with them every model, version and deployment
            cluster.kubectl("get", *modelreg_crds)
            assert registry.get(MD, "serve")["status"]["currentVersion"]["name"] == "v2"
        finally:
            if installed:
                helm(cluster.helm_bin, "uninstall", release, "-n", ns, env=helm_env)
            adopt_crds(cluster, modelreg_crds, None, ns)
            kubernetes.client.CoreV1Api(cluster.api()).delete_namespace(ns)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_readme_helm_install_command_is_accepted(
    cluster: Cluster, modelreg_crds: list[str], tmp_path: Path
) -> None:
    """The README's install command, as written, renders against the cluster, and what it
    renders passes the API server's own validation (server-side dry run)."""
    readme = (CHART.parents[1] / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if line.startswith("helm install ")]
    args = shlex.split(command)[1:]
    args[args.index("charts/modelreg")] = str(CHART)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(tmp_path)}
    # the test cluster's CRDs come from crds/: Helm renders over them only once adopted
    adopt_crds(cluster, modelreg_crds, "modelreg", "modelreg-system")
    try:
        out = helm(cluster.helm_bin, *args, "--dry-run=server", env=env)
    finally:
        adopt_crds(cluster, modelreg_crds, None, "modelreg-system")
    manifests = out.split("MANIFEST:", 1)[1].split("NOTES:", 1)[0]
    objects = [o for o in yaml.safe_load_all(manifests) if o]
    assert {o["kind"] for o in objects} >= {
        "Deployment",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
    ensure_namespaces(cluster, "modelreg-system")
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts",
        "--field-manager=helm-dry-run", "-f", "-",
        stdin=yaml.safe_dump_all(objects),
    )  # fmt: skip
    assert result.stdout.count("(server dry run)") == len(objects), result.stdout
