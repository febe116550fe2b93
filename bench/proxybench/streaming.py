"""Streaming through each contender: time to first token and tokens per second.

One client (on the load core) opens a connection per stream, posts a `"stream": true` chat
request and reads the raw bytes: the first token is the first `data: {` event carrying a
content delta; the stream ends at `data: [DONE]`. Tokens/s = tokens / (last - first token)."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

_TOKEN = re.compile(rb'"content": ?"tok')
"""A content delta of the fake (compact or spaced JSON: LiteLLM re-serializes the events)."""


@dataclass(frozen=True)
class StreamTarget:
    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


async def _one(target: StreamTarget, tokens: int) -> tuple[float, float]:
    parts = urlsplit(target.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in target.headers]
    head.append(f"Content-Length: {len(target.body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + target.body)
    first = 0.0
    received: list[bytes] = []
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 30)
            if not data:
                raise RuntimeError(f"stream ended early: {b''.join(received)[-300:]!r}")
            now = time.perf_counter()
            received.append(data)
            if not first and _TOKEN.search(b"".join(received)):
                first = now
            if b"data: [DONE]" in b"".join(received[-2:]):
                last = now
                break
    finally:
        writer.close()
    seen = len(_TOKEN.findall(b"".join(received)))
    if seen < tokens:
        raise RuntimeError(f"{seen} of {tokens} tokens arrived")
    return (first - started) * 1000, tokens / max(last - first, 1e-9)


async def _measure(target: StreamTarget, tokens: int, streams: int) -> dict[str, float]:
    ttft, rates = [], []
    await _one(target, tokens)  # warm-up: connections, caches
    for _ in range(streams):
        t, r = await _one(target, tokens)
        ttft.append(t)
        rates.append(r)
    return {
        "ttft_p50_ms": round(statistics.median(ttft), 2),
        "ttft_max_ms": round(max(ttft), 2),
        "tokens_per_s": round(statistics.median(rates), 0),
        "streams": streams,
        "tokens": tokens,
    }


def measure(target: StreamTarget, tokens: int, streams: int) -> dict[str, float]:
    return asyncio.run(_measure(target, tokens, streams))
