"""modelreg's benchmark harness (issue 6): measured against the real local cluster.

``python -m benchmarks run --help``; method and results in ``docs/benchmarks.md``.
"""
