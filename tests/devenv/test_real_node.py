"""The real node: real pods on a kubelet, containerd and runc, as the API server sees them.

Every pod here runs for real (namespaces from ``real_namespace`` select the real node);
the failures are real processes failing, reported by the real kubelet.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from typing import Any

import httpx
import pytest

from modelreg import devenv, rollout
from modelreg.devenv import images
from modelreg.devenv import node as nodecfg
from tests.support.cluster import Cluster
from tests.support.modelreg import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def busybox(real_node: devenv.Environment) -> str:
    """Debian's static busybox as an image in the environment's registry, by digest."""
    return images.ensure(real_node.tools["crane"], real_node.registry, images.busybox())


def pod(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": spec.pop("restartPolicy", "Always"),
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
            "containers": [
                {"name": "main", "image": image, "command": command, **spec.pop("main", {})}
            ],
            **spec,
        },
    }


def kubectl(cluster: Cluster, *args: str) -> str:
    return cluster.kubectl(*args).stdout


def create(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(obj))


def get_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = kubectl(cluster, "-n", namespace, "get", "pod", name, "-o", "json")
    result: dict[str, Any] = json.loads(out)
    return result


def finished(cluster: Cluster, namespace: str, name: str) -> None:
    """Wait until the pod's container has terminated."""
    wait_for(
        f"{name} to finish",
        lambda: (
            container_state(get_pod(cluster, namespace, name)).get("state", {}).get("terminated")
        ),
        timeout=60,
    )


def container_state(p: dict[str, Any]) -> dict[str, Any]:
    statuses = p.get("status", {}).get("containerStatuses") or [{}]
    state: dict[str, Any] = statuses[0]
    return state


