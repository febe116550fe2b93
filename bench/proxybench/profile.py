"""Where a data plane's time goes under load: py-spy samples the process while wrk drives it,
and the samples are summed by own-time function and by part of the code base."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from proxybench import wrk

PARTS = (
    ("data_plane/http_server", "HTTP server (data_plane/http_server*, http_exchange)"),
    ("data_plane/http_exchange", "HTTP server (data_plane/http_server*, http_exchange)"),
    ("data_plane/http_c", "upstream client (data_plane/http_client, http_connection)"),
    ("data_plane/upstream", "upstream client (data_plane/http_client, http_connection)"),
    ("data_plane/deadline", "upstream client (data_plane/http_client, http_connection)"),
    ("data_plane/proxy", "proxy flow (data_plane/proxy.py)"),
    ("data_plane/router", "router"),
    ("data_plane/paths", "router"),
    ("gateway/lua", "pre-function (Lua sandbox, PDK)"),
    ("lupa", "pre-function (Lua sandbox, PDK)"),
    ("gateway/plugins/key", "key-auth"),
    ("data_plane/credentials", "key-auth"),
    ("gateway/plugins/ai_proxy", "ai-proxy-advanced"),
    ("gateway/llm", "ai-proxy-advanced"),
    ("json/", "ai-proxy-advanced"),
    ("gateway/headers", "gateway.headers.Headers"),
    ("gateway/", "other gateway code"),
    ("asyncio/", "event loop (asyncio/uvloop)"),
    ("uvloop", "event loop (asyncio/uvloop)"),
)


def _part(frame: str) -> str:
    for needle, part in PARTS:
        if needle in frame:
            return part
    return "other"


def _py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else (shutil.which("py-spy") or "py-spy")


def sample(pid: int, request: wrk.Request, work: Path, seconds: int) -> dict[str, Any]:
    """Run wrk (32 connections) for `seconds` + 4 and py-spy for `seconds` in the middle."""
    out = work / "profile.folded"
    load = threading.Thread(
        target=wrk.run, args=(request, work), kwargs={"connections": 32, "seconds": seconds + 4}
    )
    load.start()
    try:
        threading.Event().wait(2)
        subprocess.run(
            [
                _py_spy(),
                "record",
                "-p",
                str(pid),
                "-d",
                str(seconds),
                "-r",
                "200",
                "--nonblocking",
                "-f",
                "raw",
                "-o",
                str(out),
            ],
            check=True,
            capture_output=True,
            timeout=seconds + 60,
        )
    finally:
        load.join()
    own: collections.Counter[str] = collections.Counter()
    parts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        leaf = stack.split(";")[-1].replace(str(Path.cwd()) + "/", "")
        # Frames look like "func (path/to/file.py:LINE)"; drop the line for grouping.
        name = leaf.rsplit(":", 1)[0] + ")" if ":" in leaf else leaf
        own[name] += n
        parts[_part(leaf)] += n
        total += n
    return {
        "tool": "py-spy record --nonblocking, Python frames; a frame's own time includes the "
        "system calls it makes (socket writes show under the function that writes)",
        "seconds": seconds,
        "samples": total,
        "by_part": {k: round(100 * v / total, 1) for k, v in parts.most_common()},
        "top_self": {k: round(100 * v / total, 1) for k, v in own.most_common(25)},
    }
