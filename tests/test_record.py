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


def test_seal_binds_namespace_name_uid_digest_and_checksum() -> None:
    key = b"k" * 32
    args = ["ns", "v1", "uid-1", "r.io/s@sha256:" + "a" * 64, "b" * 64]
    sealed = record.seal(key, args[0], args[1], args[2], args[3], args[4])

    def valid(values: list[str], given: str | None, k: bytes | None = key) -> bool:
        return record.seal_valid(k, values[0], values[1], values[2], values[3], values[4], given)

    assert valid(args, sealed)
    for i in range(len(args)):
        changed = list(args)
        changed[i] = "other"
        assert not valid(changed, sealed), f"argument {i} is not bound"
    assert not valid(args, None)
    assert valid(args, None, k=None)  # no key configured: not checked
