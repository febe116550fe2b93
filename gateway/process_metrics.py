"""The process's own figures in Prometheus' standard names (as the official clients' process
collector writes them), for both planes' `/metrics`: resident memory, open file descriptors,
CPU seconds. Read from /proc at scrape time; nothing where /proc is missing."""

from __future__ import annotations

import os
import resource
from pathlib import Path

from gateway.prometheus_text import Exposition

_PAGE_BYTES = resource.getpagesize()


def write_process_metrics(out: Exposition) -> None:
    """`process_resident_memory_bytes`, `process_open_fds`, `process_cpu_seconds_total`."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        open_fds = len(os.listdir("/proc/self/fd"))
    except (OSError, IndexError, ValueError):
        return
    times = os.times()
    out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes")
    out.sample("process_resident_memory_bytes", (), resident_pages * _PAGE_BYTES)
    out.family("process_open_fds", "gauge", "Number of open file descriptors")
    out.sample("process_open_fds", (), open_fds)
    out.family("process_cpu_seconds_total", "counter", "User and system CPU time in seconds")
    out.sample("process_cpu_seconds_total", (), times.user + times.system)
