"""Verification of artifacts (S3, HTTPS) and images (OCI registries): I/O adapters.

Each check returns a :class:`Verdict`: ``True`` (verified), ``False`` (a definite answer
from the server: not found, mismatch, unauthorized) or ``Unknown`` (the server could not
be asked: unreachable, timeout, 5xx, throttling). ``Unknown`` is retried with backoff and
never reported as ``False``.
"""

from modelreg.verify.verdict import Verdict

__all__ = ["Verdict"]
