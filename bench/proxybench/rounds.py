"""The contenders of the proxy benchmark and the measurements taken across them: started once,
then measured in rounds (every contender back to back per round, order rotated)."""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proxybench import litellm, lockgate, nginx, procs, streaming, wrk

BENCH_DIR = Path(__file__).resolve().parent.parent

CHAT = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]})
STREAM_CHAT = json.dumps(
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
)
JSON = ("Content-Type", "application/json")
BEARER = ("Authorization", f"Bearer {lockgate.CONSUMER_KEY}")
APIKEY = ("apikey", lockgate.CONSUMER_KEY)


def _pids_of(proc: procs.Proc) -> list[int]:
    return [proc.popen.pid]


def _median(results: list[wrk.Result]) -> dict[str, float]:
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "errors", "connections")
    return {k: round(statistics.median(getattr(r, k) for r in results), 3) for k in keys}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="lockgate-bench-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.running: list[Any] = []
        self.targets: dict[str, wrk.Request] = {}
        self.cpu_pids: dict[str, Callable[[], list[int]]] = {}
        self.stream_targets: dict[str, streaming.StreamTarget] = {}
        self.commands: list[str] = []
        self.litellm_note = ""
        self.cp_env = {"PYTHONPATH": str(args.cp_pythonpath)} if args.cp_pythonpath else {}

    # -- contenders --

    def start(self) -> None:
        self.up_port, self.sse_port, self.rp_port = (procs.free_port() for _ in range(3))
        up = nginx.start_upstream(self.work / "nginx-up", self.up_port, self.logs)
        self.running.append(up)
        sse = procs.start(
            "sse-upstream",
            [
                sys.executable,
                "-m",
                "proxybench.sse_upstream",
                "--port",
                str(self.sse_port),
                "--tokens",
                str(self.args.tokens),
            ],
            cores=procs.SERVER_CORE,
            log_dir=self.logs,
            cwd=BENCH_DIR,
        )
        self.running.append(sse)
        procs.wait_port(self.sse_port, sse.popen)
        rp = nginx.start_reverse_proxy(
            self.work / "nginx-rp", self.rp_port, self.up_port, self.sse_port, self.logs
        )
        self.running.append(rp)
        up_url = f"http://127.0.0.1:{self.up_port}/v1/chat/completions"
        self.targets["direct"] = wrk.Request(up_url, CHAT, (JSON,))
        self.cpu_pids["direct"] = lambda: procs.children(up.popen.pid)
        self.targets["nginx"] = wrk.Request(
            f"http://127.0.0.1:{self.rp_port}/v1/chat/completions", CHAT, (JSON,)
        )
        self.cpu_pids["nginx"] = lambda: procs.children(rp.popen.pid)
        self.stream_targets["direct"] = streaming.StreamTarget(
            f"http://127.0.0.1:{self.sse_port}/v1/chat/completions", STREAM_CHAT.encode(), (JSON,)
        )
        self.stream_targets["nginx"] = streaming.StreamTarget(
            f"http://127.0.0.1:{self.rp_port}/stream/v1/chat/completions",
            STREAM_CHAT.encode(),
            (JSON,),
        )
        doc = lockgate.config(self.up_port, self.sse_port)
        for dps, cores in ((1, procs.SERVER_CORE), (2, procs.BOTH_CORES)):
            gate = lockgate.Lockgate(
                f"lg{dps}",
                self.work / f"lg{dps}",
                self.logs,
                data_planes=dps,
                cores=cores,
                control_plane_env=self.cp_env,
            )
            gate.start(doc)
            self.running.append(gate)
            for scenario, headers in (
                ("pipeline", (JSON, BEARER)),
                ("keyauth", (JSON, APIKEY)),
                ("plain", (JSON,)),
            ):
                name = f"lg{dps}-{scenario}"
                self.targets[name] = wrk.Request(f"{gate.url}/{scenario}", CHAT, headers)
                self.cpu_pids[name] = gate.data_plane_pids
            if dps == 1:
                self.gate1 = gate
                self.stream_targets["lg1-pipeline"] = streaming.StreamTarget(
                    f"{gate.url}/stream", STREAM_CHAT.encode(), (JSON, BEARER)
                )
        if not self.args.no_litellm:
            self._start_litellm()

    def _start_litellm(self) -> None:
        why = litellm.ensure_installed()
        if why:
            self.litellm_note = why
            return
        port = procs.free_port()
        try:
            proc = litellm.start(
                self.work / "litellm", port, self.up_port, self.sse_port, self.logs
            )
        except RuntimeError as exc:
            self.litellm_note = f"LiteLLM did not start: {exc}"[:2000]
            return
        self.running.append(proc)
        auth = ("Authorization", f"Bearer {litellm.MASTER_KEY}")
        self.targets["litellm"] = wrk.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", CHAT, (JSON, auth)
        )
        self.cpu_pids["litellm"] = lambda: [proc.popen.pid, *procs.children(proc.popen.pid)]
        self.stream_targets["litellm"] = streaming.StreamTarget(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            STREAM_CHAT.replace('"gpt-4o"', '"gpt-4o-stream"').encode(),
            (JSON, auth),
        )

    def stop(self) -> None:
        for item in reversed(self.running):
            item.stop()
        self.running.clear()

    # -- measurements --

    def _wrk(self, name: str, **kwargs: Any) -> tuple[wrk.Result, float | None]:
        pids = self.cpu_pids[name]()
        before = sum(procs.cpu_seconds(p) for p in pids)
        result = wrk.run(self.targets[name], self.work, **kwargs)
        used = sum(procs.cpu_seconds(p) for p in pids) - before
        per_request = used / result.requests * 1e6 if result.requests else None
        return result, per_request

    def throughput(self) -> dict[str, Any]:
        names = list(self.targets)
        for name in names:  # warm-up: connections, caches, JIT-less but lazy imports
            wrk.run(self.targets[name], self.work, connections=32, seconds=2)
        runs: dict[str, list[wrk.Result]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        ratios: dict[str, list[float]] = {n: [] for n in names}
        for round_ in range(self.args.runs):
            # Rotate the order so no contender always runs first or last in a round.
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            this: dict[str, wrk.Result] = {}
            for name in order:
                result, per_request = self._wrk(name, connections=32, seconds=self.args.duration)
                this[name] = result
                runs[name].append(result)
                if per_request is not None:
                    cpu[name].append(per_request)
                print(
                    f"  round {round_ + 1} {name}: {result.rps:,.0f} req/s, "
                    f"p50 {result.p50_ms:.2f} ms, errors {result.errors}",
                    flush=True,
                )
            for name in names:
                ratios[name].append(this[name].rps / this["nginx"].rps)
        return {
            name: {
                "runs": [r.as_dict() for r in runs[name]],
                "median": _median(runs[name]),
                "ratio_to_nginx": round(statistics.median(ratios[name]), 4),
                "ratios_per_round": [round(x, 4) for x in ratios[name]],
                "cpu_us_per_request": round(statistics.median(cpu[name]), 1) if cpu[name] else None,
                "wrk_command": " ".join(
                    wrk.command(self.targets[name], Path("SCRIPT.lua"), 32, self.args.duration)
                ),
            }
            for name in names
        }

    def fixed_rate(self, throughput: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        names = [n for n in self.targets if n != "direct"]
        runs: dict[str, list[wrk.Result]] = {n: [] for n in names}
        direct: dict[str, list[wrk.Result]] = {n: [] for n in names}
        rates = {n: throughput[n]["median"]["rps"] / 2 for n in names}
        for round_ in range(self.args.runs):
            for name in names:
                conns = wrk.connections_for_rate(rates[name])
                for target, store in ((name, runs), ("direct", direct)):
                    result, _ = self._wrk(
                        target,
                        connections=conns,
                        seconds=self.args.duration,
                        think_ms=wrk.THINK_MS,
                    )
                    store[name].append(result)
                print(
                    f"  round {round_ + 1} {name} @ {rates[name]:,.0f}/s: "
                    f"p50 {runs[name][-1].p50_ms:.2f} ms, p99 {runs[name][-1].p99_ms:.2f} ms "
                    f"(direct {direct[name][-1].p50_ms:.2f} / {direct[name][-1].p99_ms:.2f})",
                    flush=True,
                )
        for name in names:
            m, d = _median(runs[name]), _median(direct[name])
            added50 = [r.p50_ms - x.p50_ms for r, x in zip(runs[name], direct[name], strict=True)]
            added99 = [r.p99_ms - x.p99_ms for r, x in zip(runs[name], direct[name], strict=True)]
            out[name] = {
                "rate_offered": round(rates[name], 1),
                "runs": [r.as_dict() for r in runs[name]],
                "direct_runs": [r.as_dict() for r in direct[name]],
                "median": m,
                "direct_median": d,
                "added_p50_ms": round(statistics.median(added50), 3),
                "added_p99_ms": round(statistics.median(added99), 3),
            }
        return out

    def choices(self) -> dict[str, Any]:
        """The server x upstream-client combinations, each its own process on the server core,
        measured with nginx in the same rounds."""
        combos = [(s, c) for s in ("uvicorn", "own") for c in ("aiohttp", "httptools")]
        started = []
        for server, client in combos:
            port = procs.free_port()
            name = f"{server}+{client}"
            proc = procs.start(
                f"variant-{name}",
                [
                    sys.executable,
                    "-m",
                    "proxybench.variant",
                    "--server",
                    server,
                    "--client",
                    client,
                    "--port",
                    str(port),
                    "--upstream-port",
                    str(self.up_port),
                ],
                cores=procs.SERVER_CORE,
                log_dir=self.logs,
                cwd=BENCH_DIR,
            )
            self.running.append(proc)
            started.append(proc)
            procs.wait_port(port, proc.popen)
            for scenario, headers in (("pipeline", (JSON, BEARER)), ("plain", (JSON,))):
                key = f"{name} {scenario}"
                self.targets[key] = wrk.Request(
                    f"http://127.0.0.1:{port}/{scenario}", CHAT, headers
                )
                self.cpu_pids[key] = functools.partial(_pids_of, proc)
        keys = [k for k in self.targets if "+" in k]
        for key in keys:
            wrk.run(self.targets[key], self.work, connections=32, seconds=2)
        rows: dict[str, dict[str, list[float]]] = {
            k: {"rps": [], "ratio": [], "cpu": []} for k in keys
        }
        for _ in range(self.args.runs):
            base, _ = self._wrk("nginx", connections=32, seconds=self.args.duration)
            for key in keys:
                result, per_request = self._wrk(key, connections=32, seconds=self.args.duration)
                rows[key]["rps"].append(result.rps)
                rows[key]["ratio"].append(result.rps / base.rps)
                rows[key]["cpu"].append(per_request or 0.0)
                print(
                    f"  {key}: {result.rps:,.0f} req/s ({result.rps / base.rps:.3f} of nginx), "
                    f"{per_request:.0f} µs CPU/request",
                    flush=True,
                )
        for proc in started:
            proc.stop()
            self.running.remove(proc)
        for key in keys:
            del self.targets[key]
        return {
            k: {
                "rps": round(statistics.median(v["rps"]), 1),
                "ratio_to_nginx": round(statistics.median(v["ratio"]), 4),
                "cpu_us_per_request": round(statistics.median(v["cpu"]), 1),
            }
            for k, v in rows.items()
        }

    def streaming(self) -> dict[str, Any]:
        out = {}
        for name, target in self.stream_targets.items():
            out[name] = streaming.measure(target, self.args.tokens, self.args.streams)
            print(f"  {name}: {out[name]}", flush=True)
        return out
