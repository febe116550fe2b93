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

from data_plane.lazy_timer import LazyTimer


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
        self._waiting: asyncio.Future[None] | None = None
        """The waiter `_timer` fails with TimeoutError when its deadline passes."""
        self._timer = LazyTimer(self._loop, self._timed_out)
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._headers: list[tuple[str, str]] = []
        self._length = False
        """The current answer has a Content-Length header."""
        self._chunked = False
        """The current answer has a Transfer-Encoding header."""
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
        self._timer.cancel()
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
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self._length = True
        elif size == 17 and name.lower() == b"transfer-encoding":
            self._chunked = True
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue / 103 Early Hints: the real answer follows
            self._headers = []
            self._length = self._chunked = False
            return
        self._status = status
        self._has_head = True
        framed = self._length or self._chunked
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
        self._length = self._chunked = False
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
            await self._wait(self._drain_waiter, timeout_s)
        finally:
            self._drain_waiter = None
        if self.closed and self._error is not None:
            raise self._error

    async def head(self, timeout_s: float, head_request: bool) -> tuple[int, list[tuple[str, str]]]:
        """Wait for the answer's status and headers."""
        if not self._has_head and self._error is None:
            # `_wait` inlined: every request waits here.
            fut = self._head_waiter = self._waiting = self._loop.create_future()
            self._timer.arm(timeout_s)
            try:
                await fut
            finally:
                self._head_waiter = self._waiting = None
                self._timer.disarm()
        if self._error is not None:
            raise self._error
        if head_request:
            # The parser cannot know a HEAD answer has no body: take it as complete, and do
            # not reuse the connection (its framing state is unknown).
            self._done = True
            self._keep_alive = False
        return self._status, self._headers

    @property
    def length_known(self) -> bool:
        """The current answer came with a Content-Length (and no Transfer-Encoding)."""
        return self._length and not self._chunked

    def complete_body(self) -> bytes | None:
        """The whole body if the answer is already complete (all of it received), else None
        (then read it with `next_chunk`)."""
        if not self._done or self._error is not None:
            return None
        chunks = self._chunks
        if not chunks:
            body = b""
        elif len(chunks) == 1:
            body = chunks.popleft()
        else:
            body = b"".join(chunks)
            chunks.clear()
        self._buffered = 0
        if self._reading_paused and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()
        return body

    async def next_chunk(self, timeout_s: float) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while not self._chunks:
            if self._done:
                return None
            if self._error is not None:
                raise self._error
            self._body_waiter = self._loop.create_future()
            try:
                await self._wait(self._body_waiter, timeout_s)
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

    async def _wait(self, fut: asyncio.Future[None], timeout_s: float) -> None:
        """Await `fut`; raises TimeoutError if it is not done within `timeout_s` seconds."""
        self._waiting = fut
        self._timer.arm(timeout_s)
        try:
            await fut
        finally:
            self._waiting = None
            self._timer.disarm()

    def _timed_out(self) -> None:
        fut = self._waiting
        if fut is not None and not fut.done():
            fut.set_exception(TimeoutError())

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
        self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
