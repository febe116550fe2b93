"""The long soak, on demand: the code of tests/faults/test_soak.py with bigger bounds.

One `lockgate control-plane` (SQLite) and two `lockgate data-plane` processes serve the
walkthrough pipeline (pre-function -> key-auth -> ai-proxy-advanced) to a fake OpenAI process;
a steady load at `--rate` requests/s over both data planes rotates over `--keys` consumers' keys.
After `--warmup` seconds, every process's RSS, open fds (TCP and other) and CPU are sampled from
/proc every `--sample-every` seconds for `--duration` seconds, with a progress line per sample.

Pass/fail: the short test's checks (`tests.faults.soak.soak_checks`): no failed request; RSS
growth after the warm-up under 5% in every process (median of the window's first quarter vs its
last quarter); fds other than TCP sockets and SQLite files not growing at all, TCP sockets by no
more than `--workers` (keep-alive pools), SQLite files within the connection pool's bound.

Usage: .venv/bin/python bench/soak.py [--duration 1800] [--rate 200] [--warmup 60]
Writes bench/results/soak.json and its chart docs/security/soak.png (bench/soak_chart.py);
exits 1 if a check fails.

About the rate: the issue asks for half the maximum rate. The maximum for two data planes with
this pipeline is ~9,100 req/s (docs/benchmarks.md, wrk with pinned cores); this Python load
generator (threads + httpx) and the Python fake upstream top out far below half of that on the
2-core box, so the default is a rate they sustain; raise `--rate` and `--workers` on a bigger
machine (the achieved rate is reported next to the asked one).
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import soak_chart

from tests.faults.soak import run_soak, soak_checks

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"


def source_commit() -> str:
    """The checked-out commit, with "+changes" when the working tree differs from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so the harness stops the processes it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="measured seconds")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s, both planes")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before measuring")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--keys", type=int, default=200, help="consumers (one key each)")
    parser.add_argument("--workers", type=int, default=8, help="client threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lockgate-soak-") as tmp:
        commit = source_commit()  # at the start: the code the processes run
        result = run_soak(
            Path(tmp),
            rate_per_s=args.rate,
            warmup_s=args.warmup,
            duration_s=args.duration,
            sample_every_s=args.sample_every,
            keys=args.keys,
            workers=args.workers,
            progress=lambda line: print(line, flush=True),
            print_logs=False,
        )
    print(result.summary())
    results = soak_checks(result)
    for what, ok in results:
        print(f"{'PASS' if ok else 'FAIL'} {what}")
    doc = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "command": " ".join(sys.argv),
            "commit": commit,
        },
        **result.as_dict(),
        "checks": [{"check": what, "pass": ok} for what, ok in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.out == RESULTS:  # the published run: redraw its chart in docs/security.md
        print(f"wrote {soak_chart.draw(doc)}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
