"""The Helm chart, rendered (no cluster): lint, values, CRDs, webhook, RBAC, secrets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelreg
from modelreg.devenv.tools import ensure_tools
from tests.charts.support import CHART, CI_VALUES, REPO, helm, of_kind, render

KOPF_WEBHOOKS = """
import json
from kopf._cogs.structs.references import Resource
from kopf._core.engines.admission import build_webhooks
from kopf._core.intents.causes import WebhookType
from kopf._core.intents.registries import get_default_registry
import modelreg.controller.handlers
from modelreg.api import GROUP, VERSION
handlers = get_default_registry()._webhooks.get_all_handlers()
print(json.dumps({
    kind: build_webhooks(
        [h for h in handlers if h.reason == reason],
        resources=[
            Resource(GROUP, VERSION, p)
            for p in ("modelversions", "modeldeployments", "registeredmodels")
        ],
        name_suffix="modelreg.dev",
        client_config={"service": {"name": "x", "namespace": "y", "path": "", "port": 443}},
    )
    for kind, reason in (
        ("MutatingWebhookConfiguration", WebhookType.MUTATING),
        ("ValidatingWebhookConfiguration", WebhookType.VALIDATING),
    )
}))
"""


@pytest.fixture(scope="module")
def helm_bin() -> str:
    return ensure_tools(quiet=True)["helm"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_lint_is_clean(helm_bin: str, values: Path) -> None:
    out = helm(
        helm_bin, "lint", "--strict", str(CHART), "-f", str(values), "--kube-version", "1.37.2"
    )
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out, out
    assert "[ERROR]" not in out, out


def test_chart_follows_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == modelreg.__version__


def _leaves(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """The values' names, down to those the schema gives no properties (free-form maps
    such as ``resources`` are one value)."""
    out = []
    for key, value in values.items():
        path, sub = f"{prefix}{key}", schema["properties"][key]
        if isinstance(value, dict) and "properties" in sub:
            out += _leaves(value, sub, f"{path}.")
        else:
            out.append(path)
    return out


def test_every_value_is_documented_by_a_comment_starting_with_its_name() -> None:
    text = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    documented = set(re.findall(r"^\s*# ([A-Za-z0-9_.]+) --", text, re.MULTILINE))
    undocumented = [k for k in _leaves(yaml.safe_load(text), schema) if k not in documented]
    assert not undocumented, f"values.yaml: no '# <name> --' comment for {undocumented}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicas=2"], "additional properties 'replicas' not allowed"),
        (["--set", "webhook.certManager.enable=true"], "'enable' not allowed"),
        (["--set", "replicaCount=2"], "maximum"),
        (["--set", "logLevel=trace"], "logLevel"),
        (["--set", "image.digest=latest"], "digest"),
        (["--set", "webhook.url=http://insecure:9443"], "url"),
    ],
)
def test_schema_rejects_unknown_keys_and_bad_values(
    helm_bin: str, args: list[str], message: str
) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        render(helm_bin, *args)


def _strip_chart_metadata(crd: dict[str, Any]) -> dict[str, Any]:
    meta = crd["metadata"]
    meta.pop("annotations", None)
    meta["labels"] = {"app.kubernetes.io/part-of": "modelreg"}
    return crd


def test_chart_crds_are_crds_dir_plus_labels_and_keep_policy(helm_bin: str) -> None:
    objects = render(helm_bin)
    rendered = {c["metadata"]["name"]: c for c in of_kind(objects, "CustomResourceDefinition")}
    checked_in = {
        p.name.removesuffix(".yaml"): yaml.safe_load(p.read_text())
        for p in (REPO / "crds").glob("*.yaml")
    }
    assert set(rendered) == set(checked_in)
    for name, crd in rendered.items():
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "r1"
        assert _strip_chart_metadata(crd) == checked_in[name], f"{name} differs from crds/"
    without = render(helm_bin, "--set", "crds.keep=false")
    crds = of_kind(without, "CustomResourceDefinition")
    assert [c for c in crds if "annotations" in c["metadata"]] == []
    assert not of_kind(render(helm_bin, "--set", "crds.enabled=false"), "CustomResourceDefinition")


def test_webhook_configuration_is_what_kopf_would_generate(helm_bin: str) -> None:
    """The chart's webhook configuration and the operator agree: same webhook names,
    rules, paths and policies as kopf builds from the registered handlers (computed in a
    subprocess: importing the handlers here would register them with kopf's default
    registry for every later in-process kopf run of the session)."""
    expected = json.loads(
        subprocess.run(
            [sys.executable, "-c", KOPF_WEBHOOKS],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    objects = render(helm_bin)
    assert set(expected) == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    names = set()
    for kind, hooks in expected.items():
        assert hooks, f"the operator registers no {kind} webhook"
        (config,) = of_kind(objects, kind)
        names.add(config["metadata"]["name"])
        assert [w["name"] for w in config["webhooks"]] == [w["name"] for w in hooks]
        for got, want in zip(config["webhooks"], hooks, strict=True):
            for key in ("rules", "sideEffects", "failurePolicy", "matchPolicy"):
                assert got[key] == want[key], key
            service = got["clientConfig"]["service"]
            assert service["path"] == want["clientConfig"]["service"]["path"]
            assert service["name"] == "r1-modelreg"
            assert service["port"] == 443
    # one name for both: the operator writes its CA into both (bootstrap.inject_ca_bundle)
    (config_name,) = names
    (service,) = of_kind(objects, "Service")
    (deployment,) = of_kind(objects, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = next(p for p in service["spec"]["ports"] if p["port"] == 443)
    assert port["targetPort"] == "webhook"
    webhook_port = next(p for p in container["ports"] if p["name"] == "webhook")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELREG_WEBHOOK_PORT"] == str(webhook_port["containerPort"])
    assert env["MODELREG_WEBHOOK_CONFIGURATION"] == config_name
    assert "r1-modelreg.modelreg-system.svc" in env["MODELREG_WEBHOOK_DNS_NAMES"].split(",")


def test_namespaced_mode_limits_roles_and_webhook_to_the_watched_namespaces(
    helm_bin: str,
) -> None:
    objects = render(helm_bin, "-f", str(CHART / "ci" / "namespaced-values.yaml"))
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in of_kind(objects, "Role")}
    assert roles == {
        ("team-a", "r1-modelreg"),
        ("team-b", "r1-modelreg"),
        ("modelreg-system", "r1-modelreg-self"),
    }
    cluster_roles = of_kind(objects, "ClusterRole")
    assert [r["metadata"]["name"] for r in cluster_roles] == [
        "r1-modelreg-modelreg-system-access-review",
        "r1-modelreg-modelreg-system-webhook",
    ]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (config,) = of_kind(objects, kind)
        for hook in config["webhooks"]:
            selector = hook["namespaceSelector"]["matchExpressions"][0]
            assert selector["values"] == ["team-a", "team-b"], hook["name"]
    (deployment,) = of_kind(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args
    assert "--namespace=team-b" in args


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_rbac_is_least_privilege(helm_bin: str, values: Path) -> None:
    objects = render(helm_bin, "-f", str(values))
    for role in of_kind(objects, "ClusterRole") + of_kind(objects, "Role"):
        for rule in role["rules"]:
            where = f"{role['kind']} {role['metadata']['name']}: {rule}"
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], where
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
                rule["verbs"]
            ), where
            if "secrets" in rule["resources"]:
                # read one by name; write only the release's own, named Secrets
                assert set(rule["verbs"]) <= {"get", "update"}, where
                if "update" in rule["verbs"]:
                    assert role["kind"] == "Role", where
                    assert rule.get("resourceNames"), where
            if "configmaps" in rule["resources"]:
                # the version-number marks: only in the operator's own namespace, and
                # never deleted (a deleted mark would let numbers be reused)
                assert role["kind"] == "Role", where
                assert role["metadata"]["namespace"] == "modelreg-system", where
                assert set(rule["verbs"]) == {"get", "create", "update"}, where
            if {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} & set(
                rule["resources"]
            ):
                assert rule.get("resourceNames"), where
    for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
        assert binding["roleRef"]["name"] not in {"cluster-admin", "admin", "edit"}
    (own,) = [r for r in of_kind(objects, "Role") if r["metadata"]["name"].endswith("-self")]
    assert any("configmaps" in rule["resources"] for rule in own["rules"])


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_no_secret_value_is_ever_rendered(helm_bin: str, values: Path) -> None:
    objects = render(helm_bin, "-f", str(values))
    for secret in of_kind(objects, "Secret"):
        assert not {"data", "stringData"} & set(secret), secret["metadata"]["name"]
    (deployment,) = of_kind(objects, "Deployment")
    for env in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if re.search(r"PASSWORD|TOKEN|ACCESS_KEY|SECRET_KEY|RECORD_KEY$", env["name"]):
            assert "valueFrom" in env, env["name"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_operator_pod_is_hardened(helm_bin: str, values: Path) -> None:
    (deployment,) = of_kind(render(helm_bin, "-f", str(values)), "Deployment")
    spec = deployment["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["replicas"] == 1
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}  # noqa: S108


def test_image_is_pinned_by_digest_when_given_and_doubles_as_storage_initializer(
    helm_bin: str,
) -> None:
    objects = render(helm_bin, "-f", str(CHART / "ci" / "production-values.yaml"))
    (deployment,) = of_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == (
        "registry.internal/platform/modelreg@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELREG_STORAGE_INITIALIZER_IMAGE"] == container["image"]
    assert env["MODELREG_S3_ENDPOINT"] == "https://s3.internal"
    assert env["MODELREG_INSECURE_REGISTRIES"] == "mirror.internal:5000"
    assert env["MODELREG_MAX_HASH_BYTES"] == "1073741824"
    (default,) = of_kind(render(helm_bin), "Deployment")
    image = default["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/modelreg/modelreg:{modelreg.__version__}"


def test_cert_manager_mode_mounts_its_secret_and_asks_for_ca_injection(helm_bin: str) -> None:
    objects = render(helm_bin, "-f", str(CHART / "ci" / "cert-manager-values.yaml"))
    (cert,) = of_kind(objects, "Certificate")
    assert cert["spec"]["secretName"] == "r1-modelreg-webhook-tls"
    assert "r1-modelreg.modelreg-system.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
    assert not of_kind(objects, "Issuer")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (config,) = of_kind(objects, kind)
        assert config["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": "modelreg-system/r1-modelreg-webhook"
        }
    # the chart leaves the Secret to cert-manager, and the operator no webhook RBAC
    assert [s["metadata"]["name"] for s in of_kind(objects, "Secret")] == ["r1-modelreg-record-key"]
    (deployment,) = of_kind(objects, "Deployment")
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MODELREG_WEBHOOK_CERT_FILE" in env
    assert "MODELREG_WEBHOOK_TLS_SECRET" not in env
    self_signed = render(helm_bin, "--set", "webhook.certManager.enabled=true")
    assert [i["spec"] for i in of_kind(self_signed, "Issuer")] == [{"selfSigned": {}}]
