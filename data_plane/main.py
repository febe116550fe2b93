"""`lockgate data-plane`: connect to the control plane, serve the proxy and the status port."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path
from typing import Any

from data_plane import heap
from data_plane.analytics import RequestObserver
from data_plane.analytics_sender import AnalyticsSender
from data_plane.analytics_window import MinuteWindow
from data_plane.cluster_client import NodeInfo, SyncClient
from data_plane.control_planes import ControlPlanes, RemoteCredentials, parse_addresses
from data_plane.credentials import CachedCredentials
from data_plane.http_server import HttpServer, Limits
from data_plane.metrics import DataPlaneMetrics
from data_plane.proxy import ProxyApp
from data_plane.redis_credentials import RedisCredentials
from data_plane.runtime import Runtime, RuntimeHolder, compile_runtime
from data_plane.shared_port import drain, wait_configured
from data_plane.snapshot_cache import SnapshotCache
from data_plane.status import StatusApp
from data_plane.upstream import UpstreamClient
from gateway.llm.schema import allow_link_local_upstreams
from gateway.plugins import registry
from gateway.process_metrics import write_process_metrics
from gateway.redis_credential_records import open_redis
from gateway.snapshot import Snapshot
from gateway.vault import EnvVault
from lockgate import __version__
from lockgate.embedded_server import embedded
from lockgate.settings import DataPlaneSettings, Listen

log = logging.getLogger("lockgate.dp")


def bind(listen: Listen, *, reuse_port: bool) -> socket.socket:
    """A listening socket; with reuse_port several local data planes share the proxy port."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: no Nagle delay (~40 ms) on small proxied responses.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((listen.host, listen.port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    settings: DataPlaneSettings,
    *,
    snapshot_cache: Path | None = None,
    heartbeat_s: float = 5.0,
    drain_s: float = 1.0,
) -> None:
    """Run until SIGINT/SIGTERM. `settings.control_plane` may list several addresses
    (`host:port,host:port`): the node fails over between them. With `snapshot_cache`, the last
    applied snapshot is kept in that file and served at start while no control plane answers."""
    allow_link_local_upstreams(settings.allow_link_local_upstreams)
    holder = RuntimeHolder()
    plugins = registry()
    planes = ControlPlanes.open(
        parse_addresses(settings.control_plane), settings.tls, keepalive_s=heartbeat_s
    )
    shared = None
    if settings.redis_url is not None:
        shared = RedisCredentials(
            open_redis(settings.redis_url, timeout_s=settings.redis_timeout_s),
            timeout_s=settings.redis_timeout_s,
        )
    credentials = CachedCredentials(RemoteCredentials(planes), shared=shared)
    vault = EnvVault(settings.vault_env)  # `{vault://env/...}` references in plugin configs

    def compile_snapshot(snapshot: Snapshot) -> Runtime:
        return compile_runtime(snapshot, plugins, credentials, vault)

    node = NodeInfo(
        node_id=settings.node_id,
        hostname=settings.hostname,
        version=__version__,
        plugins={name: p.version for name, p in plugins.items()},
        labels=settings.labels,
    )
    sync = SyncClient(
        planes,
        node,
        compile_snapshot,
        holder.swap,
        credentials,
        heartbeat_s=heartbeat_s,
        cache=SnapshotCache(snapshot_cache) if snapshot_cache is not None else None,
    )
    await sync.restore()
    window = MinuteWindow()
    analytics = AnalyticsSender(
        window, lambda: planes.channel, settings.node_id, interval_s=settings.analytics_flush_s
    )
    metrics = DataPlaneMetrics(
        window,
        config_version=lambda: sync.version,
        credential_cache_size=lambda: len(credentials),
        unresolved_references=lambda: len(unresolved()),
        extra=[analytics.write_metrics, write_process_metrics],
    )

    def unresolved() -> tuple[str, ...]:
        runtime = holder.current
        return () if runtime is None else runtime.plugins.unresolved

    def describe() -> dict[str, Any]:
        return {
            "node_id": settings.node_id,
            "hostname": settings.hostname,
            "version": __version__,
            "config_version": sync.version,
            "config_hash": sync.hash,
            "last_error": sync.last_error or sync.incompatible or None,
            "incompatible": sync.incompatible or None,
            "control_plane": sync.connected_to,
            "ready": holder.current is not None,
            "unresolved_vault_references": list(unresolved()),
        }

    status_sock = bind(settings.status_listen, reuse_port=False)
    app = ProxyApp(holder, UpstreamClient(), observer=RequestObserver(window))
    await app.startup()
    # The proxy port's own server (uvloop + httptools; see docs/benchmarks.md for why).
    proxy = HttpServer(app, Limits(keepalive_s=60))
    heap.tune_for_serving()
    stop = asyncio.Event()
    status = embedded(
        # Not ready once stopping: load balancers stop sending while the node drains.
        StatusApp(
            describe, lambda: holder.current is not None and not stop.is_set(), metrics.render
        ),
        lifespan="off",
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(status.serve(sockets=[status_sock])),
        asyncio.create_task(sync.run()),
        asyncio.create_task(analytics.run()),
    ]
    log.info(
        "data plane %s: proxy on %s, status on %s, control plane %s",
        settings.node_id,
        settings.proxy_listen.url(),
        settings.status_listen.url(),
        settings.control_plane,
    )
    stopper = asyncio.create_task(stop.wait())
    # Local nodes share the proxy port: listen only once a config is applied, so a new node
    # never answers 503 to its share of the connections (data_plane/shared_port.py).
    configured = asyncio.create_task(wait_configured(lambda: holder.current is not None, stop))
    done, _ = await asyncio.wait([configured, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if configured in done and configured.result():
        await proxy.start([bind(settings.proxy_listen, reuse_port=True)])
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    configured.cancel()
    for task in done:
        if task not in (stopper, configured) and task.exception() is not None:
            log.error("data plane task failed: %r", task.exception())
    # Leave the shared port and let keep-alive clients move to the other nodes; then drain:
    # requests in flight finish (up to 10 s), idle keep-alive connections close.
    await drain(proxy, drain_s)
    await proxy.shutdown(timeout_s=10)
    await app.shutdown()
    status.should_exit = True
    tasks[1].cancel()
    tasks[2].cancel()
    stopper.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await analytics.close()  # after the proxy drained: the last requests are counted
    await sync.flush_cache()
    await credentials.close()  # background refreshes, before their channel closes
    await planes.close()
    if shared is not None:
        await shared.close()
