"""``python -m benchmarks run``: start a local environment, run every benchmark, print the
table, write it into docs/benchmarks.md (``--out``) and the raw figures as JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from benchmarks import harness
from modelreg import devenv


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmarks")
    r.add_argument(
        "--dir",
        type=Path,
        default=harness.REPO / ".dev-bench",
        help="environment directory (started if not running, then torn down)",
    )
    r.add_argument(
        "--keep-env",
        action="store_true",
        help="leave an environment this run started running (and its directory)",
    )
    r.add_argument("--smoke", action="store_true", help="tiny sizes (seconds, not minutes)")
    r.add_argument("--versions", type=_ints, help="N per run, e.g. 1000,10000")
    r.add_argument("--approvals", type=int)
    r.add_argument("--failures", type=int)
    r.add_argument("--models", type=int, help="RegisteredModels the N versions spread over")
    r.add_argument("--threads", type=_ints, help="ceiling sweep, e.g. 1,4,16,32,64")
    r.add_argument("--ceiling-seconds", type=float)
    r.add_argument("--concurrency", type=int, help="client threads registering versions")
    r.add_argument("--idle-seconds", type=float, help="idle window (operator on, then off)")
    r.add_argument(
        "--quiet-seconds", type=float, help="no modelreg.dev request for this long = settled"
    )
    r.add_argument("--lookups", type=int, help="latest-approved lookups per system")
    r.add_argument("--no-mlflow", action="store_true")
    r.add_argument("--only", type=lambda s: s.split(","), help=f"subset of {','.join(harness.ALL)}")
    r.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the operator during registration and restart (collapsed stacks)",
    )
    r.add_argument("--out", type=Path, help="Markdown file to put the table in")
    r.add_argument("--json", type=Path, help="write the raw results here")
    r.add_argument("--title", default="", help="heading of the results in --out")
    args = p.parse_args(argv)  # fmt: skip

    overrides = {
        "versions": args.versions,
        "approvals": args.approvals,
        "failures": args.failures,
        "models": args.models,
        "threads": args.threads,
        "ceiling_seconds": args.ceiling_seconds,
        "concurrency": args.concurrency,
        "idle_seconds": args.idle_seconds,
        "quiet_seconds": args.quiet_seconds,
        "lookups": args.lookups,
        "only": args.only,
        "profile_dir": args.profile,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = harness.Config.smoke(**given) if args.smoke else harness.Config(**given)
    if args.no_mlflow:
        cfg = dataclasses.replace(cfg, mlflow=False)

    root: Path = args.dir.resolve()
    was_running = root.exists() and all(s.ok for s in devenv.status(root))
    env = devenv.up(root, log=print)
    try:
        results = harness.run(env, cfg, log=lambda s: print(s, flush=True))
    finally:
        if not was_running and not args.keep_env:
            devenv.down(root, log=lambda _: None)
            shutil.rmtree(root, ignore_errors=True)
    table = harness.render(results)
    print()
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.out:
        sizes = ", ".join(f"{n:,}" for n in cfg.versions)
        title = args.title or f"Results: N = {sizes}, {cfg.approvals} approvals, " + (
            f"{cfg.failures} failures"
        )
        harness.write_report(args.out, table, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
