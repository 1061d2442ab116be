"""Verification against real HTTP servers on 127.0.0.1, scripted to answer what the real
S3 server and registries of the test environment cannot be made to answer."""

from __future__ import annotations

import httpx
import pytest

from modelreg.api.base import ConditionStatus
from modelreg.verify.artifacts import StoreConfig, verify_https
from tests.support.http_server import Reply, serve

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
CONFIG = StoreConfig(max_hash_bytes=1024 * 1024, timeout_seconds=5)


@pytest.mark.parametrize("code", [401, 403])
def test_https_artifact_refused_to_the_operator_is_unknown(code: int) -> None:
    """The operator sends no credentials: a refusal is about who asks, never a verdict."""
    with serve(lambda _: Reply(code)) as (host, _), httpx.Client(timeout=5) as client:
        v = verify_https(client, f"http://{host}/model.bin", None, CONFIG)
    assert (v.status, v.reason) == (UNKNOWN, "StoreAccessDenied")
    assert str(code) in v.message
