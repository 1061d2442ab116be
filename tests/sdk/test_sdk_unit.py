"""Pure parts of the SDK: packing, hashing upload, lineage capture, comparison, the audit
trail, error mapping, lazy import (no cluster)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelreg.sdk import errors
from modelreg.sdk import lineage as lin
from modelreg.sdk.client import compare_versions, deployment_events, version_events
from modelreg.sdk.models import Deployment, Version
from modelreg.sdk.upload import HashingReader, pack_directory, upload_file
from tests.sdk.conftest import git


def test_directories_pack_reproducibly_in_sorted_order(tmp_path: Path) -> None:
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("b")
    (d / "a.txt").write_text("a")
    (d / "sub" / "w.bin").write_bytes(b"w" * 10)
    first = io.BytesIO()
    pack_directory(d, first)
    os.utime(d / "a.txt", (0, 1_000_000))
    second = io.BytesIO()
    pack_directory(d, second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue()), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["sub", "a.txt", "b.txt", "sub/w.bin"]
    assert {(m.uid, m.gid, m.uname, m.mtime) for m in members} == {(0, 0, "", 0)}


def test_hashing_reader_hashes_what_is_read() -> None:
    seen: list[int] = []
    r = HashingReader(io.BytesIO(b"x" * 1000), seen.append)
    assert r.read(300) + r.read() == b"x" * 1000
    assert r.hexdigest() == hashlib.sha256(b"x" * 1000).hexdigest()
    assert (r.count, seen) == (1000, [300, 700])
    assert not hasattr(r, "seek")  # forward-only: boto3 cannot re-read it out of order


class FakeS3:
    """Records the S3 calls of an upload; keeps parts as their sizes only."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs if not args else {"args": args, **kwargs}))
            if name == "create_multipart_upload":
                return {"UploadId": "u1"}
            if name == "upload_part":
                return {"ETag": f"e{kwargs['PartNumber']}"}
            if name == "complete_multipart_upload":
                return {"VersionId": "v1"}
            if name == "head_object":
                return {"VersionId": "v2"}
            if name == "put_object":
                return {"VersionId": "v1"}
            return {}

        return call


def test_multipart_upload_hashes_in_one_pass_and_writes_the_sha256_metadata(
    tmp_path: Path,
) -> None:
    f = tmp_path / "m.bin"
    data = os.urandom(2500)
    f.write_bytes(data)
    s3 = FakeS3()
    progress: list[tuple[int, int]] = []
    up = upload_file(
        s3,
        f,
        "b",
        "k",
        threshold=1000,
        part_size=1000,
        progress=lambda done, total: progress.append((done, total)),
    )
    sha = hashlib.sha256(data).hexdigest()
    assert (up.sha256, up.size, up.multipart, up.version_id) == (sha, 2500, True, "v2")
    names = [n for n, _ in s3.calls]
    assert names == [
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "upload_part",
        "complete_multipart_upload",
        "copy",
        "head_object",
        "delete_object",
    ]
    copy = dict(s3.calls[5][1])
    assert copy["ExtraArgs"]["Metadata"] == {"sha256": sha}
    assert copy["ExtraArgs"]["MetadataDirective"] == "REPLACE"
    assert s3.calls[-1][1] == {"Bucket": "b", "Key": "k", "VersionId": "v1"}
    assert progress[-1] == (2500, 2500)


def test_small_upload_sends_the_store_checksum_and_metadata(tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"small")
    s3 = FakeS3()
    up = upload_file(s3, f, "b", "k")
    (name, put), *_ = s3.calls
    assert name == "put_object"
    assert put["Metadata"] == {"sha256": hashlib.sha256(b"small").hexdigest()}
    assert put["ChecksumSHA256"]
    assert not up.multipart


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:token@git.example.com/a.git", "https://git.example.com/a.git"),
        ("https://token@git.example.com/a.git", "https://git.example.com/a.git"),
        ("ssh://git@git.example.com/a.git", "ssh://git@git.example.com/a.git"),
        ("git@github.com:org/a.git", "git@github.com:org/a.git"),
        ("https://git.example.com/a.git", "https://git.example.com/a.git"),
    ],
)
def test_remote_credentials_are_stripped(url: str, clean: str) -> None:
    assert lin.strip_credentials(url) == clean


def test_lineage_capture_from_git_python_and_run_ids(git_repo: Path, tmp_path: Path) -> None:
    env = {"MLFLOW_RUN_ID": "abc123", "WANDB_RUN_ID": "w1", "MLFLOW_TRACKING_URI": "http://ml"}
    c = lin.capture(git_repo / "model", env=env)
    assert c.git is not None
    assert c.git.commit == git(git_repo, "rev-parse", "HEAD")
    assert not c.git.dirty
    code, run = c.code(), c.run()
    assert code is not None
    assert run is not None
    assert (code.repository, code.path) == ("https://git.example.com/ml/fraud.git", "model")
    assert (run.system, run.id, run.url) == ("mlflow", "abc123", "http://ml/#/runs/abc123")
    tags = c.tags()
    assert tags[lin.TAG_RUN_PREFIX + "wandb"] == "w1"
    assert tags[lin.TAG_GIT_DIRTY] == "false"
    assert tags[lin.TAG_GIT_BRANCH] == "main"
    assert len(tags[lin.TAG_PACKAGES_SHA256]) == 64
    assert all(len(v) <= 256 for v in tags.values())
    (git_repo / "train.py").write_text("changed\n")
    assert lin.capture(git_repo / "model", env={}).tags()[lin.TAG_GIT_DIRTY] == "true"


