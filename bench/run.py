"""The proxy benchmark: every scenario side by side, several rounds, one report.

    .venv/bin/python bench/run.py                 # full run (~20 min), writes docs/benchmarks.md
    .venv/bin/python bench/run.py --quick         # smoke run (seconds per step, no LiteLLM)

Contenders (one round measures each back to back, rounds repeat): direct to the nginx upstream,
nginx as reverse proxy, Lockgate with one and with two data planes (walkthrough pipeline,
key-auth only, no plugins), LiteLLM's proxy. Then the same at a fixed half-load rate, streaming
(time to first token, tokens/s), data-plane memory idle and with 10k routes, a py-spy profile of
the data plane under load, and the other issues' results from bench/results/*.json.
Writes bench/results/proxy.json, docs/benchmarks.md and docs/benchmarks/*.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxybench import (  # noqa: E402
    inprocess,
    litellm,
    memory,
    nginx,
    procs,
    profile,
    report,
    wrk,
)
from proxybench.rounds import Bench  # noqa: E402


def _machine() -> dict[str, str]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": platform.platform(),
    }


def _versions(note: str) -> dict[str, str]:
    import httptools
    import uvloop

    from lockgate import __version__

    lite = litellm.installed_version() if litellm.VENV.exists() else "not installed"
    return {
        "python": platform.python_version(),
        "lockgate": __version__,
        "uvloop": getattr(uvloop, "__version__", "?"),
        "httptools": httptools.__version__,
        "nginx": nginx.version(),
        "wrk": wrk.version(),
        "litellm": f"{lite} (`litellm[proxy]=={litellm.VERSION}`){' - ' + note if note else ''}",
    }


def _other_results(results_dir: Path) -> dict[str, Any]:
    out = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name != "proxy.json":
            out[path.stem] = json.loads(path.read_text())
    return out


def _targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    thr, fixed, mem = res["throughput"], res.get("fixed_rate", {}), res.get("memory", {})
    rows = []

    def add(name: str, measured: str, goal: str, met: bool) -> None:
        rows.append({"name": name, "measured": measured, "goal": goal, "met": met})

    for key, goal in (("lg1-pipeline", 0.30), ("lg1-keyauth", 0.40)):
        ratio = thr[key]["ratio_to_nginx"]
        add(
            f"{report.LABELS[key]}: ratio to nginx req/s",
            f"{ratio:.3f}",
            f">= {goal}",
            ratio >= goal,
        )
    if "lg1-pipeline" in fixed:
        f = fixed["lg1-pipeline"]
        add(
            "added latency at half load, pipeline, p50",
            f"{f['added_p50_ms']:.2f} ms",
            "<= 1 ms",
            f["added_p50_ms"] <= 1,
        )
        add(
            "added latency at half load, pipeline, p99",
            f"{f['added_p99_ms']:.2f} ms",
            "<= 5 ms",
            f["added_p99_ms"] <= 5,
        )
    errors = sum(r["errors"] for t in thr.values() for r in t["runs"])
    errors += sum(r["errors"] for t in fixed.values() for r in t["runs"])
    add("errors (all Lockgate and reference runs)", str(errors), "0", errors == 0)
    if "10k_routes" in mem:
        rss = mem["10k_routes"]["rss_mb"]
        add("data plane RSS with 10k routes", f"{rss} MB", "< 150 MB", rss < 150)
    if "litellm" in thr:
        x = thr["lg1-pipeline"]["median"]["rps"] / thr["litellm"]["median"]["rps"]
        add("pipeline req/s vs one LiteLLM worker", f"{x:,.0f}x", "~100x", x >= 100)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per stream")
    parser.add_argument("--streams", type=int, default=20, help="streams per contender")
    parser.add_argument("--routes", type=int, default=10000, help="routes of the memory test")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite docs/benchmarks.md from bench/results/proxy.json without measuring",
    )
    parser.add_argument(
        "--cp-pythonpath",
        type=Path,
        help="run the control planes from another source tree (PYTHONPATH), e.g. a clean "
        "export while the work tree's control plane is mid-change; data planes always run "
        "from this tree",
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.streams, args.routes = 1, 2, 3, 100
        args.no_litellm = True
        # A smoke run must not replace the real report.
        args.docs = ROOT / "bench" / "results" / "tmp" / "benchmarks-quick.md"
        args.docs.parent.mkdir(parents=True, exist_ok=True)

    if args.report_only:
        stored: dict[str, Any] = json.loads((args.results / "proxy.json").read_text())
        stored["other_benchmarks"] = _other_results(args.results)
        stored["targets"] = _targets(stored)
        image_dir = args.docs.parent / args.docs.stem
        args.docs.write_text(
            report.markdown(stored, report.charts(stored, image_dir), args.docs.stem)
        )
        print(f"wrote {args.docs}")
        return 0

    procs.ensure_debian_packages({"nginx": "nginx", "wrk": "wrk"})
    os.sched_setaffinity(0, {int(procs.LOAD_CORE)})  # this process runs the streaming client
    bench = Bench(args)
    load_before = [round(x, 2) for x in procs.load_average()]
    results: dict[str, Any] = {"meta": {}}
    try:
        print("starting contenders", flush=True)
        bench.start()
        print("throughput", flush=True)
        results["throughput"] = bench.throughput()
        print("fixed rate (half of each maximum)", flush=True)
        results["fixed_rate"] = bench.fixed_rate(results["throughput"])
        print("streaming", flush=True)
        results["streaming"] = bench.streaming()
        print("choices: server x upstream client", flush=True)
        results["choices"] = bench.choices()
        print("profile of the data plane under load", flush=True)
        results["profile"] = profile.sample(
            bench.gate1.data_plane_pids()[0],
            bench.targets["lg1-pipeline"],
            bench.work,
            seconds=max(3, args.duration),
        )
    finally:
        bench.stop()
    print("memory", flush=True)
    results["memory"] = {
        "idle": memory.data_plane_rss(
            bench.work / "mem-idle", bench.logs, bench.up_port, bench.sse_port, 0, bench.cp_env
        ),
        "10k_routes" if args.routes == 10000 else f"{args.routes}_routes": memory.data_plane_rss(
            bench.work / "mem-routes",
            bench.logs,
            bench.up_port,
            bench.sse_port,
            args.routes,
            bench.cp_env,
        ),
    }
    print("in-process cost per request", flush=True)
    results["inprocess"] = inprocess.measure(requests=2000 if args.quick else 20000)
    results["json"] = inprocess.json_costs()
    results["other_benchmarks"] = _other_results(args.results)
    results["meta"] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "versions": _versions(bench.litellm_note),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in procs.load_average()],
        "commands": [
            " ".join(["python", "bench/run.py", *sys.argv[1:]]),
            *(f"{n}: {t['wrk_command']}" for n, t in results["throughput"].items()),
            "fixed rate: the same with -c<conns> and a Lua `delay()` of "
            f"{wrk.THINK_MS} ms (see below)",
        ],
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    results["targets"] = _targets(results)
    out_dir = args.docs.parent if args.quick else args.results
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "proxy-quick.json" if args.quick else "proxy.json"
    (out_dir / name).write_text(json.dumps(results, indent=1) + "\n")
    image_dir = args.docs.parent / args.docs.stem
    images = report.charts(results, image_dir)
    args.docs.write_text(report.markdown(results, images, args.docs.stem))
    print(f"wrote {args.docs} and {out_dir / name}", flush=True)
    for row in results["targets"]:
        print(
            f"  {'ok ' if row['met'] else 'MISS'} {row['name']}: {row['measured']} "
            f"(goal {row['goal']})"
        )
    shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
