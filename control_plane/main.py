"""`lockgate control-plane`: Admin API (8001), web UI (8002) and cluster sync (8005) in one loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from control_plane.admin.app import create_admin_app
from control_plane.admin_tokens import bootstrap
from control_plane.clustering_api import add_clustering_routes
from control_plane.credential_cache import CredentialWriteThrough
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import open_store
from control_plane.store.events import ChangeEvent
from control_plane.sync_server import ClusterService, create_server
from control_plane.ui import create_ui_app
from gateway.redis_credential_records import open_redis
from lockgate import certs
from lockgate.embedded_server import embedded
from lockgate.settings import ControlPlaneSettings

log = logging.getLogger("lockgate.cp")


async def serve(settings: ControlPlaneSettings, *, revision_poll_s: float = 0.3) -> None:
    """Run until SIGINT/SIGTERM. Every `revision_poll_s` the store's revision is read, so writes
    made by other control planes on the same database reach this one's nodes."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if certs.ensure(settings.tls.cert, settings.tls.key):
        log.info("generated the cluster certificate %s", settings.tls.cert)
    store = open_store(settings.database_url)
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
    add_clustering_routes(admin_app, nodes, publisher)
    grpc_server = create_server(
        ClusterService(publisher, nodes, store.lookup_credential),
        f"{settings.cluster_listen.host}:{settings.cluster_listen.port}",
        settings.tls,
    )
    await grpc_server.start()
    servers = [
        embedded(admin_app, host=settings.admin_listen.host, port=settings.admin_listen.port),
        embedded(
            create_ui_app(nodes, publisher),
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
    store.close()
