"""One client connection of `data_plane.http_server`: httptools parses, an ASGI app answers.

Requests on a connection are answered in order (pipelined ones wait, with reading paused).
Limits answer before the app runs: a malformed request gets 400 (`refused_head` adds what
httptools accepts and nginx refuses), a head over the header limit 431, a declared body over the
body limit 413. Each then closes the connection, lingering: an answer sent before the request
was read is followed by a half-close and a short wait dropping what the client still sends, so
that the client reads the answer rather than a reset. Reading pauses while more than
`HIGH_WATER` body bytes wait for the app; the app's writes wait while the socket's buffer is
full. `Expect: 100-continue` is answered when the app first asks for the body.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

import httptools

from data_plane.http_exchange import Exchange, canned
from data_plane.lazy_timer import LazyTimer

if TYPE_CHECKING:
    from data_plane.http_server import HttpServer

Message = MutableMapping[str, Any]
App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]

HIGH_WATER = 256 * 1024
LINGER_S = 2.0
"""How long a connection answered before its request was read keeps reading (and dropping)
what the client still sends, so that unread data does not reset the connection before the
client reads the answer (nginx's lingering close; its lingering_timeout is 5 s)."""
_BAD_REQUEST = (400, "Bad request")


def refused_head(ex: Exchange) -> tuple[int, str] | None:
    """400 for what httptools lets through and nginx refuses: an HTTP version other than 1.0
    and 1.1, an HTTP/1.1 request without Host or any request with two (RFC 9112 §3.2), CONNECT,
    and a request target that is neither a path, `*` (OPTIONS) nor a valid absolute URL."""
    if ex.http_version not in ("1.0", "1.1") or ex.method == "CONNECT":
        return _BAD_REQUEST
    hosts = ex.hosts
    if hosts > 1 or (hosts == 0 and ex.http_version == "1.1"):
        return _BAD_REQUEST
    url = ex.url
    if url == b"*":
        return None if ex.method == "OPTIONS" else _BAD_REQUEST
    if url[:1] != b"/":
        try:
            httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            return _BAD_REQUEST
    return None


def origin_form(ex: Exchange) -> None:
    """An absolute-form target (`GET http://host:port/path?q HTTP/1.1`): the target's authority
    replaces the Host header and the request continues with its path and query, so it is
    routed by the host it names (RFC 9112 §3.2.2; what nginx does)."""
    parts = httptools.parse_url(ex.url)
    path = parts.path or b"/"
    ex.url = path + b"?" + parts.query if parts.query is not None else path
    host = b"[%s]" % parts.host if b":" in parts.host else parts.host
    if parts.port is not None:
        host += b":%d" % parts.port
    ex.headers = [(n, host if n == b"host" else v) for n, v in ex.headers]
    if not ex.hosts:
        ex.headers.append((b"host", host))


class ServerConnection(asyncio.Protocol):
    """Protocol state of one accepted connection."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.limits
        self.max_header_bytes = self.limits.max_header_bytes
        self.max_headers = self.limits.max_headers
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.parsing: Exchange | None = None
        self.active: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.closing = False
        self.closed = False
        self.reading_paused = False
        self.writing_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.header_bytes = 0
        self.header_overflow = False
        self.halted = False
        """Parsing stopped for good (a refused or malformed request)."""
        self.loop = asyncio.get_running_loop()
        self.timer = LazyTimer(self.loop, self._expire)
        """The keep-alive / request head deadline (moved per request without touching the
        event loop's timers)."""
        self.linger_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.client = (str(peer[0]), int(peer[1])) if peer else None
        self.local = (str(sock[0]), int(sock[1])) if sock else None
        self.server.connections.add(self)
        self._arm(self.limits.keepalive_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.forget(self)
        self._cancel_timers()
        for ex in (self.active, self.parsing, *self.queue):
            if ex is not None:
                ex.disconnected()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.halted:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrades (WebSocket, h2c) are not proxied: answer the request as plain HTTP/1.1
            # and close afterwards.
            if self.parsing is not None:
                self.parsing.keep_alive = False
            elif self.queue:
                self.queue[-1].keep_alive = False
            elif self.active is not None:
                self.active.keep_alive = False
            self._pause_reading()
        except httptools.HttpParserError:
            if self.halted:
                self._pause_reading()  # a refused request is queued; nothing after it is read
            elif self.header_overflow:
                self.halted = True
                self._reject_now(431, "Request Header Fields Too Large")
            else:
                self.halted = True
                self._reject_now(400, "Bad request")

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    # -- httptools callbacks --

    def on_message_begin(self) -> None:
        self.header_bytes = 0
        self.parsing = Exchange(self)
        if self.active is None and not self.queue:
            self._arm(self.limits.header_timeout_s)

    def on_url(self, url: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        ex.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.limits.max_header_bytes:
            self.header_overflow = True
            raise ValueError("request line over the header limit")

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        headers = ex.headers
        headers.append((name.lower(), value))
        size = self.header_bytes = self.header_bytes + len(name) + len(value) + 4
        if size > self.max_header_bytes or len(headers) > self.max_headers:
            self.header_overflow = True
            raise ValueError("headers over the limit")

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        parser = self.parser
        ex.head_done(
            parser.get_method().decode("ascii"),
            parser.get_http_version(),
            parser.should_keep_alive(),
        )
        if ex.reject is None:
            ex.reject = refused_head(ex)
            if ex.reject is None and ex.url[:1] not in (b"/", b"*"):
                origin_form(ex)
        if ex.reject is None and ex.content_length > self.limits.max_body:
            ex.reject = (413, "Request size limit exceeded")
        if ex.reject is not None:
            # Stop parsing this connection: the answer is sent, then the connection is closed.
            ex.keep_alive = False
            ex.complete = True
            self.parsing = None
            self.halted = True
            self._enqueue(ex)
            raise ValueError("request refused")
        self._enqueue(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None:
            ex.feed(body)
            if ex.buffered > HIGH_WATER:
                self._pause_reading()

    def on_message_complete(self) -> None:
        ex = self.parsing
        if ex is not None:
            self.parsing = None
            ex.finish()

    # -- flow --

    def _enqueue(self, ex: Exchange) -> None:
        self._disarm()
        if self.active is None:
            self._run(ex)
        else:
            self.queue.append(ex)
            self._pause_reading()

    def _run(self, ex: Exchange) -> None:
        self.active = ex
        if ex.reject is not None:
            status, message = ex.reject
            self.write(canned(status, message))
            self.linger()
            return
        ex.task = self.loop.create_task(ex.run(self.server.app))

    def exchange_done(self, ex: Exchange) -> None:
        """Called when the app finished with `ex` (its response complete or abandoned)."""
        self.active = None
        if self.closed:
            return
        if not ex.complete and ex.response_complete:
            self.linger()  # answered without reading the whole body (413, an early error)
            return
        if not ex.keep_alive or self.closing or not ex.response_complete:
            self.close()
            return
        if self.queue:
            self._run(self.queue.popleft())
            return
        self.resume_reading()
        # Idle: the keep-alive timer; a next request already begun: the head timer.
        self._arm(self.limits.keepalive_s if self.parsing is None else self.limits.header_timeout_s)

    def _reject_now(self, status: int, message: str) -> None:
        """The byte stream is unusable: answer (if the client is not mid-answer) and close."""
        ex = self.parsing
        if ex is not None and ex is self.active and not ex.started:
            # The running request's own body is malformed: the app sees the client leave.
            ex.disconnected()
            self.write(canned(status, message))
            self.linger()
        elif self.active is None and not self.queue:
            self.write(canned(status, message))
            self.linger()
        else:
            # Answer the requests before the bad one, then close.
            self.closing = True
            self._pause_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.closed and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.writing_paused and not self.closed:
            self.drain_waiter = self.loop.create_future()
            try:
                await self.drain_waiter
            finally:
                self.drain_waiter = None

    def idle(self) -> bool:
        return self.active is None and self.parsing is None and not self.queue

    def linger(self) -> None:
        """Close after an answer sent before the request was read: stop sending, drop what
        the client still sends for up to LINGER_S, then close (the client closing ends it)."""
        if self.closed or self.transport is None:
            return
        if not self.transport.can_write_eof():
            self.close()
            return
        self.halted = True  # data_received drops everything from now on
        self.parsing = None
        self.transport.write_eof()
        self.resume_reading()
        self._disarm()
        if self.linger_timer is not None:
            self.linger_timer.cancel()
        self.linger_timer = self.loop.call_later(LINGER_S, self.close)

    def close(self) -> None:
        self._cancel_timers()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def _arm(self, seconds: float) -> None:
        self.timer.arm(seconds)

    def _disarm(self) -> None:
        self.timer.disarm()

    def _cancel_timers(self) -> None:
        self.timer.cancel()
        if self.linger_timer is not None:
            self.linger_timer.cancel()
            self.linger_timer = None

    def _expire(self) -> None:
        if self.parsing is not None and self.active is None:
            self.write(canned(408, "Request timeout"))
        self.close()
