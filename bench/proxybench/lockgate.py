"""Lockgate as a contender: a control plane and N data planes (`lockgate control-plane`,
`lockgate data-plane`, as `lockgate up` runs them) with the benchmark's config.

One config serves every scenario, each on its own route (all plugins route-scoped so one
route's plugins never run on another's requests):

- `/pipeline`: the walkthrough's pre-function (bearer -> apikey) + key-auth + ai-proxy-advanced
- `/keyauth`: key-auth only (key in `apikey`)
- `/plain`: no plugins
- `/stream`: the walkthrough's pipeline in front of the SSE upstream
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from proxybench import procs

ADMIN_TOKEN = "bench-admin-token"
CONSUMER_KEY = "bench-consumer-key"
PROVIDER_KEY = "sk-upstream-bench"

PRE_FUNCTION = """\
local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  local key = auth_header:sub(8)
  kong.service.request.set_header("apikey", key)
end"""


def ai_proxy(upstream_url: str) -> dict[str, Any]:
    return {
        "name": "ai-proxy-advanced",
        "config": {
            "targets": [
                {
                    "route_type": "llm/v1/chat",
                    "auth": {
                        "header_name": "Authorization",
                        "header_value": f"Bearer {PROVIDER_KEY}",
                    },
                    "model": {
                        "provider": "openai",
                        "name": "gpt-4o",
                        "options": {"upstream_url": upstream_url},
                    },
                }
            ]
        },
    }


def _pipeline(upstream_url: str) -> list[dict[str, Any]]:
    return [
        {"name": "pre-function", "config": {"access": [PRE_FUNCTION]}},
        {"name": "key-auth", "config": {"key_names": ["apikey"]}},
        ai_proxy(upstream_url),
    ]


def config(upstream_port: int, stream_port: int, extra_routes: int = 0) -> dict[str, Any]:
    """The declarative config; `extra_routes` adds that many services with one route each
    (the memory scenario)."""
    upstream = f"http://127.0.0.1:{upstream_port}"
    stream = f"http://127.0.0.1:{stream_port}"
    services: list[dict[str, Any]] = [
        {
            "name": "llm",
            "url": f"{upstream}/v1/chat/completions",
            "routes": [
                {
                    "name": "pipeline",
                    "paths": ["/pipeline"],
                    "plugins": _pipeline(f"{upstream}/v1/chat/completions"),
                },
                {
                    "name": "keyauth",
                    "paths": ["/keyauth"],
                    "plugins": [{"name": "key-auth", "config": {"key_names": ["apikey"]}}],
                },
                {"name": "plain", "paths": ["/plain"]},
            ],
        },
        {
            "name": "llm-stream",
            "url": f"{stream}/v1/chat/completions",
            "routes": [
                {
                    "name": "stream",
                    "paths": ["/stream"],
                    "plugins": _pipeline(f"{stream}/v1/chat/completions"),
                }
            ],
        },
    ]
    services += [
        {
            "name": f"extra-{i}",
            "url": f"{upstream}/extra/{i}",
            "routes": [{"name": f"extra-{i}", "paths": [f"/extra/{i}"], "hosts": [f"h{i}.test"]}],
        }
        for i in range(extra_routes)
    ]
    return {
        "_format_version": "3.0",
        "services": services,
        "consumers": [{"username": "bench-client", "keyauth_credentials": [{"key": CONSUMER_KEY}]}],
    }


class Lockgate:
    """A control plane plus `data_planes` data-plane processes on `cores`."""

    def __init__(
        self,
        name: str,
        work: Path,
        log_dir: Path,
        *,
        data_planes: int,
        cores: str,
        control_plane_env: dict[str, str] | None = None,
    ):
        self.name = name
        self.work = work
        self.log_dir = log_dir
        self.data_planes = data_planes
        self.cores = cores
        self.proxy_port = procs.free_port()
        self.admin_port = procs.free_port()
        self.cluster_port = procs.free_port()
        self.status_port = _two_free_ports()
        self.procs: list[procs.Proc] = []
        self.control_plane_env = control_plane_env or {}
        """Extra environment of the control plane process only."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "DECK_"))}
        env.update(
            LOCKGATE_DATA_DIR=str(self.work),
            LOCKGATE_ADMIN_TOKEN=ADMIN_TOKEN,
            LOCKGATE_PROXY_LISTEN=f"127.0.0.1:{self.proxy_port}",
            LOCKGATE_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}",
            LOCKGATE_UI_LISTEN=f"127.0.0.1:{procs.free_port()}",
            LOCKGATE_CLUSTER_LISTEN=f"127.0.0.1:{self.cluster_port}",
            LOCKGATE_CONTROL_PLANE=f"127.0.0.1:{self.cluster_port}",
        )
        return env

    def start(self, doc: dict[str, Any]) -> None:
        """Start the control plane (on the server core), load `doc`, then the data planes
        (on `cores`), and wait until every data plane runs the config."""
        self.work.mkdir(parents=True, exist_ok=True)
        env = self._env()
        lockgate = [sys.executable, "-m", "lockgate"]
        subprocess.run(
            [*lockgate, "cert", "generate"], env=env, check=True, capture_output=True, cwd=self.work
        )
        cp = procs.start(
            f"{self.name}-cp",
            [*lockgate, "control-plane"],
            cores=procs.SERVER_CORE,
            log_dir=self.log_dir,
            env={**env, **self.control_plane_env},
            cwd=self.work,
        )
        self.procs.append(cp)
        procs.wait_port(self.admin_port, cp.popen, timeout_s=90)
        procs.wait_port(self.cluster_port, cp.popen, timeout_s=90)
        headers = {"Kong-Admin-Token": ADMIN_TOKEN}
        answer = httpx.post(
            f"http://127.0.0.1:{self.admin_port}/config",
            content=json.dumps(doc),
            headers={**headers, "Content-Type": "application/json"},
            timeout=600,
        )
        if answer.status_code >= 300:
            raise RuntimeError(f"POST /config: {answer.status_code} {answer.text[:2000]}")
        for index in range(self.data_planes):
            dp_env = dict(env)
            dp_env["LOCKGATE_NODE_ID"] = f"{self.name}-dp-{index + 1}"
            dp_env["LOCKGATE_STATUS_LISTEN"] = f"127.0.0.1:{self.status_port + index}"
            self.procs.append(
                procs.start(
                    f"{self.name}-dp{index + 1}",
                    [*lockgate, "data-plane"],
                    cores=self.cores,
                    log_dir=self.log_dir,
                    env=dp_env,
                    cwd=self.work,
                )
            )
        self._wait_synced(headers)

    def _wait_synced(self, headers: dict[str, str], timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            try:
                expected = httpx.get(
                    f"http://127.0.0.1:{self.admin_port}/clustering/expected-config-hash",
                    headers=headers,
                    timeout=5,
                ).json()["expected_hash"]
                hashes = [
                    httpx.get(f"http://127.0.0.1:{self.status_port + i}/status", timeout=5).json()[
                        "config_hash"
                    ]
                    for i in range(self.data_planes)
                ]
                if expected and all(h == expected for h in hashes):
                    return
                last = f"expected {expected}, nodes {hashes}"
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not in sync: {last}")

    def data_plane_pids(self) -> list[int]:
        # taskset execs the command, so each popen pid is the lockgate process itself.
        return [p.popen.pid for p in self.procs if "-dp" in p.name]

    def stop(self) -> None:
        # Data planes first (they drain), then the control plane.
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def _two_free_ports() -> int:
    for _ in range(50):
        port = procs.free_port()
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")
