"""Fixed ids and small builders shared by the contract tests."""

from __future__ import annotations

from collections.abc import Callable

from control_plane.store import Writer
from gateway.credentials import hash_key
from gateway.entities import Consumer, Entity, KeyAuthCredential, Ref, Route, Service

SERVICE = "00000000-0000-4000-8000-000000000001"
ROUTE = "00000000-0000-4000-8000-000000000002"
CONSUMER = "00000000-0000-4000-8000-0000000000c1"
CREDENTIAL = "00000000-0000-4000-8000-0000000000a1"
MISSING = "00000000-0000-4000-8000-00000000dead"


def service_and_route(w: Writer) -> None:
    w.insert(Service(id=SERVICE, name="svc", host="up"))
    w.insert(Route(id=ROUTE, name="r1", paths=["/a"], service=Ref(id=SERVICE)))


def consumer_with_key(w: Writer, key: str, expires_at: int | None = None) -> None:
    w.insert(Consumer(id=CONSUMER, username="alice", custom_id="A-1"))
    w.insert(
        KeyAuthCredential(
            id=CREDENTIAL, consumer=Ref(id=CONSUMER), key_hash=hash_key(key), expires_at=expires_at
        )
    )


def inserting(*entities: Entity) -> Callable[[Writer], None]:
    """A write function that inserts `entities` in order (one transaction)."""

    def write(w: Writer) -> None:
        for entity in entities:
            w.insert(entity)

    return write
