"""`lockgate control-plane`: Admin API (8001), web UI (8002) and cluster sync (8005) in one loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Mapping

from control_plane import supervisor_config
from control_plane.admin.app import create_admin_app
from control_plane.admin_tokens import bootstrap
from control_plane.analytics import AnalyticsService, add_analytics_service, prune_forever
from control_plane.analytics_api import AnalyticsSource, add_analytics_routes
from control_plane.clustering_api import add_clustering_routes
from control_plane.credential_cache import CredentialWriteThrough
from control_plane.metrics import (
    AdminRequestCounter,
    ControlPlaneMetrics,
    add_metrics_route,
    write_sqlite_memory,
)
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import SqlStore
from control_plane.store.events import ChangeEvent
from control_plane.store.sql import create_store_engine
from control_plane.store.sql_analytics import SqlAnalytics
from control_plane.store.users import UserStore
from control_plane.supervisor import Supervisor
from control_plane.sync_server import ClusterService, create_server
from control_plane.ui import create_ui_app
from control_plane.ui.bootstrap import ensure_first_admin
from control_plane.ui.config import UiConfig
from control_plane.ui.supervised import SupervisedNodes
from gateway.llm.schema import allow_link_local_upstreams
from gateway.malloc_trim import trim_every
from gateway.process_metrics import write_process_metrics
from gateway.redis_credential_records import open_redis
from lockgate import certs
from lockgate.embedded_server import embedded
from lockgate.settings import ControlPlaneSettings

log = logging.getLogger("lockgate.cp")

HEAP_TRIM_INTERVAL_S = 60.0
"""How often the control plane gives its threads' stranded free heap back (gateway.malloc_trim)."""


async def serve(
    settings: ControlPlaneSettings,
    *,
    revision_poll_s: float = 0.3,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. Every `revision_poll_s` the store's revision is read, so writes
    made by other control planes on the same database reach this one's nodes. With
    `settings.local_data_planes` > 0 it also runs that many data planes, configured from
    `environ` (the process's environment)."""
    allow_link_local_upstreams(settings.allow_link_local_upstreams)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if certs.ensure(settings.tls.cert, settings.tls.key):
        log.info("generated the cluster certificate %s", settings.tls.cert)
    engine = create_store_engine(settings.database_url)
    store = SqlStore(engine)
    store.migrate()
    analytics_store = SqlAnalytics(engine)
    analytics_service = AnalyticsService(analytics_store)
    users = UserStore(engine)
    password = await asyncio.to_thread(ensure_first_admin, users, settings.admin_password)
    if password is not None:
        print(
            f"\nBootstrap web UI login (shown once): user admin, password {password}\n",
            flush=True,
        )
    verify, new_token = bootstrap(settings.data_dir, settings.admin_token)
    if new_token is not None:
        print(
            "\nBootstrap admin token (shown once; use it as Kong-Admin-Token or "
            f"LOCKGATE_ADMIN_TOKEN):\n  {new_token}\n",
            flush=True,
        )
    nodes = NodeRegistry()
    publisher = Publisher(store.snapshot, on_snapshot=lambda s: nodes.set_expected(s.hash))
    await publisher.start()
    write_through = None
    if settings.redis_url is not None:
        write_through = CredentialWriteThrough(
            open_redis(settings.redis_url, timeout_s=2.0),
            store.lookup_credential,
            store.iter_credentials,
        )
        await write_through.start()

    def on_change(event: ChangeEvent) -> None:
        publisher.notify_threadsafe(event.key_hashes, event.consumer_ids, event.revision)
        if write_through is not None:
            write_through.on_change(event)

    admin_app = create_admin_app(store, verify, on_change)
    supervisor = None
    if settings.local_data_planes > 0:
        supervisor = Supervisor(
            supervisor_config.build(environ or {}, settings, settings.local_data_planes)
        )
    add_clustering_routes(admin_app, nodes, publisher, local_nodes=supervisor)
    add_analytics_routes(admin_app, analytics_store)
    metric_writers = [write_process_metrics]
    if engine.dialect.name == "sqlite":
        metric_writers.append(write_sqlite_memory)
    cp_metrics = ControlPlaneMetrics(
        nodes,
        publisher,
        analytics_reports=lambda: analytics_service.reports,
        extra=metric_writers,
    )
    admin_app.add_middleware(AdminRequestCounter, metrics=cp_metrics)  # outermost: counts 401s
    grpc_server = create_server(
        ClusterService(publisher, nodes, store.lookup_credential),
        f"{settings.cluster_listen.host}:{settings.cluster_listen.port}",
        settings.tls,
    )
    add_analytics_service(grpc_server, analytics_service)
    await grpc_server.start()
    if supervisor is not None:
        await supervisor.start()
    ui_app = create_ui_app(
        store,
        users,
        nodes,
        publisher,
        on_change,
        config=UiConfig(
            proxy_url=settings.proxy_url,
            cluster_address=f"{socket.gethostname()}:{settings.cluster_listen.port}",
            cluster_cert=settings.tls.cert,
            cluster_key=settings.tls.key,
        ),
        analytics=AnalyticsSource(analytics_store),
        local_nodes=SupervisedNodes(supervisor) if supervisor is not None else None,
    )
    add_metrics_route(ui_app, cp_metrics)  # unauthenticated, for Prometheus scrapers
    servers = [
        embedded(admin_app, host=settings.admin_listen.host, port=settings.admin_listen.port),
        embedded(
            ui_app,
            host=settings.ui_listen.host,
            port=settings.ui_listen.port,
        ),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    # Background loops: they run until cancelled at shutdown.
    watchers = [
        asyncio.create_task(publisher.watch_revision(store.revision, revision_poll_s)),
        asyncio.create_task(nodes.watch_heartbeats()),
        asyncio.create_task(prune_forever(analytics_store, settings.analytics_retention_days)),
        asyncio.create_task(trim_every(HEAP_TRIM_INTERVAL_S)),
    ]
    log.info(
        "control plane: Admin API %s, UI %s, cluster %s:%d",
        settings.admin_listen.url(),
        settings.ui_listen.url(),
        settings.cluster_listen.host,
        settings.cluster_listen.port,
    )
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if supervisor is not None:
        await supervisor.stop()  # data planes drain first; they send their last analytics
    for server in servers:
        server.should_exit = True
    for watcher in watchers:
        watcher.cancel()
    await grpc_server.stop(grace=2)
    await asyncio.gather(*tasks, *watchers, return_exceptions=True)
    stopper.cancel()
    await publisher.close()
    if write_through is not None:
        await write_through.stop()
    analytics_store.close()
    store.close()
