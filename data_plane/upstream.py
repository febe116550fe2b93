"""The pooled HTTP client the proxy forwards with (`data_plane.http_client`, on httptools).

Bodies and encodings pass through untouched: no automatic decompression, no cookie jar, no
headers added beyond what HTTP/1.1 framing needs. This module maps the client's failures to
nginx's `proxy_next_upstream` words and applies the service's connection retries.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

from data_plane.http_client import (
    ClientError,
    ConnectError,
    ConnectionPool,
    ConnectTimeout,
    InvalidResponse,
    ReadTimeout,
    Response,
    WriteTimeout,
)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "expect",
    }
)
"""Request headers the proxy never copies upstream (content-length and host are set anew; the
body is complete before the upstream is called, so `Expect: 100-continue` is answered by the
proxy itself and not forwarded, as nginx does)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    read_s: float
    write_s: float


ErrorKind = Literal["error", "timeout", "invalid_header"]


class UpstreamError(Exception):
    """The upstream could not be reached, did not answer in time, or answered garbage.

    `kind` uses nginx's `proxy_next_upstream` words; `sent` is False only when the connection
    could not be opened, so the request certainly never reached the upstream.
    """

    def __init__(self, message: str, *, kind: ErrorKind, sent: bool) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.sent = sent

    @property
    def timeout(self) -> bool:
        return self.kind == "timeout"


class UpstreamClient:
    """One shared connection pool per process. Call `start` inside the event loop."""

    def __init__(
        self, *, keepalive_s: float = 60.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """`ssl_context` verifies https upstreams (default: the system trust store)."""
        self._keepalive_s = keepalive_s
        self._ssl_context = ssl_context
        self._pool: ConnectionPool | None = None

    async def start(self) -> None:
        self._pool = ConnectionPool(ssl_context=self._ssl_context, keepalive_s=self._keepalive_s)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def send(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeouts: Timeouts,
        retries: int,
    ) -> Response:
        """Send a request (`target`: path and query); connection failures (nothing sent yet)
        are retried up to `retries` times.

        Raises `UpstreamError` once the response head could not be had. Timeouts are per phase:
        connect, each wait to write, each wait to read (nginx's proxy_*_timeout).
        The caller must `release()` or `close()` the response.
        """
        assert self._pool is not None, "UpstreamClient.start() was not called"
        attempt = 0
        while True:
            try:
                return await self._pool.request(
                    method,
                    scheme,
                    host,
                    port,
                    target,
                    headers,
                    body,
                    timeouts.connect_s,
                    timeouts.write_s,
                    timeouts.read_s,
                )
            except ConnectError as exc:
                if attempt >= retries:
                    raise UpstreamError(str(exc), kind="error", sent=False) from exc
                attempt += 1
            except ConnectTimeout as exc:
                raise UpstreamError(
                    "upstream connect timed out", kind="timeout", sent=False
                ) from exc
            except (WriteTimeout, ReadTimeout) as exc:
                raise UpstreamError(str(exc), kind="timeout", sent=True) from exc
            except InvalidResponse as exc:
                raise UpstreamError(str(exc), kind="invalid_header", sent=True) from exc
            except ClientError as exc:
                raise UpstreamError(f"upstream error: {exc}", kind="error", sent=True) from exc
