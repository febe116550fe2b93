"""A minimal pooled HTTP/1.1 client on httptools, for the proxy's upstream calls.

Why hand-written: aiohttp's per-request machinery (header normalisation, request objects,
payload writers) cost more than the whole gateway pipeline; this client builds the request in
one buffer, writes it in one call and parses the answer with httptools' C parser.

Contract:
- One `ConnectionPool` per process; idle keep-alive connections per (scheme, host, port),
  newest first, dropped after `keepalive_s` idle or when the peer closed them.
- A reused connection that fails before one byte of the answer arrived (the upstream closed an
  idle connection while the request was on its way) is retried once on a fresh connection; that
  is the only retry done here.
- Timeouts per phase: connect (TCP + TLS handshake), write (each wait for the socket buffer to
  drain), read (each wait for the next bytes of the answer, head or body).
- Bodies stream: `Response.chunks()` yields as data arrives; reading from the socket pauses
  while more than `HIGH_WATER` bytes wait to be consumed (backpressure to the upstream).
- Interim 1xx answers (100 Continue, 103 Early Hints) are skipped.
- https verifies certificates and host names with the pool's `ssl.SSLContext`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator

import httptools

from data_plane.http_connection import ClientConnection, ConnectionClosed

HIGH_WATER = 256 * 1024
"""Buffered response bytes at which reading from the upstream pauses."""


class ClientError(Exception):
    """Base of the client's failures. `sent` is False when the request certainly never left."""

    sent = True


class ConnectError(ClientError):
    sent = False


class ConnectTimeout(ClientError):
    sent = False


class WriteTimeout(ClientError):
    pass


class ReadTimeout(ClientError):
    pass


class InvalidResponse(ClientError):
    pass


class Disconnected(ClientError):
    """The upstream closed the connection (or reset it) before the answer was complete."""


Key = tuple[str, str, int]


class Response:
    """An answer whose head has arrived. Read the body with `read()` or `chunks()`, then call
    `release()` (keeps the connection when the body was read to the end) or `close()`."""

    __slots__ = ("_conn", "_pool", "_read_s", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        conn: ClientConnection,
        pool: ConnectionPool,
        read_s: float,
    ) -> None:
        self.status = status
        self.headers = headers
        """(name, value) pairs as received, names in their original case."""
        self._conn: ClientConnection | None = conn
        self._pool = pool
        self._read_s = read_s

    async def _next(self) -> bytes | None:
        conn = self._conn
        assert conn is not None, "response already released"
        try:
            return await conn.next_chunk(self._read_s)
        except TimeoutError as exc:
            raise ReadTimeout("upstream read timed out") from exc
        except ConnectionClosed as exc:
            raise Disconnected(str(exc)) from exc
        except httptools.HttpParserError as exc:
            raise InvalidResponse(f"invalid upstream body: {exc}") from exc

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked framing removed)."""
        # A plain iterator object, not an async generator: the event loop registers every
        # async generator (a WeakSet entry and a finalizer), a cost paid once per response.
        return _Chunks(self)

    def complete_body(self) -> bytes | None:
        """The whole body if the answer came with a Content-Length and all of it has already
        arrived (a small answer usually comes with its head), else None: read it with
        `read()` or `chunks()` then."""
        conn = self._conn
        if conn is None or not conn.length_known:
            return None
        return conn.complete_body()

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        if conn is not None:
            body = conn.complete_body()
            if body is not None:
                return body
        parts = []
        while (chunk := await self._next()) is not None:
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Give the connection back if the answer was read to the end, else close it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.put(conn)

    def close(self) -> None:
        """Close the connection without reading the rest of the answer."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _Chunks:
    """`Response.chunks()`: each step awaits the next piece of the body."""

    __slots__ = ("_response",)

    def __init__(self, response: Response) -> None:
        self._response = response

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._response._next()
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class ConnectionPool:
    """Keep-alive connections to upstreams. Use from one event loop."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = 60.0,
        max_idle_per_host: int = 256,
    ) -> None:
        self._ssl = ssl_context
        self._keepalive_s = keepalive_s
        self._max_idle = max_idle_per_host
        self._idle: dict[Key, deque[ClientConnection]] = {}
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # Verifies chains against the system's trust store and checks host names.
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def request(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        connect_s: float,
        write_s: float,
        read_s: float,
    ) -> Response:
        """Send one request and wait for the head of its answer.

        `headers` must not contain Content-Length or Transfer-Encoding (the body is sent with a
        Content-Length); Host must be among them. Raises a `ClientError`."""
        key = (scheme, host, port)
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        lines += [f"{k}: {v}\r\n" for k, v in headers]
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        try:
            head = "".join(lines).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ConnectError(f"request head is not latin-1: {exc}") from exc
        data = head + body if len(body) < 65536 else None
        conn = self._take(key)
        while True:
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, connect_s)
            conn.begin()
            try:
                if data is not None:
                    conn.send(data)
                else:
                    conn.send(head)
                    conn.send(body)
                if conn.writing_paused:  # (a coroutine call fewer in the usual case)
                    try:
                        await conn.drain(write_s)
                    except TimeoutError as exc:
                        raise WriteTimeout("upstream write timed out") from exc
                try:
                    status, raw_headers = await conn.head(read_s, method == "HEAD")
                except TimeoutError as exc:
                    raise ReadTimeout("upstream read timed out") from exc
            except ConnectionClosed as exc:
                conn.close()
                if reused and conn.bytes_received == 0:
                    conn = None  # an idle connection the upstream had closed: once more, fresh
                    continue
                raise Disconnected(f"upstream closed the connection: {exc}") from exc
            except httptools.HttpParserError as exc:
                conn.close()
                raise InvalidResponse(f"invalid upstream response: {exc}") from exc
            except ClientError:
                conn.close()
                raise
            return Response(status, raw_headers, conn, self, read_s)

    def _take(self, key: Key) -> ClientConnection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # newest first: the least likely to have been closed
            if conn.reusable and now - conn.idle_since < self._keepalive_s:
                return conn
            conn.close()
        return None

    async def _connect(self, key: Key, connect_s: float) -> ClientConnection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(connect_s):
                _, conn = await loop.create_connection(
                    lambda: ClientConnection(HIGH_WATER),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
        except TimeoutError as exc:
            raise ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"failed to connect to {host}:{port}: {exc}") from exc
        conn.key_hint = key
        return conn

    def put(self, conn: ClientConnection) -> None:
        """Keep `conn` for reuse if its last answer was complete and may be kept alive."""
        if self._closed or not conn.reusable:
            conn.close()
            return
        key = conn.key_hint or ("", "", 0)
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        elif len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def close(self) -> None:
        """Close every idle connection; connections in use close when released."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
