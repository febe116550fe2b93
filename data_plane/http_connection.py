"""One client HTTP/1.1 connection: an asyncio Protocol feeding httptools' response parser.

Used by `data_plane.http_client`; one request at a time (no pipelining). The response body is
queued as it arrives; reading from the socket pauses above the high-water mark and resumes
below a quarter of it, so a slow consumer slows the upstream down instead of growing memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

from data_plane import deadline


class ConnectionClosed(Exception):
    """The peer closed or reset the connection before the answer was complete."""


def _wake(fut: asyncio.Future[None] | None) -> None:
    if fut is not None and not fut.done():
        fut.set_result(None)


class ClientConnection(asyncio.Protocol):
    """Protocol state of one upstream connection (see module doc)."""

    def __init__(self, high_water: int) -> None:
        self._high = high_water
        self._low = high_water // 4
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._head_waiter: asyncio.Future[None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._headers: list[tuple[str, str]] = []
        self._status = 0
        self._interim = False
        self._has_head = False
        self._done = False
        self._until_eof = False
        self._keep_alive = False
        self._error: Exception | None = None
        self.closed = False
        self.writing_paused = False
        self.bytes_received = 0
        """Bytes of the current answer received so far (0: the upstream sent nothing yet)."""
        self.idle_since = 0.0
        self.key_hint: tuple[str, str, int] | None = None
        """The pool key this connection belongs to (set by the pool)."""

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._has_head and self._done:
            # Bytes after a complete answer with no request in flight: not a connection to keep.
            self._keep_alive = False
            return
        self.bytes_received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        if self._has_head and self._until_eof and not self._done:
            # An answer without Content-Length or chunked framing ends with the connection.
            self._done = True
            self._keep_alive = False
            _wake(self._body_waiter)
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._done:
            self._fail(ConnectionClosed(str(exc) if exc else "connection closed by the upstream"))
        _wake(self._drain_waiter)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        _wake(self._drain_waiter)

    # -- httptools callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue / 103 Early Hints: the real answer follows
            self._headers = []
            return
        self._status = status
        self._has_head = True
        framed = any(k.lower() in ("content-length", "transfer-encoding") for k, _ in self._headers)
        self._until_eof = not framed and status not in (204, 304)
        _wake(self._head_waiter)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > self._high and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        _wake(self._body_waiter)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._done = True
        self._keep_alive = self._parser.should_keep_alive()
        _wake(self._body_waiter)

    # -- used by the pool and the response --

    @property
    def reusable(self) -> bool:
        """The last answer is complete, may be kept alive, and the socket is still open."""
        return self._done and self._keep_alive and not self.closed and self._error is None

    def send(self, data: bytes) -> None:
        """Write (part of) the current request."""
        assert self._transport is not None
        if self.closed:
            raise self._error or ConnectionClosed("connection already closed")
        self._transport.write(data)

    def begin(self) -> None:
        """Forget the previous answer: a new request is about to be sent."""
        self._headers = []
        self._status = 0
        self._has_head = False
        self._done = False
        self._until_eof = False
        self._keep_alive = False
        self._interim = False
        self._chunks.clear()
        self._buffered = 0
        self.bytes_received = 0

    async def drain(self, timeout_s: float) -> None:
        """Until the socket's write buffer is below its high-water mark."""
        if not self.writing_paused or self.closed:
            return
        self._drain_waiter = self._loop.create_future()
        try:
            await deadline.wait(self._loop, self._drain_waiter, timeout_s)
        finally:
            self._drain_waiter = None
        if self.closed and self._error is not None:
            raise self._error

    async def head(self, timeout_s: float, head_request: bool) -> tuple[int, list[tuple[str, str]]]:
        """Wait for the answer's status and headers."""
        if not self._has_head and self._error is None:
            self._head_waiter = self._loop.create_future()
            try:
                await deadline.wait(self._loop, self._head_waiter, timeout_s)
            finally:
                self._head_waiter = None
        if self._error is not None:
            raise self._error
        if head_request:
            # The parser cannot know a HEAD answer has no body: take it as complete, and do
            # not reuse the connection (its framing state is unknown).
            self._done = True
            self._keep_alive = False
        return self._status, self._headers

    async def next_chunk(self, timeout_s: float) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while not self._chunks:
            if self._done:
                return None
            if self._error is not None:
                raise self._error
            self._body_waiter = self._loop.create_future()
            try:
                await deadline.wait(self._loop, self._body_waiter, timeout_s)
            finally:
                self._body_waiter = None
        if len(self._chunks) == 1:
            chunk = self._chunks.popleft()
        else:
            # Everything already here goes on as one piece: one write downstream instead of
            # one per upstream read when the consumer fell behind.
            chunk = b"".join(self._chunks)
            self._chunks.clear()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered <= self._low and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()
        return chunk

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        if self._transport is not None:
            self._transport.close()
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_result(None)
        _wake(self._body_waiter)

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
