"""Config sync benchmark.

1. Propagation: real processes (one `lockgate control-plane`, N `lockgate data-plane`), for N in
   1, 4, 8, 16: an Admin API write (PATCH a route's path) -> every node serves the new path
   (each node's proxy polled every `--poll-ms`). p50/p99 over `--changes` changes per N.
2. Snapshot cost for 100, 1k, 10k routes on a real SQLite store: build (store -> Snapshot),
   encode (canonical JSON + gzip), full apply on a node (gunzip + decode + compile router and
   pipelines), wire size; and one route changed: delta build, delta size, delta apply (apply +
   hash check + compile).

Usage: .venv/bin/python bench/sync.py [--nodes 1,4,8,16] [--changes 50] [--routes 100,1000,10000]
Writes bench/results/sync.json and prints tables. Targets: p99 < 200 ms with 8 nodes; 10k
routes build + apply < 1 s; a one-route delta >= 100x smaller than the full snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from control_plane.publisher import delta_message, snapshot_message
from control_plane.store import Writer, open_store
from data_plane.runtime import compile_runtime
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin, Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from gateway.snapshot_delta import SnapshotDelta, apply_delta
from tests.e2e.sync_procs import Cluster, DataPlane, upstream, wait_for

WARMUP = 2
"""Changes made before measuring: the first one also pays for connection set-ups (the poller's
16 keep-alive connections, first-time code paths), ~1 s with 16 nodes."""

RESULTS = Path(__file__).resolve().parent / "results" / "sync.json"


def _ready(node: DataPlane) -> bool:
    return node.ready() == 200


def _update(entity: Route, writer: Writer) -> None:
    writer.update(entity)


class Clock:
    """Wall and CPU (process) time between laps: CPU time is what the work costs, and is less
    inflated than wall time when other processes share the machine."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def _served(client: httpx.AsyncClient, node: DataPlane, path: str, poll_s: float) -> float:
    while True:
        try:
            reply = await client.get(node.proxy_url + path)
            if reply.status_code == 200:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        await asyncio.sleep(poll_s)


async def _propagation(
    cluster: Cluster, nodes: list[DataPlane], changes: int, poll_s: float
) -> list[float]:
    cp = cluster.procs[0]
    assert hasattr(cp, "admin_url")
    admin = cp.admin_url
    headers = {"Kong-Admin-Token": "e2e-admin-token"}
    samples: list[float] = []
    limits = httpx.Limits(max_connections=4 * len(nodes) + 4)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        for i in range(-WARMUP, changes):
            path = f"/v{i + WARMUP}"
            started = time.perf_counter()
            reply = await client.patch(
                f"{admin}/routes/bench", json={"paths": [path]}, headers=headers
            )
            assert reply.status_code == 200, reply.text
            done = await asyncio.wait_for(
                asyncio.gather(*(_served(client, n, path, poll_s) for n in nodes)), 30
            )
            if i >= 0:
                samples.append((max(done) - started) * 1000)
            await asyncio.sleep(0.1)  # independent changes, not a burst
    return samples


def propagation(node_counts: list[int], changes: int, poll_ms: float) -> list[dict[str, Any]]:
    rows = []
    with upstream() as url:
        for count in node_counts:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                cluster = Cluster(root, root / "data", f"sqlite:///{root / 'data' / 'lg.db'}")
                try:
                    cp = cluster.control_plane()
                    assert (
                        cp.api("POST", "/services", json={"name": "up", "url": url}).status_code
                        == 201
                    )
                    reply = cp.api(
                        "POST", "/services/up/routes", json={"name": "bench", "paths": ["/start"]}
                    )
                    assert reply.status_code == 201, reply.text
                    nodes = [
                        cluster.data_plane(f"dp{i}", [cp.cluster_address]) for i in range(count)
                    ]
                    for node in nodes:
                        wait_for(partial(_ready, node), 120, f"{node.name} ready", cp, node)
                    samples = asyncio.run(_propagation(cluster, nodes, changes, poll_ms / 1000))
                finally:
                    cluster.close()
            row = {
                "nodes": count,
                "changes": changes,
                "p50_ms": round(statistics.median(samples), 1),
                "p90_ms": round(percentile(samples, 90), 1),
                "p99_ms": round(percentile(samples, 99), 1),
                "max_ms": round(max(samples), 1),
                "samples_ms": [round(v, 1) for v in samples],
            }
            print(
                f"  {count:>3} nodes: p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms",
                flush=True,
            )
            rows.append(row)
    return rows


