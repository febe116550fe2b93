"""A stand-in for `lockgate data-plane` in the supervisor's unit tests: a real process that
answers `/status/ready` on LOCKGATE_STATUS_LISTEN and records what happens to it.

Behaviour, from the environment:
- FAKE_NODE_EVENTS: file to append JSON lines to (`start`, `term`, `exit`, with pid, node id,
  status port and a monotonic time);
- FAKE_NODE_CRASH=1: exit with code 3 right after `start`;
- FAKE_NODE_DRAIN_S: seconds between SIGTERM and exit (a stand-in for in-flight requests);
- FAKE_NODE_IGNORE_TERM=1: ignore SIGTERM (the supervisor must kill it).
"""

from __future__ import annotations

import sys

SCRIPT = r"""
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

events = os.environ["FAKE_NODE_EVENTS"]
node_id = os.environ["LOCKGATE_NODE_ID"]
host, _, port = os.environ["LOCKGATE_STATUS_LISTEN"].rpartition(":")

def record(kind, **extra):
    line = dict(kind=kind, pid=os.getpid(), node_id=node_id, port=int(port),
                at=time.monotonic(), **extra)
    with open(events, "a") as f:
        f.write(json.dumps(line) + "\n")

record("start", cache=os.environ.get("LOCKGATE_DP_SNAPSHOT_CACHE"))
if os.environ.get("FAKE_NODE_CRASH") == "1":
    sys.exit(3)

class Status(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/status/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer((host, int(port)), Status)
threading.Thread(target=server.serve_forever, daemon=True).start()
stop = threading.Event()
if os.environ.get("FAKE_NODE_IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, lambda *a: record("term"))
else:
    signal.signal(signal.SIGTERM, lambda *a: (record("term"), stop.set()))
while not stop.wait(0.05):
    pass
time.sleep(float(os.environ.get("FAKE_NODE_DRAIN_S", "0")))
record("exit")
"""

COMMAND = (sys.executable, "-c", SCRIPT)
