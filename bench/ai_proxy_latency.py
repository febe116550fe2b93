"""Latency the gateway adds to LLM calls: the how-to's pipeline (pre-function + key-auth +
ai-proxy-advanced, `tests/e2e/test_walkthrough.py`'s decK file) vs calling the provider directly.

Real processes: the fake OpenAI provider (`python -m tests.fakes.openai_server`), and `lockgate
up` (control plane + one data plane) on free loopback ports, configured with `lockgate deck sync`.
One client, one request at a time over keep-alive connections, the direct and the proxied call
interleaved so that load from elsewhere on the machine hits both alike:

- chat:  a non-streaming chat completion, request sent to whole answer read;
- ttft:  a streaming one (`"stream": true`), request sent to the first SSE event carrying a
         token (time to first token).

Added latency = proxied - direct, for the p50 and the p99 of each run; the figures are the
median over the runs. The data plane's CPU time per proxied request (from /proc) is reported
too: it is less sensitive than wall time to the machine's other load.

`--data-plane standalone` skips the control plane: one data-plane process (the real ProxyApp on
the proxy port's server under uvloop, set up as `lockgate data-plane` does) compiled from the
same decK file's plugins, with the consumer's key in an in-process credential store (the data
plane's L1 cache hit, in effect).

Usage: .venv/bin/python bench/ai_proxy_latency.py [--runs 5] [--requests 400]
       [--data-plane lockgate|standalone]
Writes bench/results/ai_proxy_latency.json and prints a table. Target: added p50 < 2 ms each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import yaml

from tests.e2e.lockgate_proc import Lockgate, free_port
from tests.e2e.test_walkthrough import CONSUMER_KEY, DECK_FILE, UPSTREAM_KEY

TARGET_MS = 2.0
RESULTS = Path(__file__).parent / "results" / "ai_proxy_latency.json"
MESSAGES = [{"role": "user", "content": "Say hello."}]
# What the proxy sends upstream (the decK file's model options), so both paths carry one body.
DIRECT_BODY = {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 512, "temperature": 1.0}
PROXY_BODY = {"model": "gpt-4o", "messages": MESSAGES}
EXPECTED = "Hello! You said: Say hello."


@contextmanager
def fake_provider() -> Iterator[str]:
    """The fake OpenAI API in its own process; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--api-key", UPSTREAM_KEY],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake provider did not start: {line!r}")
        yield line.removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def gateway(upstream: str, workdir: Path) -> Iterator[Lockgate]:
    """`lockgate up` with the how-to's config synced by `lockgate deck sync`."""
    lg = Lockgate(data_dir=workdir / "data", log_path=workdir / "lockgate.log")
    try:
        lg.start()
        deck_file = workdir / "kong.yaml"
        deck_file.write_text(DECK_FILE.format(upstream=upstream))
        env = {**lg.env(), "DECK_OPENAI_API_KEY": UPSTREAM_KEY}
        result = subprocess.run(
            [sys.executable, "-m", "lockgate", "deck", "sync", str(deck_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"deck sync failed: {result.stderr}{result.stdout}")
        lg.wait_ready()
        yield lg
    finally:
        if lg.proc is not None:  # also when it never became ready
            lg.stop()


@contextmanager
def standalone(upstream: str) -> Iterator[tuple[str, int]]:
    """A data-plane process without a control plane; yields its URL and pid."""
    port = free_port()
    script = [sys.executable, __file__, "--serve-standalone", upstream, "--port", str(port)]
    proc = subprocess.Popen(script, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("listening"):
            raise RuntimeError(f"standalone data plane did not start: {line!r}")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def serve_standalone(upstream: str, port: int) -> None:
    """The data plane's proxy server over a snapshot of the decK file (runs in the child), set
    up as `data_plane.main.serve` does (uvloop, ProxyApp on the proxy port's HttpServer)."""
    import asyncio
    import socket

    import uvloop

    from data_plane.http_server import HttpServer, Limits
    from data_plane.proxy import ProxyApp
    from data_plane.runtime import RuntimeHolder, compile_runtime
    from data_plane.upstream import UpstreamClient
    from gateway.context import ConsumerInfo, CredentialInfo
    from gateway.credentials import CredentialMatch, InMemoryCredentials
    from gateway.entities import Plugin, Ref, Route, Service
    from gateway.plugins import registry
    from gateway.snapshot import Snapshot

    text = DECK_FILE.format(upstream=upstream)
    text = text.replace('${{ env "DECK_OPENAI_API_KEY" }}', UPSTREAM_KEY)
    document = yaml.safe_load(text)
    host, port_text = upstream.removeprefix("http://").split(":")
    service = Service(host=host, port=int(port_text))
    route = Route(paths=["/anything"], service=Ref(id=service.id))
    plugins = tuple(Plugin(name=p["name"], config=p["config"]) for p in document["plugins"])
    credentials = InMemoryCredentials()
    consumer = ConsumerInfo(id="c-1", username="openai-client")
    credentials.add(CONSUMER_KEY, CredentialMatch(CredentialInfo("k-1", "c-1"), consumer))
    holder = RuntimeHolder()
    snapshot = Snapshot.create(1, (service,), (route,), plugins)
    holder.swap(compile_runtime(snapshot, registry(), credentials))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as data_plane.main.bind
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.setblocking(False)

    async def serve() -> None:
        app = ProxyApp(holder, UpstreamClient())
        await app.startup()
        await HttpServer(app, Limits(keepalive_s=60)).start([sock])
        print("listening", flush=True)
        await asyncio.Event().wait()  # until SIGTERM

    uvloop.run(serve())


def data_plane_pid(up_pid: int) -> int:
    """The `lockgate data-plane` process under `lockgate up` (a child, or the control plane's
    child when the control plane supervises the data planes)."""
    children: dict[int, list[int]] = {}
    commands: dict[int, list[bytes]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    todo = list(children.get(up_pid, []))
    while todo:
        pid = todo.pop(0)
        if b"data-plane" in commands.get(pid, []):
            return pid
        todo += children.get(pid, [])
    raise RuntimeError("no data-plane process found")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chat_ms(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post(url, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or EXPECTED not in response.text:
        raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:200]}")
    return elapsed


def ttft_ms(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    """Milliseconds until the first SSE event with a non-empty content delta; reads the rest."""
    first: float | None = None
    buffered = b""
    started = time.perf_counter()
    with client.stream("POST", url, json={**body, "stream": True}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"stream answered {response.status_code}")
        for chunk in response.iter_raw():
            if first is not None:
                continue
            buffered += chunk
            *events, buffered = buffered.split(b"\n\n")
            for event in events:
                data = event.removeprefix(b"data: ")
                if data != b"[DONE]" and json.loads(data)["choices"][0]["delta"].get("content"):
                    first = (time.perf_counter() - started) * 1000
                    break
    if first is None:
        raise RuntimeError("the stream carried no token")
    return first


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_run(
    calls: dict[str, Callable[[], float]], requests: int, dp_pid: int
) -> dict[str, dict[str, float]]:
    """`requests` rounds of every call, interleaved; p50/p99 per call in ms, DP CPU per request."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    cpu_before = cpu_seconds(dp_pid)
    for _ in range(requests):
        for name, call in calls.items():
            samples[name].append(call())
    cpu_us = (cpu_seconds(dp_pid) - cpu_before) * 1e6 / (2 * requests)
    out = {
        name: {"p50_ms": percentile(s, 0.5), "p99_ms": percentile(s, 0.99)}
        for name, s in samples.items()
    }
    out["dp_cpu"] = {"us_per_proxied_request": cpu_us}
    return out


def summarize(runs: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    def median(name: str, key: str) -> float:
        return round(statistics.median(run[name][key] for run in runs), 3)

    def added(kind: str, key: str) -> float:
        diffs = [run[f"proxy_{kind}"][key] - run[f"direct_{kind}"][key] for run in runs]
        return round(statistics.median(diffs), 3)

    summary: dict[str, Any] = {}
    for kind in ("chat", "ttft"):
        summary[kind] = {
            "direct_p50_ms": median(f"direct_{kind}", "p50_ms"),
            "proxy_p50_ms": median(f"proxy_{kind}", "p50_ms"),
            "added_p50_ms": added(kind, "p50_ms"),
            "direct_p99_ms": median(f"direct_{kind}", "p99_ms"),
            "proxy_p99_ms": median(f"proxy_{kind}", "p99_ms"),
            "added_p99_ms": added(kind, "p99_ms"),
        }
    summary["dp_cpu_us_per_request"] = round(
        statistics.median(run["dp_cpu"]["us_per_proxied_request"] for run in runs), 1
    )
    return summary


@contextmanager
def data_plane(mode: str, upstream: str) -> Iterator[tuple[str, int]]:
    """The proxy under test per `--data-plane`; yields its URL and the data plane's pid."""
    if mode == "standalone":
        with standalone(upstream) as served:
            yield served
        return
    with (
        tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp,
        gateway(upstream, Path(tmp)) as lg,
    ):
        assert lg.proc is not None
        yield lg.proxy_url, data_plane_pid(lg.proc.pid)


def measure(proxy_url: str, upstream: str, dp_pid: int, args: argparse.Namespace) -> list[Any]:
    """Warm-up, then `args.runs` runs; each run's figures."""
    direct = f"{upstream}/v1/chat/completions"
    proxied = f"{proxy_url}/anything/chat/completions"
    with (
        httpx.Client(timeout=30, headers={"Authorization": f"Bearer {UPSTREAM_KEY}"}) as client,
        httpx.Client(timeout=30, headers={"Authorization": f"Bearer {CONSUMER_KEY}"}) as via,
    ):
        calls: dict[str, Callable[[], float]] = {
            "direct_chat": lambda: chat_ms(client, direct, DIRECT_BODY),
            "proxy_chat": lambda: chat_ms(via, proxied, PROXY_BODY),
            "direct_ttft": lambda: ttft_ms(client, direct, DIRECT_BODY),
            "proxy_ttft": lambda: ttft_ms(via, proxied, PROXY_BODY),
        }
        one_run(calls, args.warmup, dp_pid)  # connection pools, credential cache
        return [one_run(calls, args.requests, dp_pid) for _ in range(args.runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="per call kind and run")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--data-plane", choices=("lockgate", "standalone"), default="lockgate")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="stored in the JSON (e.g. which build ran)")
    parser.add_argument("--serve-standalone", metavar="UPSTREAM", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_standalone:
        serve_standalone(args.serve_standalone, args.port)
        return

    load_before = os.getloadavg()
    with fake_provider() as upstream, data_plane(args.data_plane, upstream) as (url, dp_pid):
        runs = measure(url, upstream, dp_pid, args)
    load_after = os.getloadavg()

    summary = summarize(runs)
    meets = all(summary[k]["added_p50_ms"] < TARGET_MS for k in ("chat", "ttft"))
    result = {
        "benchmark": "ai_proxy_latency",
        "pipeline": "pre-function + key-auth + ai-proxy-advanced (openai)",
        "data_plane": args.data_plane,
        "command": "python bench/ai_proxy_latency.py "
        f"--runs {args.runs} --requests {args.requests} --data-plane {args.data_plane}",
        "runs": args.runs,
        "requests_per_run": args.requests,
        "target_added_p50_ms": TARGET_MS,
        "note": args.note,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
            "loadavg_1_5_15_after": [round(x, 2) for x in load_after],
        },
        **summary,
        "per_run": runs,
        "meets_target": meets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'':22}{'direct p50':>11}{'proxy p50':>11}{'added p50':>11}{'added p99':>11}")
    for kind, label in (("chat", "chat (non-streaming)"), ("ttft", "time to first token")):
        row = summary[kind]
        print(
            f"{label:22}{row['direct_p50_ms']:>9.3f}ms{row['proxy_p50_ms']:>9.3f}ms"
            f"{row['added_p50_ms']:>9.3f}ms{row['added_p99_ms']:>9.3f}ms"
        )
    print(f"data plane CPU per proxied request: {summary['dp_cpu_us_per_request']} us")
    print(f"load average before {load_before}, after {load_after} ({os.cpu_count()} CPUs)")
    print(f"target: added p50 < {TARGET_MS} ms each: {'met' if meets else 'MISSED'}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
