"""`serve_http`: a stdlib HTTP handler served from a thread on a free loopback port, the tiny
upstream the real-process tests put behind their gateways."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler], *, backlog: int = 5) -> Iterator[str]:
    """Serve `handler` (one thread per connection) until the block ends; yields the base URL.
    `backlog` is the listen queue (raise it when several proxies open pools at once)."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = backlog

    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
