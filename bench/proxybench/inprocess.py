"""The proxy's own Python cost per request, without sockets: `ProxyApp` called as an ASGI app
with a canned upstream answer, per scenario, plus a cProfile of where that time goes.

What this leaves out (measured end to end by the wrk runs instead): parsing the client's
request, the socket reads and writes, and the event loop's polling."""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import pstats
import time
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import Timeouts
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialMatch, InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from proxybench import lockgate, nginx

BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]})


class _Canned:
    status = 200

    def __init__(self) -> None:
        self.headers = [
            ("Server", "nginx"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(nginx.COMPLETION))),
            ("Connection", "keep-alive"),
        ]

    def complete_body(self) -> bytes | None:
        return nginx.COMPLETION.encode()  # as a small answer arriving with its head

    async def read(self) -> bytes:
        return nginx.COMPLETION.encode()

    async def chunks(self) -> AsyncIterator[bytes]:
        yield nginx.COMPLETION.encode()

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class CannedUpstream:
    """Stands in for `UpstreamClient`: every request gets the nginx upstream's answer."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, *args: Any) -> _Canned:
        assert isinstance(args[-2], Timeouts)
        return _Canned()


def runtime(upstream_port: int = 9) -> RuntimeHolder:
    """The three scenarios' routes (pipeline, keyauth, plain) in front of 127.0.0.1:port."""
    service = Service(host="127.0.0.1", port=upstream_port, path="/v1/chat/completions")
    routes = {
        name: Route(name=name, paths=[f"/{name}"], service=Ref(id=service.id))
        for name in ("pipeline", "keyauth", "plain")
    }
    pipeline = Ref(id=routes["pipeline"].id)
    ai = lockgate.ai_proxy(f"http://127.0.0.1:{upstream_port}/v1/chat/completions")
    plugins = (
        PluginEntity(
            name="pre-function", route=pipeline, config={"access": [lockgate.PRE_FUNCTION]}
        ),
        PluginEntity(name="key-auth", route=pipeline, config={"key_names": ["apikey"]}),
        PluginEntity(name="ai-proxy-advanced", route=pipeline, config=ai["config"]),
        PluginEntity(
            name="key-auth", route=Ref(id=routes["keyauth"].id), config={"key_names": ["apikey"]}
        ),
    )
    credentials = InMemoryCredentials()
    credentials.add(
        lockgate.CONSUMER_KEY,
        CredentialMatch(CredentialInfo("k1", "c1"), ConsumerInfo(id="c1", username="bench")),
    )
    snapshot = Snapshot.create(1, (service,), tuple(routes.values()), plugins)
    holder = RuntimeHolder()
    holder.swap(compile_runtime(snapshot, registry(), credentials))
    return holder


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> MutableMapping[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


SCENARIOS = {
    "pipeline": ("/pipeline", [(b"authorization", f"Bearer {lockgate.CONSUMER_KEY}".encode())]),
    "keyauth": ("/keyauth", [(b"apikey", lockgate.CONSUMER_KEY.encode())]),
    "plain": ("/plain", []),
}


async def _loop(app: ProxyApp, scenario: str, requests: int) -> None:
    path, headers = SCENARIOS[scenario]
    body = BODY.encode()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(requests):
        await app(_scope(path, headers), receive, send)
    if set(statuses) != {200}:
        raise RuntimeError(f"{scenario}: statuses {set(statuses)}")


def measure(requests: int = 20000, runs: int = 5) -> dict[str, Any]:
    """Median CPU microseconds per request per scenario, and the top of a cProfile each."""
    app = ProxyApp(runtime(), CannedUpstream())  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for scenario in SCENARIOS:
        asyncio.run(_loop(app, scenario, 2000))  # warm up (Lua compiled, caches filled)
        samples = []
        for _ in range(runs):
            t0 = time.process_time()
            asyncio.run(_loop(app, scenario, requests))
            samples.append((time.process_time() - t0) / requests * 1e6)
        samples.sort()
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(_loop(app, scenario, requests // 4))
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(18)
        out[scenario] = {
            "cpu_us_per_request": round(samples[len(samples) // 2], 1),
            "profile_top_tottime": _trim(text.getvalue()),
        }
    return out


def _trim(report: str) -> str:
    lines = report.splitlines()
    start = next((i for i, x in enumerate(lines) if x.strip().startswith("ncalls")), 0)
    return "\n".join(line.replace("/work/main/", "") for line in lines[start:] if line.strip())


if __name__ == "__main__":
    for name, result in measure(requests=10000, runs=3).items():
        print(name, result["cpu_us_per_request"])
        print(result["profile_top_tottime"])


def json_costs(loops: int = 20000) -> dict[str, float]:
    """The three JSON steps of one ai-proxy request (parse the client's body, serialize the
    provider's, parse the answer), stdlib `json` vs `orjson`, µs per request."""
    import orjson

    request = BODY.encode()
    answer = nginx.COMPLETION.encode()

    def stdlib() -> None:
        doc = json.loads(request)
        json.dumps({**doc, "model": "gpt-4o"}, ensure_ascii=False).encode()
        json.loads(answer)

    def fast() -> None:
        doc = orjson.loads(request)
        orjson.dumps({**doc, "model": "gpt-4o"})
        orjson.loads(answer)

    out = {}
    for name, fn in (("stdlib_json_us", stdlib), ("orjson_us", fast)):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        out[name] = round((time.perf_counter() - t0) / loops * 1e6, 2)
    return out
