"""Decoding snapshots and deltas on a data plane: the same entities, values and hash as the
control plane's, held compactly (a data plane keeps every entity of its snapshot)."""

from __future__ import annotations

import gc
import hashlib
import json
import tracemalloc

import pytest
from pydantic import ValidationError

from gateway.entities import Consumer, Plugin, Ref, Route, Service
from gateway.entity_decoder import EntityDecoder
from gateway.snapshot import Snapshot
from gateway.snapshot_delta import SnapshotDelta, apply_delta, diff


def sample() -> Snapshot:
    services = (
        Service(name="serviço-a", host="upstream.test", port=8443, protocol="https", path="/a"),
        Service(name="b", host="upstream.test", port=8443, protocol="https", tags=["t1"]),
    )
    routes = (
        Route(
            name="r1",
            paths=["/one", "~/two/(?<id>\\d+)$"],
            hosts=["x.test", "*.y.test"],
            methods=["GET", "POST"],
            headers={"x-version": ["1", "~*^v2"]},
            service=Ref(id=services[0].id),
        ),
        Route(name="r2", paths=["/two"], strip_path=False, service=Ref(id=services[1].id)),
        Route(name="r3", protocols=["https"], service=Ref(id=services[1].id)),
    )
    consumer = Consumer(username="alice", custom_id="1")
    plugins = (
        Plugin(
            name="key-auth",
            route=Ref(id=routes[0].id),
            config={"key_names": ["apikey"], "hide_credentials": True, "limit": 1, "ratio": 1.0},
        ),
        Plugin(name="pre-function", consumer=Ref(id=consumer.id), config={"access": ["x = 1"]}),
    )
    return Snapshot.create(7, services, routes, plugins, (consumer,))


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_encoding_is_canonical_json_and_the_hash_is_of_its_content() -> None:
    snapshot = sample()
    data = snapshot.encode()
    doc = json.loads(data)
    assert data == canonical(doc)
    assert "serviço-a".encode() in data  # UTF-8, not escaped
    assert (doc["version"], doc["hash"]) == (7, snapshot.hash)
    content = {kind: doc[kind] for kind in ("services", "routes", "plugins", "consumers")}
    assert len(content["routes"]) == 3
    assert snapshot.hash == hashlib.sha256(canonical(content)).hexdigest()
    empty = Snapshot.create(0)
    assert json.loads(empty.encode()) == {
        "consumers": [],
        "hash": empty.hash,
        "plugins": [],
        "routes": [],
        "services": [],
        "version": 0,
    }


def test_decoded_snapshot_has_the_same_entities_hash_and_encoding() -> None:
    snapshot = sample()
    decoded = Snapshot.decode(snapshot.encode())
    assert decoded == snapshot
    assert decoded.encode() == snapshot.encode()
    for entity in (*decoded.services, *decoded.routes, *decoded.plugins, *decoded.consumers):
        # Every field was sent: none is "unset", as with the control plane's entities.
        assert entity.model_dump(exclude_unset=True) == entity.model_dump()


def test_json_true_stays_a_boolean_and_one_an_integer() -> None:
    config = Snapshot.decode(sample().encode()).plugins[0].config
    assert config == {"key_names": ["apikey"], "hide_credentials": True, "limit": 1, "ratio": 1.0}
    assert [type(config[k]) for k in ("hide_credentials", "limit", "ratio")] == [bool, int, float]


def test_copying_a_decoded_entity_leaves_the_others_alone() -> None:
    snapshot = sample()
    first, second, _ = Snapshot.decode(snapshot.encode()).routes
    # `model_copy` adds the updated names to the copy's set fields (decoded entities share one).
    copied = first.model_copy(update={"name": "renamed", "x_note": 1})
    assert (copied.name, first.name, second.name) == ("renamed", "r1", "r2")
    assert "x_note" in copied.model_fields_set
    assert "x_note" not in first.model_fields_set | second.model_fields_set
    assert second.model_dump(exclude_unset=True) == snapshot.routes[1].model_dump()


def test_invalid_entity_is_rejected_with_the_validation_error() -> None:
    decoder = EntityDecoder()
    with pytest.raises(ValidationError, match="should start with"):
        decoder.validate(Route, {"paths": ["no-slash"]})
    items = [{"host": "ok.test"}, {"host": "ok.test", "port": 70000}]
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        decoder.validate_all(Service, items)
    doc = json.loads(sample().encode())
    doc["routes"][1]["paths"] = ["bad"]
    content = {kind: doc[kind] for kind in ("services", "routes", "plugins", "consumers")}
    doc["hash"] = hashlib.sha256(canonical(content)).hexdigest()  # only validation refuses it
    with pytest.raises(ValueError, match=r"(?s)malformed snapshot: .*should start with"):
        Snapshot.decode(json.dumps(doc).encode())


def test_delta_upserts_decode_and_apply_to_the_new_snapshot() -> None:
    old = Snapshot.decode(sample().encode())
    service = old.services[0]
    changed = old.routes[1].model_copy(update={"paths": ["/changed"]})
    added = Route(name="r4", paths=["/four"], service=Ref(id=service.id))
    new = Snapshot.create(
        8, old.services, (old.routes[0], changed, old.routes[2], added), old.plugins, old.consumers
    )
    delta = diff(old, new)
    assert delta is not None
    result = apply_delta(old, SnapshotDelta.decode(delta.encode()))
    assert (result.version, result.hash, result.routes) == (8, new.hash, new.routes)
    assert result.routes[0] is old.routes[0]  # unchanged entities are kept, not decoded again


def test_a_decoded_route_and_its_service_stay_small() -> None:
    count = 2000
    services = tuple(
        Service(name=f"s{i}", host="upstream.test", port=8080, path=f"/s/{i}") for i in range(count)
    )
    routes = tuple(
        Route(name=f"r{i}", paths=[f"/r/{i}"], hosts=[f"h{i}.test"], service=Ref(id=s.id))
        for i, s in enumerate(services)
    )
    data = Snapshot.create(1, services, routes).encode()
    del services, routes
    gc.collect()
    tracemalloc.start()
    try:
        decoded = Snapshot.decode(data)
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(decoded.routes) == count
    # Validated one by one from the JSON, a service and its route hold ~5.7 KB; shared field
    # sets and values bring them to ~2 KB.
    assert retained / count < 3000
