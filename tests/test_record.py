import dataclasses
import datetime as dt
import hashlib
import hmac

from modelreg import record
from modelreg.api import annotations as ann

KEY = b"k" * 32
RECORD = {
    ann.REGISTERED_BY: "dana",
    ann.NUMBER: "7",
    ann.DECISIONS: '[{"user":"alice","decision":"Approved","time":"2026-01-01T00:00:00Z"}]',
}


def signed(**extra: str) -> dict[str, str]:
    return {**RECORD, ann.SIGNATURE: record.sign(KEY, "ns", "fraud", RECORD), **extra}


def test_the_webhooks_record_verifies():
    assert record.verify(KEY, "ns", "fraud", signed(other="ignored"))


def test_any_change_or_copy_is_detected():
    forged = signed(**{ann.DECISIONS: RECORD[ann.DECISIONS].replace("alice", "eve")})
    assert not record.verify(KEY, "ns", "fraud", forged)
    assert not record.verify(KEY, "ns", "fraud", signed(**{ann.REGISTERED_BY: "bob"}))
    assert not record.verify(KEY, "ns", "fraud", signed(**{ann.NUMBER: "8"}))
    assert not record.verify(KEY, "ns", "other-model", signed())
    assert not record.verify(KEY, "other-ns", "fraud", signed())
    assert not record.verify(b"x" * 32, "ns", "fraud", signed())
    assert not record.verify(KEY, "ns", "fraud", dict(RECORD))  # unsigned


def test_without_a_key_nothing_is_checked():
    assert record.verify(None, "ns", "fraud", dict(RECORD))


def test_seal_binds_namespace_name_uid_digest_checksum_and_verdict() -> None:
    key = b"k" * 32
    values = record.Verification("ns", "v1", "uid-1", "r.io/s@sha256:" + "a" * 64, "b" * 64, True)
    sealed = record.seal(key, values)
    assert record.seal_valid(key, values, sealed)
    for field, other in [
        ("namespace", "x"),
        ("name", "x"),
        ("uid", "x"),
        ("image", "r.io/s@sha256:" + "c" * 64),
        ("sha256", None),
        ("verified", False),
    ]:
        changed = dataclasses.replace(values, **{field: other})
        assert not record.seal_valid(key, changed, sealed), f"{field} is not bound"
    assert not record.seal_valid(key, values, None)
    assert not record.seal_valid(b"x" * 32, values, sealed)
    assert record.seal_valid(None, values, None)  # no key configured: not checked


def test_verification_reads_what_a_status_claims() -> None:
    mv = {
        "metadata": {"namespace": "ns", "name": "v1", "uid": "u"},
        "status": {
            "image": {"resolved": "r@sha256:" + "a" * 64},
            "artifact": {"sha256": "b" * 64},
            "conditions": [
                {"type": "ArtifactVerified", "status": "True"},
                {"type": "ImageResolved", "status": "True"},
            ],
        },
    }
    assert record.Verification.of(mv) == record.Verification(
        "ns", "v1", "u", "r@sha256:" + "a" * 64, "b" * 64, True
    )
    mv["status"]["conditions"][1]["status"] = "Unknown"
    assert not record.Verification.of(mv).verified


def test_a_record_is_bound_to_the_creation_of_its_object() -> None:
    """Names and numbers come back after a delete (issue 15, item 9); a creation time
    does not: a saved record copied onto a version created later does not verify."""
    from modelreg.record import _payload, sign, verify

    key = b"k" * 32
    stamp = str(1_796_000_000 * 10**9)
    created = dt.datetime.fromtimestamp(1_796_000_000, dt.UTC)
    annotations = {
        ann.REGISTERED_BY: "dana",
        ann.NUMBER: "1",
        ann.CREATED_AT: stamp,
        ann.DECISIONS: "[]",
    }
    annotations[ann.SIGNATURE] = sign(key, "ns", "m", annotations)
    assert verify(key, "ns", "m", annotations, (created + dt.timedelta(seconds=2)).isoformat())
    later = (created + dt.timedelta(days=3)).isoformat().replace("+00:00", "Z")
    assert not verify(key, "ns", "m", annotations, later)
    assert verify(key, "ns", "m", annotations)  # no object to compare with
    # a record signed before the binding (record/v1) verifies as it did
    legacy = {k: v for k, v in annotations.items() if k != ann.SIGNATURE}
    legacy[ann.SIGNATURE] = hmac.new(
        key, _payload("ns", "m", legacy, bound=False), hashlib.sha256
    ).hexdigest()
    assert verify(key, "ns", "m", legacy, later)
    legacy[ann.NUMBER] = "2"
    assert not verify(key, "ns", "m", legacy, later)


def test_a_saved_record_does_not_verify_on_the_re_created_version() -> None:
    """Numbers are never reused (issue 15, item 9: controller/marks.py): the version made
    again under the same name after a delete gets a new number and its own creation stamp
    from the webhook, so the saved record (signed over the old number, record/v2 also over
    the old stamp) does not verify on it, whether signed before record/v2 or after."""
    from modelreg.record import _payload

    created = dt.datetime.fromtimestamp(1_796_000_000, dt.UTC)
    old = {ann.REGISTERED_BY: "dana", ann.NUMBER: "1", ann.DECISIONS: RECORD[ann.DECISIONS]}
    old[ann.CREATED_AT] = str(1_796_000_000 * 10**9)
    saved = {ann.SIGNATURE: record.sign(KEY, "ns", "m", old), ann.DECISIONS: old[ann.DECISIONS]}
    legacy = hmac.new(KEY, _payload("ns", "m", old, bound=False), hashlib.sha256).hexdigest()
    later = created + dt.timedelta(days=3)
    # what the webhook wrote on the new v1 (number 3), with the saved record copied over
    new = {ann.REGISTERED_BY: "dana", ann.NUMBER: "3"}
    new[ann.CREATED_AT] = str(int(later.timestamp()) * 10**9)
    for signature in (saved[ann.SIGNATURE], legacy):
        copied = {**new, ann.DECISIONS: saved[ann.DECISIONS], ann.SIGNATURE: signature}
        assert not record.verify(KEY, "ns", "m", copied, later.isoformat())
        assert not record.verify(KEY, "ns", "m", copied)
