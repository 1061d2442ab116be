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