def test_lineage_capture_tolerates_no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    c = lin.capture(tmp_path, env={})
    assert c.git is None
    assert c.code() is None
    assert lin.TAG_GIT_DIRTY not in c.tags()


def version(name: str, number: int, **spec: Any) -> Version:
    body = {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "annotations": {"modelreg.dev/created-at": str(number * 10**9)},
        },
        "spec": {
            "modelRef": {"name": "m"},
            "artifact": {"uri": f"s3://bucket/m/{number}"},
            "image": {"reference": "r.example.com/s:1"},
            **spec,
        },
        "status": {
            "number": number,
            "registeredBy": "dana",
            "approval": {
                "state": "Approved",
                "decisions": [
                    {
                        "user": "alice",
                        "decision": "Approved",
                        "comment": "ok",
                        "time": f"1970-01-01T00:00:{number * 10 + 5:02d}Z",
                    }
                ],
            },
        },
    }
    return Version.from_api(body)


def test_compare_lists_every_metric_with_deltas_and_only_differences() -> None:
    a = version(
        "m-1", 1, metrics={"auc": 0.9, "f1": 0.5}, lineage={"parameters": {"d": "8", "lr": "1"}}
    )
    b = version(
        "m-2", 2, metrics={"auc": 0.93, "p95": 30}, lineage={"parameters": {"d": "9", "lr": "1"}}
    )
    cmp = compare_versions(a, b)
    assert [(m.name, m.delta) for m in cmp.metrics] == [
        ("auc", pytest.approx(0.03)),
        ("f1", None),
        ("p95", None),
    ]
    assert [(p.field, p.a, p.b) for p in cmp.parameters] == [("d", "8", "9")]
    assert [d.field for d in cmp.lineage] == ["artifact.uri"]


def test_history_events_of_versions_and_rollouts() -> None:
    v1 = version("m-1", 1)
    events = version_events(v1)
    assert [(e.event, e.user, e.detail) for e in events] == [
        ("Registered", "dana", ""),
        ("Approved", "alice", "ok"),
    ]
    assert events[0].time == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    dep = Deployment.from_api(
        {
            "metadata": {"name": "serve", "namespace": "ns"},
            "spec": {"modelRef": {"name": "m"}},
            "status": {
                "history": [  # newest first
                    {
                        "name": "m-1",
                        "number": 1,
                        "result": "Succeeded",
                        "time": "2026-01-01T00:03:00Z",
                    },
                    {
                        "name": "m-2",
                        "number": 2,
                        "result": "Succeeded",
                        "time": "2026-01-01T00:02:00Z",
                    },
                    {
                        "name": "m-1",
                        "number": 1,
                        "result": "Succeeded",
                        "time": "2026-01-01T00:01:00Z",
                    },
                ],
                "conditions": [
                    {
                        "type": "RolledBack",
                        "status": "True",
                        "reason": "Manual",
                        "message": "held at m-1",
                        "lastTransitionTime": "2026-01-01T00:03:00Z",
                    }
                ],
            },
        }
    )
    assert [(e.event, e.version, e.detail) for e in deployment_events(dep)] == [
        ("Deployed", "m-1", ""),
        ("Deployed", "m-2", ""),
        ("RolledBack", "m-1", "Manual: held at m-1"),
    ]


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (
            400,
            "admission webhook \"x\" denied the request: user 'eve' is not an approver",
            errors.Denied,
        ),
        (403, "forbidden: User cannot patch", errors.Denied),
        (404, "not found", errors.NotFound),
        (409, "already exists", errors.Conflict),
        (422, "spec.image.reference: Invalid value", errors.Invalid),
        (500, "boom", errors.ModelregError),
    ],
)
def test_api_errors_map_to_sdk_errors_with_the_servers_message(
    status: int, message: str, kind: type[errors.ModelregError]
) -> None:
    e = ApiException(status=status, reason="x")
    e.body = json.dumps({"kind": "Status", "message": message})
    err = errors.from_api(e, "ModelVersion v1")
    assert type(err) is kind
    if status != 404:
        assert message in str(err)


def test_importing_modelreg_stays_cheap_and_client_loads_lazily() -> None:
    code = (
        "import sys, modelreg; "
        "assert 'kubernetes' not in sys.modules and 'boto3' not in sys.modules; "
        "from modelreg import Client; assert Client.__module__ == 'modelreg.sdk.client'; "
        "import modelreg.sdk as s; assert s.Client is Client"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
