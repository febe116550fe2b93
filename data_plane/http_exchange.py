"""One request/response exchange of `data_plane.http_server`, offered to an ASGI app.

The app gets an ASGI 3 `http` scope (header names lower-cased, values as received), a
`receive` that yields the body as it arrives and `http.disconnect` once the client is gone, and
a `send` that frames the answer: Content-Length when the whole body comes in one message (or
the app set it), chunked otherwise; a HEAD answer's body is not written. The head is written
together with the first body message, so a small answer leaves in one write.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools

from data_plane import deadline

if TYPE_CHECKING:
    from data_plane.http_server_connection import App, ServerConnection

log = logging.getLogger("lockgate.http")

Message = MutableMapping[str, Any]

_STATUS_LINES: dict[int, bytes] = {}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CHUNK_END = b"0\r\n\r\n"
_DISCONNECT: Message = {"type": "http.disconnect"}
_NO_BODY_STATUS = frozenset({204, 304})


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode()
    return line


def canned(status: int, message: str) -> bytes:
    """A complete answer the server gives on its own (limits, malformed requests), then closes;
    the body is Kong's error shape."""
    body = json.dumps({"message": message}).encode()
    return (
        status_line(status)
        + b"Content-Type: application/json; charset=utf-8\r\n"
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


class Exchange:
    """A request as parsed so far, and the state of its answer."""

    __slots__ = (
        "body_done",
        "buffered",
        "chunked",
        "chunks",
        "complete",
        "conn",
        "content_length",
        "continue_sent",
        "expect_continue",
        "gone",
        "head_written",
        "headers",
        "hosts",
        "http_version",
        "keep_alive",
        "method",
        "reject",
        "response_complete",
        "response_headers",
        "started",
        "status",
        "task",
        "url",
        "waiter",
    )

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hosts = 0
        """Host headers in the request (counted by `head_done`)."""
        self.method = "GET"
        self.http_version = "1.1"
        self.keep_alive = True
        self.content_length = 0
        self.expect_continue = False
        self.continue_sent = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.body_done = False
        self.gone = False
        self.waiter: asyncio.Future[None] | None = None
        self.reject: tuple[int, str] | None = None
        self.task: asyncio.Task[None] | None = None
        self.started = False
        self.head_written = False
        self.response_complete = False
        self.chunked = False
        self.status = 0
        self.response_headers: list[tuple[bytes, bytes]] = []

    # -- fed by the connection --

    def head_done(self, method: str, http_version: str, keep_alive: bool) -> None:
        self.method = method
        self.http_version = http_version
        self.keep_alive = keep_alive
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.reject = (400, "Bad request")
            elif name == b"host":
                self.hosts += 1
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expect_continue = True

    def feed(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._wake()

    def finish(self) -> None:
        self.complete = True
        self._wake()

    def disconnected(self) -> None:
        self.gone = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the ASGI side --

    def scope(self) -> MutableMapping[str, Any]:
        raw = self.url
        if raw[:1] == b"/":
            path, _, query = raw.partition(b"?")
            path = path.partition(b"#")[0]
            query = query.partition(b"#")[0]
        else:  # absolute form (a client that takes us for a forward proxy) or `*`
            parsed = httptools.parse_url(raw)
            path = parsed.path or b"/"
            query = parsed.query or b""
        text = path.decode("latin-1")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": self.http_version,
            "server": self.conn.local,
            "client": self.conn.client,
            "scheme": "http",
            "method": self.method,
            "root_path": "",
            "path": unquote(text) if "%" in text else text,
            "raw_path": path,
            "query_string": query,
            "headers": self.headers,
        }

    async def run(self, app: App) -> None:
        try:
            await app(self.scope(), self.receive, self.send)
        except Exception:
            log.exception("unhandled error in the proxy application")
            self.keep_alive = False
            if not self.started and not self.gone:
                self.conn.write(canned(500, "An unexpected error occurred"))
        else:
            if not self.response_complete and not self.started and not self.gone:
                log.error("the application returned without answering")
                self.conn.write(canned(500, "An unexpected error occurred"))
                self.keep_alive = False
        finally:
            self.conn.exchange_done(self)

    async def receive(self) -> Message:
        if self.body_done:
            # The whole body was handed over; what is left to report is the client leaving.
            while not self.gone:
                await self._wait(None)
            return _DISCONNECT
        while not self.chunks:
            if self.gone:
                return _DISCONNECT
            if self.complete:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.expect_continue and not self.continue_sent and not self.started:
                self.continue_sent = True
                self.conn.write(_CONTINUE)
            self.conn.resume_reading()
            if not await self._wait(self.conn.limits.body_timeout_s):
                if not self.started:
                    self.conn.write(canned(408, "Request timeout"))
                    self.started = True
                self.keep_alive = False
                self.conn.close()
                return _DISCONNECT
        body = self.chunks.popleft()
        self.buffered -= len(body)
        if not self.complete and self.buffered < 65536:
            self.conn.resume_reading()
        more = bool(self.chunks) or not self.complete
        self.body_done = not more
        return {"type": "http.request", "body": body, "more_body": more}

    async def _wait(self, timeout_s: float | None) -> bool:
        """Until woken by new data, the end of the body or a disconnect; False on timeout."""
        loop = self.conn.loop
        self.waiter = loop.create_future()
        try:
            if timeout_s is None:
                await self.waiter
            else:
                await deadline.wait(loop, self.waiter, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiter = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("response already started")
            self.started = True
            self.status = message["status"]
            self.response_headers = message.get("headers", [])
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if not self.started or self.response_complete:
            raise RuntimeError("response body outside a response")
        if self.gone:
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        conn = self.conn
        if not self.head_written:
            self.head_written = True
            head = self._head(body, more)
            if self.method == "HEAD" or not body:
                conn.write(head)
            elif self.chunked:
                conn.write(head + self._frame(body))
            else:
                conn.write(head + body)
        elif body and self.method != "HEAD":
            conn.write(self._frame(body))
        if not more:
            self.response_complete = True
            if self.chunked and self.method != "HEAD":
                conn.write(_CHUNK_END)
        if conn.writing_paused:
            await conn.drain()

    def _frame(self, body: bytes) -> bytes:
        if self.chunked and body:
            return b"%x\r\n%b\r\n" % (len(body), body)
        return body

    def _head(self, body: bytes, more: bool) -> bytes:
        lines = [status_line(self.status)]
        has_length = False
        for name, value in self.response_headers:
            size = len(name)  # lower-case only the names that may be a framing header
            if size == 14 or size == 17 or size == 10:
                lname = name.lower()
                if lname == b"content-length":
                    has_length = True
                elif lname == b"transfer-encoding" or lname == b"connection":
                    continue  # framing is the server's business
            lines += (name, b": ", value, b"\r\n")
        if self.status in _NO_BODY_STATUS:
            pass
        elif not has_length and not more:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        elif not has_length:
            if self.http_version == "1.1":
                self.chunked = True
                lines.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False  # an HTTP/1.0 client reads to the end of the connection
        if not self.keep_alive or self.conn.closing or self.conn.server.draining:
            self.keep_alive = False
            lines.append(b"Connection: close\r\n")
        elif self.http_version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)
