"""A throwaway PostgreSQL server for tests: initdb + postgres on a free loopback port.

`postgres_server` (session scope) starts one server per test session in a temp dir and removes
it afterwards; `postgres_url` gives each test a fresh, empty database (dropped after the test)
as a `postgresql+psycopg://` URL. The binaries come from the Debian `postgresql` package
(`/usr/lib/postgresql/<major>/bin`); a missing binary fails the test, never skips it. Run as
root (containers, CI images), the server runs as the `postgres` system user, since PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

PREFERRED_MAJOR = "15"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_INITDB = ("--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions")
# Durability is irrelevant for a throwaway server; these make CREATE DATABASE and commits cheap.
_FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def _bin_dir() -> Path:
    preferred = Path(f"/usr/lib/postgresql/{PREFERRED_MAJOR}/bin")
    candidates = [preferred, *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    pytest.fail(
        "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: install the Debian "
        "`postgresql` package (scripts/test.sh does)",
        pytrace=False,
    )


def _memory_dir() -> str | None:
    """tmpfs when there is one: CREATE DATABASE copies ~8 MB, ~7x faster in memory than on a
    busy disk (0.03 s vs 0.23 s here), and every test creates one."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _launch(root: Path, args: list[str], user: pwd.struct_passwd | None) -> subprocess.Popen[bytes]:
    uid, gid = (user.pw_uid, user.pw_gid) if user is not None else (None, None)
    with (root / "postgres.log").open("ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, user=uid, group=gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One running server. `url(db)` addresses a database on it; `create_database()` makes one."""

    def __init__(
        self,
        root: Path,
        port: int,
        proc: subprocess.Popen[bytes],
        command: list[str] | None = None,
        user: pwd.struct_passwd | None = None,
    ) -> None:
        self.root = root
        self.port = port
        self._proc = proc
        self._command = command
        """The `postgres` command line, for `restart()` (same port and data directory)."""
        self._user = user

    @classmethod
    def start(cls, *, durable_commits: bool = False) -> PostgresServer:
        """initdb a cluster in a new temp dir and start it; return once it accepts queries.
        `durable_commits`: a commit is acknowledged only once its WAL is written (to the OS:
        fsync stays off), so acknowledged commits survive the server being killed (`kill()`),
        as on a production server; power loss is beyond these tests."""
        bin_dir = _bin_dir()
        user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="lockgate-pg-", dir=_memory_dir()))
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        uid, gid = (user.pw_uid, user.pw_gid) if user is not None else (None, None)
        data = root / "data"
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", *_INITDB],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            user=uid,
            group=gid,
        )
        last_error = ""
        for _ in range(3):  # another process may grab the free port between probe and bind
            port = _free_port()
            settings = {**_FAST_SETTINGS, "port": str(port)}
            if durable_commits:
                settings["synchronous_commit"] = "on"
            args = [str(bin_dir / "postgres"), "-D", str(data)]
            for key, value in settings.items():
                args += ["-c", f"{key}={value}"]
            proc = _launch(root, args, user)
            server = cls(root, port, proc, args, user)
            last_error = server._wait_ready()
            if not last_error:
                return server
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {last_error}", pytrace=False)

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        error = "timed out"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return f"exited with {self._proc.returncode}: {self._log_tail()}"
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return ""
            except psycopg.OperationalError as exc:
                error = str(exc)
            time.sleep(0.05)
        return error

    def _log_tail(self) -> str:
        try:
            return (self.root / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def dsn(self, database: str) -> str:
        """A libpq URL (for psycopg directly)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL with the psycopg (v3) driver."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh empty database; return its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: hex only
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting anyone still using it."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then kill if it lingers; remove the temp dir."""
        self.shut_down()
        shutil.rmtree(self.root, ignore_errors=True)

    def shut_down(self) -> None:
        """Fast shutdown (SIGINT: open sessions are disconnected, in-flight transactions
        rolled back), then kill if it lingers. The data directory stays: `start_again()`."""
        if self._proc.poll() is None:
            self._proc.send_signal(2)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """kill -9 the server: the postmaster and every backend at once, as a crash would
        (no shutdown checkpoint; `start_again()` then runs crash recovery from the WAL)."""
        if self._proc.poll() is not None:
            return
        children = [int(p) for p in _children(self._proc.pid)]
        self._proc.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._proc.wait(timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(Path(f"/proc/{pid}").exists() for pid in children):  # reaped by init
            assert time.monotonic() < deadline, "PostgreSQL backends outlived kill -9"
            time.sleep(0.02)

    def start_again(self) -> None:
        """Start the server shut down by `shut_down()` on the same port and data directory
        (every database is still there); return once it accepts queries."""
        assert self._command is not None, "not started by PostgresServer.start()"
        assert self._proc.poll() is not None, "still running"
        self._proc = _launch(self.root, self._command, self._user)
        error = self._wait_ready()
        if error:
            raise AssertionError(f"PostgreSQL did not start again: {error}")

    def restart(self, down_s: float = 0.0) -> None:
        """Restart in place: `shut_down()`, `down_s` seconds without a server, `start_again()`."""
        self.shut_down()
        time.sleep(down_s)
        self.start_again()


def _children(pid: int) -> list[str]:
    """The pids whose parent is `pid` (a postmaster's backends and helpers)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            out.append(stat.parent.name)
    return out


@contextmanager
def running_postgres(*, durable_commits: bool = False) -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own, stopped on exit."""
    server = PostgresServer.start(durable_commits=durable_commits)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database for one test, as a `postgresql+psycopg://` URL."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
