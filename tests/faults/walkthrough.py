"""The walkthrough the fault suite runs (README; Kong's how-to "Authenticate OpenAI SDK clients
with Key Authentication"): its decK file, synced with `lockgate deck sync` (pre-function copies
the bearer token to `apikey`, key-auth checks it, ai-proxy-advanced sends the chat to a fake
OpenAI), and the chat request its OpenAI SDK script sends, one at a time or as steady load."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from tests.e2e.test_walkthrough import CONSUMER_KEY, DECK_FILE, UPSTREAM_KEY
from tests.faults.load import SteadyLoad

__all__ = [
    "CHAT_PATH",
    "CONSUMER_KEY",
    "UPSTREAM_KEY",
    "KeyRing",
    "chat",
    "chat_headers",
    "deck_sync",
    "walkthrough_load",
]

CHAT_PATH = "/anything/chat/completions"
"""Where the how-to's OpenAI SDK client posts (base URL `<proxy>/anything`)."""

CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}


def chat_headers(key: str = CONSUMER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def chat(url: str, path: str = CHAT_PATH, key: str = CONSUMER_KEY) -> int:
    """One chat request through a proxy; its status (0 if it got no answer)."""
    try:
        return httpx.post(
            url + path, headers=chat_headers(key), json=CHAT_BODY, timeout=10
        ).status_code
    except httpx.HTTPError:
        return 0


def walkthrough_load(
    urls: Sequence[str],
    *,
    rate_per_s: float = 40.0,
    workers: int = 4,
    key: str = CONSUMER_KEY,
    headers_for: Callable[[int], Mapping[str, str]] | None = None,
    max_requests: int | None = None,
) -> SteadyLoad:
    """The how-to's chat request at `rate_per_s` in total, signed with `key` (or, per request,
    with the headers of `headers_for`, e.g. `KeyRing.headers_for`). `max_requests` bounds the
    run (default: far more than a test runs at that rate)."""
    return SteadyLoad(
        urls,
        path=CHAT_PATH,
        method="POST",
        headers=chat_headers(key),
        headers_for=headers_for,
        body=json.dumps(CHAT_BODY).encode(),
        rate_per_s=rate_per_s,
        workers=workers,
        max_requests=int(rate_per_s * 120) if max_requests is None else max_requests,
    )


class KeyRing:
    """Consumer keys the load rotates through, one per request; the test may add keys while it
    runs."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self._keys = list(keys)
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._keys.append(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def headers_for(self, seq: int) -> dict[str, str]:
        with self._lock:
            key = self._keys[seq % len(self._keys)]
        return chat_headers(key)


def deck_sync(env: Mapping[str, str], workdir: Path, upstream: str) -> None:
    """`lockgate deck sync` of the how-to's file, its upstream pointing at `upstream`."""
    deck_file = workdir / "kong.yaml"
    deck_file.write_text(DECK_FILE.format(upstream=upstream))
    result = subprocess.run(
        [sys.executable, "-m", "lockgate", "deck", "sync", str(deck_file)],
        env={**env, "DECK_OPENAI_API_KEY": UPSTREAM_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
