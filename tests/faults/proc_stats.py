"""What a process uses, read from /proc: resident memory, open file descriptors by kind, CPU
time (for the soak)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


DATABASE_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


@dataclass(frozen=True)
class FdCounts:
    total: int
    tcp: int
    """TCP sockets (listening or connected): pools of keep-alive connections."""
    database: int
    """SQLite files (database, WAL, shared memory): one pair per pooled connection."""

    @property
    def other(self) -> int:
        """Files, pipes, event-loop fds, Unix sockets: a steady process keeps these constant."""
        return self.total - self.tcp - self.database


def fd_counts(pid: int) -> FdCounts:
    total = database = 0
    sockets: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        total += 1
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
        elif target.endswith(DATABASE_SUFFIXES):
            database += 1
    tcp: set[str] = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            tcp.update(line.split()[9] for line in path.read_text().splitlines()[1:])
    return FdCounts(total, len(sockets & tcp), database)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/<pid>/stat utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # CLK_TCK is 100 on Linux


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_kib: int
    fds: FdCounts
    cpu_s: float


def sample(pid: int, at_s: float) -> Sample:
    return Sample(at_s, rss_kib(pid), fd_counts(pid), cpu_s(pid))
