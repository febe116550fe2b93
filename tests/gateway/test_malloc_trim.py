"""`gateway.malloc_trim`: free memory a worker thread leaves in its glibc arena is given back
to the system by the control plane's periodic trim (what the long soak's +7 % RSS was)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")

PROGRAM = r"""
import asyncio, json, threading
from gateway.malloc_trim import trim_every

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def churn():
    # a worker thread (its own arena) allocates ~60 MB in blocks above pymalloc's 512 bytes (so
    # from glibc's malloc) and frees all but every 64th: the survivors pin the pages between
    # them, so the arena cannot shrink by itself
    blocks = [bytes(1000) for _ in range(60_000)]
    keep = blocks[::64]
    del blocks
    threading.current_thread().keep = keep

async def main():
    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    before = rss_kib()
    trimmer = asyncio.create_task(trim_every(0.05))
    await asyncio.sleep(0.5)
    trimmer.cancel()
    print(json.dumps({"before": before, "after": rss_kib()}))

asyncio.run(main())
"""


def test_the_periodic_trim_gives_a_threads_stranded_free_memory_back() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    figures = json.loads(done.stdout)
    # ~60 MB were freed in the thread's arena; most of it goes back (survivors keep some pages)
    assert figures["before"] - figures["after"] > 20 * 1024, figures
