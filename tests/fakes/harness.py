"""What every fake provider server shares: request recording, canned answers (and stalled or
dropped connections), running in a background thread (in-process tests) or as a process
(`python -m tests.fakes.<name>`).

A fake is an `AppBackend`: `routes()` lists its handlers; every request is recorded before its
handler runs, and a canned answer queued with `queue_response` is returned instead of the real
handling (`queue_stall` delays the real handling, `queue_drop` closes the connection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from aiohttp import web

from gateway.headers import Headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = web.RequestKey("lockgate_fake_body", object)
"""The request's parsed JSON body (None if not JSON), set before a handler runs."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    json: Any
    """The parsed JSON body, or None if it was not JSON."""


@dataclass(frozen=True, slots=True)
class CannedResponse:
    status: int
    """0: answer normally (after `delay`)."""
    body: bytes
    headers: tuple[tuple[str, str], ...]
    delay: float = 0.0
    """Seconds to wait before answering."""
    drop: bool = False
    """Close the connection instead of answering."""


class AppBackend:
    """Base of a fake's request handling: recording and canned answers."""

    def __init__(self, api_key: str | None = None, stream_delay: float = 0.0) -> None:
        self.api_key = api_key
        self.stream_delay = stream_delay
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.queued: list[CannedResponse] = []

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path pattern, handler) triples."""
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application()
        for method, path, handler in self.routes():
            app.router.add_route(method, path, self._guard(handler))
        return app

    def _guard(self, handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            try:
                doc: Any = json.loads(raw) if raw else None
            except ValueError:
                doc = None
            with self.lock:
                self.requests.append(
                    RecordedRequest(
                        request.method,
                        request.path,
                        request.query_string,
                        Headers(request.headers.items()),
                        raw,
                        doc,
                    )
                )
                canned = self.queued.pop(0) if self.queued else None
            if canned is not None:
                if canned.delay:
                    await asyncio.sleep(canned.delay)
                if canned.drop:
                    assert request.transport is not None
                    request.transport.abort()
                    raise asyncio.CancelledError  # nothing more to send on a dead connection
                if canned.status:
                    return web.Response(
                        status=canned.status, body=canned.body, headers=canned.headers
                    )
            request[BODY] = doc
            return await handler(request)

        return run

    async def pause(self) -> None:
        """Sleep between streamed events when a delay is configured."""
        if self.stream_delay:
            await asyncio.sleep(self.stream_delay)

    async def sse_data(self, response: web.StreamResponse, data: str) -> None:
        """Write one server-sent event carrying only `data`, then `pause()`."""
        await response.write(f"data: {data}\n\n".encode())
        await self.pause()


B = TypeVar("B", bound=AppBackend)


class FakeServer(Generic[B]):
    """A fake served from a background thread on 127.0.0.1 (ephemeral port by default)."""

    def __init__(self, backend: B, *, port: int = 0) -> None:
        self.backend = backend
        self._port = port
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.url = ""

    @property
    def port(self) -> int:
        """The loopback port it listens on (once started)."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self.backend.lock:
            return list(self.backend.requests)

    def queue_response(
        self, status: int, body: object, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request with `status` and `body` (bytes as-is, else JSON)."""
        if isinstance(body, bytes):
            data, content_type = body, "text/plain"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        merged = {"Content-Type": content_type, **(headers or {})}
        with self.backend.lock:
            self.backend.queued.append(CannedResponse(status, data, tuple(merged.items())))

    def queue_stall(self, seconds: float) -> None:
        """Make the next request wait `seconds` before it is answered normally."""
        with self.backend.lock:
            self.backend.queued.append(CannedResponse(0, b"", (), delay=seconds))

    def queue_drop(self) -> None:
        """Close the next request's connection without answering."""
        with self.backend.lock:
            self.backend.queued.append(CannedResponse(0, b"", (), drop=True))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-provider", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self.url:
            raise RuntimeError("fake provider server failed to start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = await _start(self.backend, self._port)
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


async def _start(backend: AppBackend, port: int) -> web.AppRunner:
    runner = web.AppRunner(backend.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def main(make: Callable[[str | None, float], AppBackend], description: str) -> None:
    """Command-line entry point: `--port N [--api-key K] [--stream-delay S]`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--stream-delay", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(_serve_forever(make(args.api_key, args.stream_delay), args.port))


async def _serve_forever(backend: AppBackend, port: int) -> None:
    runner = await _start(backend, port)
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def words(text: str) -> int:
    """The fakes' token count: whitespace-separated words."""
    return len(text.split())


def pieces(text: str) -> list[str]:
    """`text` split into streamed deltas, one word each (spaces kept)."""
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


def reply_to(text: str) -> str:
    """The fakes' answer to a prompt: an echo, so tests can check the prompt arrived."""
    return f"Hello! You said: {text}"


def tool_input(schema: object, text: str) -> dict[str, Any]:
    """The arguments the fakes pass when they call a tool: every required property set to the
    user's last text (the fakes 'decide' to call the first tool offered)."""
    required = schema.get("required") if isinstance(schema, dict) else None
    return {name: text for name in required or [] if isinstance(name, str)}
