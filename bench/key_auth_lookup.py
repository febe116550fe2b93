"""Key-auth credential lookup latency per layer, with 1M consumers in the store.

Setup: a SQLite store with `--consumers` consumers, one key each (written straight through SQL:
it's a benchmark); a throwaway `redis-server` on a free loopback port; the control plane's real
gRPC cluster service (mTLS) over the store; the control plane's bulk warm-up of Redis (timed).
Then, on the data plane's real chain (`CachedCredentials` -> `RedisCredentials` ->
`RemoteCredentials`), one lookup at a time over random keys:

- L1 hit:      a key already in the in-process LRU;
- Redis hit:   L1 disabled, the key in Redis;
- CP lookup:   no Redis, a valid key answered by the control plane over gRPC;
- full miss:   an unknown key: L1 miss, Redis miss, control-plane miss.

And L1 memory: `--l1-capacity` entries, then 3x as many distinct keys looked up; the entry count
must stay at the capacity (RSS growth reported).

Usage: .venv/bin/python bench/key_auth_lookup.py [--consumers 1000000] [--samples 20000]
Writes bench/results/key_auth_lookup.json and prints a table. Targets: L1 hit < 5 us, Redis hit
< 1 ms, miss < 5 ms (p50, loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert

from control_plane.credential_cache import CredentialWriteThrough
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import open_store, tables
from control_plane.sync_server import ClusterService, create_server
from data_plane.control_planes import ControlPlanes, RemoteCredentials
from data_plane.credentials import CachedCredentials
from data_plane.redis_credentials import RedisCredentials
from gateway.redis_credential_records import open_redis
from lockgate import certs
from lockgate.settings import ClusterTLS

TARGETS_US = {"l1_hit": 5.0, "redis_hit": 1000.0, "cp_lookup": 5000.0, "full_miss": 5000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def key_of(i: int) -> str:
    return f"bench-key-{i:08d}"


def hash_of(i: int) -> str:
    return hashlib.sha256(key_of(i).encode()).hexdigest()


def populate(db_url: str, count: int, chunk: int = 50_000) -> float:
    """`count` consumers with one credential each, through SQL in one transaction."""
    started = time.perf_counter()
    now = int(time.time())
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for base in range(0, count, chunk):
            consumers, creds = [], []
            for i in range(base, min(base + chunk, count)):
                cid, kid = str(uuid.UUID(int=i + 1)), str(uuid.UUID(int=(1 << 64) + i + 1))
                username = f"user-{i:08d}"
                consumers.append(
                    {
                        "id": cid,
                        "username": username,
                        "custom_id": None,
                        "data": json.dumps(
                            {"id": cid, "created_at": now, "updated_at": now, "tags": None,
                             "username": username, "custom_id": None}
                        ),
                    }
                )  # fmt: skip
                key_hash = hash_of(i)
                creds.append(
                    {
                        "id": kid,
                        "consumer_id": cid,
                        "key_hash": key_hash,
                        "expires_at": None,
                        "data": json.dumps(
                            {"id": kid, "created_at": now, "updated_at": now, "tags": None,
                             "consumer": {"id": cid}, "key_hash": key_hash, "ttl": None,
                             "expires_at": None}
                        ),
                    }
                )  # fmt: skip
            conn.execute(insert(tables.consumers), consumers)
            conn.execute(insert(tables.keyauth_credentials), creds)
    engine.dispose()
    return time.perf_counter() - started


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("redis-server did not start")


async def timed(samples: int, keys: list[str], call: Callable[[str], Awaitable[Any]]) -> list[int]:
    """Nanoseconds per call, one call at a time, over `keys` in random order."""
    out: list[int] = []
    clock = time.perf_counter_ns
    for i in range(samples):
        key = keys[i % len(keys)]
        started = clock()
        await call(key)
        out.append(clock() - started)
    return out


def summary(ns: list[int]) -> dict[str, float]:
    ordered = sorted(ns)
    return {
        "samples": len(ordered),
        "p50_us": round(statistics.median(ordered) / 1000, 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] / 1000, 2),
        "mean_us": round(statistics.fmean(ordered) / 1000, 2),
    }


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    db_url = f"sqlite:///{tmp / 'lockgate.db'}"
    store = open_store(db_url)  # creates the schema
    print(f"populating {args.consumers:,} consumers ...", flush=True)
    populate_s = populate(db_url, args.consumers)
    redis_proc, redis_url = start_redis(tmp)
    tls = ClusterTLS(tmp / "cluster.crt", tmp / "cluster.key")
    certs.ensure(tls.cert, tls.key)
    publisher = Publisher(store.snapshot)
    await publisher.start()
    address = f"127.0.0.1:{free_port()}"
    server = create_server(ClusterService(publisher, NodeRegistry(), store.lookup_credential),
                           address, tls)  # fmt: skip
    await server.start()
    planes = ControlPlanes.open([address], tls)
    remote = RemoteCredentials(planes)
    redis_layer = RedisCredentials(open_redis(redis_url, timeout_s=0.1), timeout_s=0.1)
    try:
        print("warming Redis from the store ...", flush=True)
        writer = CredentialWriteThrough(
            open_redis(redis_url, timeout_s=5.0),
            store.lookup_credential,
            store.iter_credentials,
            batch_size=5000,
        )
        started = time.perf_counter()
        warmed = await writer.warm()
        warm_s = time.perf_counter() - started
        await writer.stop()

        rng = random.Random(42)
        valid = [hash_of(rng.randrange(args.consumers)) for _ in range(args.samples)]
        unknown = [hashlib.sha256(f"nope-{i}".encode()).hexdigest() for i in range(args.samples)]
        results: dict[str, dict[str, float]] = {}

        l1 = CachedCredentials(remote, shared=redis_layer, capacity=args.l1_capacity)
        hot = valid[:1000]
        for key in hot:
            assert await l1.lookup(key) is not None
        results["l1_hit"] = summary(await timed(args.samples * 10, hot, l1.lookup))

        via_redis = CachedCredentials(remote, shared=redis_layer, capacity=0)
        assert await via_redis.lookup(valid[0]) is not None
        results["redis_hit"] = summary(await timed(args.samples, valid, via_redis.lookup))

        via_cp = CachedCredentials(remote, capacity=0)
        cp_samples = max(1000, args.samples // 4)
        results["cp_lookup"] = summary(await timed(cp_samples, valid, via_cp.lookup))

        full = CachedCredentials(remote, shared=redis_layer, capacity=0)
        results["full_miss"] = summary(await timed(cp_samples, unknown, full.lookup))
        for name in ("cp_lookup", "full_miss"):
            results[name]["note"] = "loopback gRPC + mTLS, SQLite indexed read"  # type: ignore[assignment]

        # L1 stays bounded: 3x its capacity in distinct keys through it
        bounded = CachedCredentials(remote, shared=redis_layer, capacity=args.l1_capacity)
        rss_before = rss_mb()
        distinct = min(args.consumers, args.l1_capacity * 3)
        for i in range(distinct):
            await bounded.lookup(hash_of(i))
        memory = {
            "capacity": args.l1_capacity,
            "distinct_keys_looked_up": distinct,
            "entries_after": len(bounded),
            "max_rss_growth_mb": round(rss_mb() - rss_before, 1),
        }
        assert len(bounded) <= args.l1_capacity
    finally:
        await redis_layer.close()
        await planes.close()
        await server.stop(grace=None)
        await publisher.close()
        store.close()
        redis_proc.kill()
        redis_proc.wait()
    return {
        "benchmark": "key_auth_lookup",
        "consumers": args.consumers,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count()},
        "populate_s": round(populate_s, 1),
        "redis_warm": {"credentials": warmed, "seconds": round(warm_s, 1)},
        "latency": results,
        "targets_p50_us": TARGETS_US,
        "l1_memory": memory,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumers", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--l1-capacity", type=int, default=100_000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "key_auth_lookup.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{result['consumers']:,} consumers; populated in {result['populate_s']} s; "
          f"Redis warmed with {result['redis_warm']['credentials']:,} in "
          f"{result['redis_warm']['seconds']} s")  # fmt: skip
    print(f"{'layer':<12} {'samples':>8} {'p50 us':>9} {'p99 us':>9} {'mean us':>9} {'target':>9}")
    for name, row in result["latency"].items():
        target = TARGETS_US[name]
        ok = "ok" if row["p50_us"] < target else "MISSED"
        print(f"{name:<12} {row['samples']:>8} {row['p50_us']:>9} {row['p99_us']:>9} "
              f"{row['mean_us']:>9} {'<' + str(int(target)):>7} {ok}")  # fmt: skip
    mem = result["l1_memory"]
    print(
        f"L1: capacity {mem['capacity']:,}, {mem['distinct_keys_looked_up']:,} distinct keys "
        f"-> {mem['entries_after']:,} entries, max RSS +{mem['max_rss_growth_mb']} MB"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