def test_the_node_is_ready_tainted_and_reached_by_its_address(
    cluster: Cluster, real_node: devenv.Environment
) -> None:
    node = json.loads(kubectl(cluster, "get", "node", nodecfg.NODE_NAME, "-o", "json"))
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.37.2"
    assert info["containerRuntimeVersion"].startswith("containerd://2.")
    assert node["metadata"]["labels"][nodecfg.LABEL] == nodecfg.LABEL_VALUE
    assert {"key": nodecfg.TAINT_KEY, "value": "true", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == real_node.node.node_ip
    # the kubelet's API is not reachable from the host's loopback: only through the veth
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", nodecfg.KUBELET_PORT), timeout=1).close()


def test_a_pod_elsewhere_never_lands_on_the_real_node(cluster: Cluster, namespace: str) -> None:
    """A namespace that does not select the real node keeps KWOK's fake pods (the taint)."""
    create(cluster, namespace, pod("fake", "example.invalid/anything:1", ["x"]))
    p = wait_for(
        "the pod to be scheduled",
        lambda: (q := get_pod(cluster, namespace, "fake"))["spec"].get("nodeName") and q,
    )
    assert p["spec"]["nodeName"] != nodecfg.NODE_NAME


def test_a_real_pod_serves_and_kubectl_logs_exec_and_port_forward_work(
    cluster: Cluster, real_namespace: str, busybox: str
) -> None:
    ns = real_namespace
    script = (
        "echo started; mkdir -p /tmp/www; echo hello > /tmp/www/index.html; "
        "exec httpd -f -p 8080 -h /tmp/www"
    )
    create(
        cluster,
        ns,
        pod(
            "web",
            busybox,
            ["sh", "-c", script],
            main={
                "readinessProbe": {
                    "httpGet": {"path": "/index.html", "port": 8080},
                    "periodSeconds": 1,
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108,
            },
            initContainers=[
                {"name": "init", "image": busybox, "command": ["sh", "-c", "echo init ran"]}
            ],
            volumes=[{"name": "tmp", "emptyDir": {}}],
        ),
    )
    cluster.kubectl("-n", ns, "wait", "pod/web", "--for=condition=Ready", "--timeout=90s")
    p = get_pod(cluster, ns, "web")
    assert p["spec"]["nodeName"] == nodecfg.NODE_NAME
    assert p["status"]["podIP"].startswith(nodecfg.POD_RANGE.rsplit(".", 2)[0])
    assert "init ran" in kubectl(cluster, "-n", ns, "logs", "web", "-c", "init")
    assert "started" in kubectl(cluster, "-n", ns, "logs", "web")
    page = "/tmp/www/index.html"  # noqa: S108 (the pod's own emptyDir)
    assert kubectl(cluster, "-n", ns, "exec", "web", "--", "cat", page) == "hello\n"
    argv = [cluster.kubectl_bin, f"--kubeconfig={cluster.kubeconfig}", "--context=admin"]
    argv += ["-n", ns, "port-forward", "pod/web", ":8080"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as fwd:
        try:
            assert fwd.stdout is not None
            line = fwd.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8080"
            port = int(line.split("127.0.0.1:", 1)[1].split()[0])
            answer = httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=10)
            assert answer.text == "hello\n"
        finally:
            fwd.terminate()


def test_a_process_that_exits_is_seen_crash_looping(
    cluster: Cluster, real_namespace: str, busybox: str
) -> None:
    """What the operator's crash detection (rollout.crash_looping) makes of what the real
    kubelet reports for a process that exits 3. Under load the kubelet can show
    ``terminated: Error`` through every back-off and never ``waiting:
    CrashLoopBackOff`` (seen in CI: restarts 1 to 4, each shown as terminated), so the
    detection may not wait for that reason, and this test does not either."""
    create(cluster, real_namespace, pod("crash", busybox, ["sh", "-c", "echo bye; exit 3"]))
    seen: list[str] = []  # each state the API server showed, for the failure message

    def crashing() -> dict[str, Any] | None:
        s = container_state(get_pod(cluster, real_namespace, "crash"))
        state = s.get("state", {})
        shown = ",".join(f"{k}:{v.get('reason', '')}" for k, v in state.items())
        shown += f" restarts={s.get('restartCount')}"
        if not seen or seen[-1] != shown:
            seen.append(shown)
        return s if rollout.crash_looping(s) else None

    try:
        s = wait_for("a crash loop", crashing, timeout=120)
    except AssertionError as e:
        events = kubectl(cluster, "-n", real_namespace, "get", "events", "-o", "wide")
        raise AssertionError(f"{e}\nstates seen: {seen}\nevents:\n{events}") from None
    last = s["state"].get("terminated") or s["lastState"]["terminated"]
    assert last["exitCode"] == 3
    # the kubelet's own CrashLoopBackOff comes after the first restart; without it, the
    # operator's count of restarts after failures
    assert s["restartCount"] >= 1
    # and the kubelet itself says it backs off restarting it
    wait_for(
        "the kubelet's BackOff event",
        lambda: (
            "BackOff"
            in kubectl(cluster, "-n", real_namespace, "get", "events", "-o", "jsonpath={..reason}")
        ),
        timeout=60,
    )


def test_a_pod_over_its_memory_limit_is_oom_killed(
    cluster: Cluster, real_namespace: str, busybox: str
) -> None:
    # sh keeps doubling a string in memory until the limit stops it
    hog = "x=x; while true; do x=$x$x; done"
    create(
        cluster,
        real_namespace,
        pod(
            "hog",
            busybox,
            ["sh", "-c", hog],
            restartPolicy="Never",
            main={"resources": {"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}}},
        ),
    )

    def killed() -> dict[str, Any] | None:
        s = container_state(get_pod(cluster, real_namespace, "hog"))
        terminated: dict[str, Any] | None = s.get("state", {}).get("terminated")
        return terminated

    terminated = wait_for("the pod to be killed", killed, timeout=120)
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137


def test_an_image_that_does_not_exist_is_not_pulled(
    cluster: Cluster, real_namespace: str, real_node: devenv.Environment
) -> None:
    missing = f"{real_node.registry}/modelreg-dev/no-such-image:1"
    create(cluster, real_namespace, pod("nopull", missing, ["x"]))

    def backing_off() -> str | None:
        s = container_state(get_pod(cluster, real_namespace, "nopull"))
        reason = s.get("state", {}).get("waiting", {}).get("reason")
        return reason if reason in ("ErrImagePull", "ImagePullBackOff") else None

    assert wait_for("a pull error", backing_off, timeout=60)


def test_pods_reach_the_s3_server_through_the_gateway(
    cluster: Cluster, real_namespace: str, busybox: str, real_node: devenv.Environment
) -> None:
    url = f"{real_node.node_s3_endpoint}/minio/health/live"
    create(
        cluster,
        real_namespace,
        pod(
            "s3",
            busybox,
            ["sh", "-c", f"wget -q -S -O /dev/null {url} 2>&1; echo done"],
            restartPolicy="Never",
        ),
    )
    finished(cluster, real_namespace, "s3")
    out = kubectl(cluster, "-n", real_namespace, "logs", "s3")
    assert "200 OK" in out, out


def test_pods_reach_nothing_else_on_the_host(
    cluster: Cluster, real_namespace: str, busybox: str, real_node: devenv.Environment
) -> None:
    """A server of the host's bound to every address (here: to the veth's host end) is
    not the pods' to reach: only the gateway's ports are (rules in the node's namespace)."""
    host_ip = real_node.node.host_ip
    reached: list[str] = []
    with socket.create_server((host_ip, 0)) as listener:
        port = listener.getsockname()[1]
        listener.settimeout(0.5)
        stop = threading.Event()

        def accept() -> None:
            # a connection that got through is taken and closed, so the probe ends at once
            while not stop.is_set():
                try:
                    conn, peer = listener.accept()
                except TimeoutError:
                    continue
                reached.append(peer[0])
                conn.close()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        probe = f"nc -w 3 {host_ip} {port} </dev/null && echo CONNECTED || echo REFUSED"
        try:
            create(
                cluster,
                real_namespace,
                pod("snoop", busybox, ["sh", "-c", probe], restartPolicy="Never"),
            )
            finished(cluster, real_namespace, "snoop")
        finally:
            stop.set()
            acceptor.join()
    assert not reached, f"a pod reached {host_ip}:{port} from {reached}"
    out = kubectl(cluster, "-n", real_namespace, "logs", "snoop")
    assert "REFUSED" in out, out
