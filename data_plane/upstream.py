"""The pooled HTTP client the proxy forwards with (aiohttp; never httpx on this path).

Bodies and encodings pass through untouched: no automatic decompression, no cookie jar, no
headers added beyond what HTTP/1.1 framing needs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import aiohttp
from yarl import URL

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
    }
)
"""Request headers the proxy never copies upstream (content-length and host are set anew)."""


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

    def __init__(self, *, pool_size: int = 0, keepalive_s: float = 60.0) -> None:
        self._pool_size = pool_size
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            keepalive_timeout=self._keepalive_s,
            ttl_dns_cache=10,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeouts: Timeouts,
        retries: int,
    ) -> aiohttp.ClientResponse:
        """Send a request; connection failures (nothing sent yet) are retried up to `retries`.

        Raises `UpstreamError` once the response head could not be had. The connect and read
        timeouts are aiohttp's socket timers. aiohttp has no write timer (its read timer starts
        once the body is written), so the whole wait for the head is also bounded by
        connect + write + read: a stalled body write fails at the latest by then.
        The caller must `release()` the response.
        """
        assert self._session is not None, "UpstreamClient.start() was not called"
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect_s, sock_read=timeouts.read_s
        )
        target = URL(url, encoded=True)
        bound = timeouts.connect_s + timeouts.write_s + timeouts.read_s
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(bound):
                    return await self._session.request(
                        method,
                        target,
                        headers=headers,
                        data=body if body else None,
                        timeout=timeout,
                        allow_redirects=False,
                        compress=None,
                    )
            except aiohttp.ClientConnectorError as exc:
                if attempt >= retries:
                    raise UpstreamError(
                        f"failed to connect to upstream: {exc}", kind="error", sent=False
                    ) from exc
                attempt += 1
            except aiohttp.ConnectionTimeoutError as exc:
                raise UpstreamError(
                    "upstream connect timed out", kind="timeout", sent=False
                ) from exc
            except TimeoutError as exc:
                raise UpstreamError("upstream timed out", kind="timeout", sent=True) from exc
            except aiohttp.ClientResponseError as exc:
                # aiohttp wraps an unparsable status line or header block in this error.
                raise UpstreamError(
                    f"invalid upstream response: {exc.message}", kind="invalid_header", sent=True
                ) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError(f"upstream error: {exc}", kind="error", sent=True) from exc
