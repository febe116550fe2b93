"""A throwaway `redis-server` for tests: loopback, a free port, no persistence, a temp dir.

Use it with `pytest_plugins = ["tests.services.redis"]` in a test module (or the root conftest)
and the `redis_server` fixture (one server per session, flushed before each test that asks for
it). `RedisServer.stop()` / `start()` take it down and bring it back, empty, on the same port, for
tests of Redis outages. The fixture fails, rather than skips, when the binary is missing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; `url` stays the same across stop/start."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        assert self.proc is None, "already running"
        log = (self.directory / "redis.log").open("ab")
        with log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                    "--protected-mode", "yes",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log()}")
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer PING: {self.log()}")

    def stop(self) -> None:
        """Stop the server (SIGKILL: an outage, not a shutdown); its data is gone."""
        assert self.proc is not None, "not running"
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Redis is down inside the block and back (empty) after it, whatever happens."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Redis hangs inside the block (SIGSTOP: accepts nothing, answers nothing): slow Redis."""
        assert self.proc is not None, "not running"
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def command(self, *args: str) -> str | None:
        """Send one inline command; its first reply line, or None if the server is unreachable."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall((" ".join(args) + "\r\n").encode())
                return sock.recv(65536).split(b"\r\n", 1)[0].decode()
        except OSError:
            return None

    def client(self) -> redis.Redis:
        """A synchronous client, for tests to look at or seed what is stored; use it in a
        `with` block so its connection is closed."""
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def get(self, key: str) -> bytes | None:
        with self.client() as client:
            value = client.get(key)
        assert value is None or isinstance(value, bytes)
        return value

    def ttl(self, key: str) -> int:
        with self.client() as client:
            value = client.ttl(key)
        assert isinstance(value, int)
        return value

    def dbsize(self) -> int:
        with self.client() as client:
            value = client.dbsize()
        assert isinstance(value, int)
        return value

    def flush(self) -> None:
        assert self.command("FLUSHALL") == "+OK"

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/test.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="lockgate-redis-") as directory:
        server = RedisServer(binary, Path(directory))
        server.start()
        try:
            yield server
        finally:
            if server.proc is not None:
                server.stop()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    """The session's Redis, running and empty."""
    if redis_session.proc is None:
        redis_session.start()
    redis_session.flush()
    return redis_session
