"""Load from `wrk` (pinned to its own core) with a Lua script for the POST body and headers.

wrk2 (constant throughput) is not packaged in Debian, so a fixed rate is approximated with
wrk's own `delay()` hook: every connection waits a random think time (uniform 0-2T ms, mean T)
before each request (closed loop with think time). With C connections, mean think time T and
latency L the rate is C / (T + L); we pick C for the wanted rate and report the rate actually
achieved. Latency is
wrk's, from send to response, so it excludes the think time."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from proxybench import procs

_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
{headers}
{delay}
function done(summary, latency, requests)
  local e = summary.errors
  io.write("WRKJSON ", string.format(
    '{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%f,"max_us":%d}}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max), "\\n")
end
"""

THINK_MS = 10
"""Think time per connection in fixed-rate runs (wrk's delay() has millisecond resolution)."""


@dataclass(frozen=True)
class Request:
    url: str
    body: str
    headers: tuple[tuple[str, str], ...]


@dataclass
class Result:
    requests: int
    seconds: float
    rps: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    connections: int
    think_ms: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _lua(value: str) -> str:
    return "[==[" + value + "]==]"


def script(path: Path, request: Request, think_ms: int = 0) -> Path:
    headers = "\n".join(f"wrk.headers[ {_lua(k)} ] = {_lua(v)}" for k, v in request.headers)
    # Uniform in [0, 2 x think]: the mean stays `think_ms`, and connections do not wake in
    # lockstep (a fixed think time makes them fire in bursts and measures queueing instead).
    delay = f"function delay() return math.random(0, {2 * think_ms}) end" if think_ms else ""
    path.write_text(_SCRIPT.format(body=_lua(request.body), headers=headers, delay=delay))
    return path


def command(request: Request, script_path: Path, connections: int, seconds: int) -> list[str]:
    return [
        "taskset",
        "-c",
        procs.LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script_path),
        request.url,
    ]


def run(
    request: Request,
    work: Path,
    *,
    connections: int,
    seconds: int,
    think_ms: int = 0,
) -> Result:
    path = script(work / f"wrk-{abs(hash((request, think_ms)))}.lua", request, think_ms)
    out = subprocess.run(
        command(request, path, connections, seconds),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds_ = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        requests=raw["requests"],
        seconds=round(seconds_, 3),
        rps=round(raw["requests"] / seconds_, 1),
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        connections=connections,
        think_ms=think_ms,
    )


def connections_for_rate(rate: float) -> int:
    """Connections that, each waiting THINK_MS between requests, offer about `rate` req/s."""
    return max(1, round(rate * THINK_MS / 1000))


def version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" [")[0]