def snapshot_costs(route_counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    plugins = registry()
    for count in route_counts:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'lg.db'}")
            service = Service(name="s", host="example.com")

            def fill(w: Any, count: int = count, service: Service = service) -> None:
                w.insert(service)
                w.insert(Plugin(name="key-auth", config={"key_names": ["apikey"]}))
                for i in range(count):
                    w.insert(Route(name=f"r{i}", paths=[f"/r{i}"], service=Ref(id=service.id)))

            store.write(fill)
            clock = Clock()
            snapshot = store.snapshot()
            build = clock.lap()
            message = snapshot_message(snapshot)
            encode = clock.lap()
            decoded = Snapshot.decode(gzip.decompress(message.snapshot.payload))
            compile_runtime(decoded, plugins, InMemoryCredentials())
            apply_full = clock.lap()

            target = store.read(lambda r: r.find(Route, "name", "r7"))
            assert target is not None
            store.write(partial(_update, target.model_copy(update={"paths": ["/moved"]})))
            new = store.snapshot()
            clock.lap()
            delta = delta_message(snapshot, new)
            delta_build = clock.lap()
            assert delta is not None
            payload = gzip.decompress(delta.delta.payload)
            applied = apply_delta(decoded, SnapshotDelta.decode(payload))
            compile_runtime(applied, plugins, InMemoryCredentials())
            delta_apply = clock.lap()
            assert applied.hash == new.hash
            store.close()
        full_bytes, delta_bytes = message.ByteSize(), delta.ByteSize()
        row: dict[str, Any] = {
            "routes": count,
            "full_json_bytes": len(snapshot.encode()),
            "full_wire_bytes": full_bytes,
            "delta_wire_bytes": delta_bytes,
            "full_to_delta_ratio": round(full_bytes / delta_bytes, 1),
        }
        for name, (wall, cpu) in {
            "build": build,
            "encode": encode,
            "apply_full": apply_full,
            "delta_build": delta_build,
            "delta_apply": delta_apply,
        }.items():
            row[f"{name}_ms"] = round(wall * 1000, 1)
            row[f"{name}_cpu_ms"] = round(cpu * 1000, 1)
        row["build_plus_apply_ms"] = round((build[0] + apply_full[0]) * 1000, 1)
        row["build_plus_apply_cpu_ms"] = round((build[1] + apply_full[1]) * 1000, 1)
        print(
            f"  {count:>6} routes: build {row['build_ms']} ms, encode {row['encode_ms']} ms, "
            f"apply {row['apply_full_ms']} ms, full {full_bytes} B, delta {delta_bytes} B",
            flush=True,
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="1,4,8,16")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--routes", default="100,1000,10000")
    parser.add_argument("--poll-ms", type=float, default=5.0)
    args = parser.parse_args()
    node_counts = [int(n) for n in args.nodes.split(",") if n]
    route_counts = [int(n) for n in args.routes.split(",") if n]

    load_before = round(os.getloadavg()[0], 2)
    print("snapshot cost (in process, SQLite store):", flush=True)
    costs = snapshot_costs(route_counts)
    print(
        f"propagation (Admin API write -> every node serves it; {args.changes} changes):",
        flush=True,
    )
    prop = propagation(node_counts, args.changes, args.poll_ms)

    by_nodes = {r["nodes"]: r for r in prop}
    by_routes = {r["routes"]: r for r in costs}
    targets = {
        "p99_8_nodes_under_200_ms": by_nodes[8]["p99_ms"] < 200 if 8 in by_nodes else None,
        "build_plus_apply_10k_under_1_s_cpu": (
            by_routes[10000]["build_plus_apply_cpu_ms"] < 1000 if 10000 in by_routes else None
        ),
        "delta_10k_at_least_100x_smaller": (
            by_routes[10000]["full_to_delta_ratio"] >= 100 if 10000 in by_routes else None
        ),
    }
    doc = {
        "benchmark": "sync",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "poll_ms": args.poll_ms,
        "warmup_changes": WARMUP,
        "load_average_1m_before": load_before,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "propagation": prop,
        "snapshot": costs,
        "targets": targets,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")

    print("\n| nodes | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    for r in prop:
        print(f"| {r['nodes']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} |")
    print(
        "\nms as wall (cpu)\n| routes | build | encode | full apply | build+apply | full wire B "
        "| delta wire B | ratio | delta build | delta apply |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in costs:

        def ms(name: str, r: dict[str, Any] = r) -> str:
            return f"{r[name + '_ms']} ({r[name + '_cpu_ms']})"

        print(
            f"| {r['routes']} | {ms('build')} | {ms('encode')} | {ms('apply_full')} "
            f"| {ms('build_plus_apply')} | {r['full_wire_bytes']} | {r['delta_wire_bytes']} "
            f"| {r['full_to_delta_ratio']} | {ms('delta_build')} | {ms('delta_apply')} |"
        )
    print(f"\ntargets: {targets}\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
