"""Consecutive free loopback ports, for local data planes (status ports base, base + 1, ...)."""

from __future__ import annotations

import random
import socket


def free_port_block(count: int) -> int:
    """The first of `count` consecutive ports that are free now. Taken below the usual ephemeral
    range (32768+), so outgoing connections of the test itself do not take them meanwhile."""
    for _ in range(200):
        base = random.randrange(20000, 32000 - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError(f"no {count} consecutive free ports found")
