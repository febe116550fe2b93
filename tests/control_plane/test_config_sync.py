"""POST /config: decK sync semantics, reported like `deck gateway diff --json-output`."""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi.testclient import TestClient

from control_plane.store import ChangeEvent, Store
from gateway.credentials import hash_key

DOC: dict[str, Any] = {
    "_format_version": "3.0",
    "services": [
        {
            "name": "openai",
            "url": "https://api.openai.com",
            "routes": [
                {
                    "name": "chat",
                    "paths": ["/chat"],
                    "plugins": [{"name": "key-auth", "config": {"key_names": ["apikey"]}}],
                }
            ],
        }
    ],
    "routes": [{"name": "extra", "paths": ["/extra"], "service": "openai"}],
    "consumers": [
        {"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]},
    ],
    "plugins": [
        {"name": "pre-function", "config": {"access": ["kong.log.info('hi')"]}},
    ],
}


def _changes(body: dict[str, Any], action: str) -> list[tuple[str, str]]:
    return [(c["kind"], c["name"]) for c in body["changes"][action]]


def test_sync_creates_everything_and_hashes_keys(client: TestClient, store: Store) -> None:
    response = client.post("/config", json=DOC)
    assert response.status_code == 200, response.text
    body = response.json()
    created = _changes(body, "creating")
    assert ("service", "openai") in created
    assert ("route", "chat") in created
    assert ("route", "extra") in created
    assert ("consumer", "alice") in created
    assert ("plugin", "pre-function (global)") in created
    assert ("plugin", "key-auth for route chat") in created
    assert [kind for kind, _ in created].count("keyauth_credential") == 1
    assert body["summary"] == {"created": 7, "updated": 0, "deleted": 0}

    routes = {r["name"]: r for r in client.get("/routes").json()["data"]}
    service_id = client.get("/services/openai").json()["id"]
    assert routes["chat"]["service"] == routes["extra"]["service"] == {"id": service_id}
    match = store.lookup_credential(hash_key("alice-key"))
    assert match is not None and match.consumer.username == "alice"
    assert "alice-key" not in str(client.get("/key-auths").json())


def test_second_identical_sync_changes_nothing(
    client: TestClient, store: Store, events: list[ChangeEvent]
) -> None:
    client.post("/config", json=DOC)
    revision = store.revision()
    ids = sorted(s["id"] for s in client.get("/routes").json()["data"])
    again = client.post("/config", json=DOC).json()
    assert again["summary"] == {"created": 0, "updated": 0, "deleted": 0}
    assert again["changes"] == {"creating": [], "updating": [], "deleting": []}
    assert store.revision() == revision
    assert len(events) == 1
    assert sorted(s["id"] for s in client.get("/routes").json()["data"]) == ids


def test_sync_updates_in_place_and_deletes_what_is_absent(
    client: TestClient, store: Store, events: list[ChangeEvent]
) -> None:
    client.post("/config", json=DOC)
    service_id = client.get("/services/openai").json()["id"]
    alice_id = client.get("/consumers/alice").json()["id"]
    doc = copy.deepcopy(DOC)
    doc["services"][0]["url"] = "https://example.com"
    del doc["routes"]
    del doc["consumers"]
    body = client.post("/config", json=doc).json()
    assert _changes(body, "updating") == [("service", "openai")]
    deleted = _changes(body, "deleting")
    assert ("route", "extra") in deleted and ("consumer", "alice") in deleted
    assert [kind for kind, _ in deleted].count("keyauth_credential") == 1
    assert body["summary"] == {"created": 0, "updated": 1, "deleted": 3}

    svc = client.get("/services/openai").json()
    assert (svc["id"], svc["host"]) == (service_id, "example.com")
    assert client.get("/routes/extra").status_code == 404
    assert store.lookup_credential(hash_key("alice-key")) is None
    assert events[-1].key_hashes == {hash_key("alice-key")}
    assert alice_id in events[-1].consumer_ids


def test_sync_adopts_entities_created_through_the_api(client: TestClient) -> None:
    made = client.post("/services", json={"name": "openai", "host": "old"}).json()
    body = client.post("/config", json=DOC).json()
    assert ("service", "openai") in _changes(body, "updating")
    assert client.get("/services/openai").json()["id"] == made["id"]


def test_dry_run_reports_without_writing(client: TestClient, store: Store) -> None:
    response = client.post("/config", params={"dry_run": "true"}, json=DOC)
    assert response.status_code == 200
    assert response.json()["summary"]["created"] == 7
    assert store.revision() == 0
    assert client.get("/services").json()["data"] == []


def test_one_invalid_entity_rejects_the_whole_file(client: TestClient, store: Store) -> None:
    client.post("/config", json=DOC)
    revision = store.revision()
    doc = copy.deepcopy(DOC)
    doc["services"][0]["url"] = "https://changed.example"
    doc["plugins"] = [{"name": "pre-function", "config": {"access": ["local x = ("]}}]
    response = client.post("/config", json=doc)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 14
    assert body["name"] == "invalid declarative configuration"
    assert re.match(
        r"declarative config is invalid: plugins\[0\] \(pre-function\): config\.access(\.0)?: "
        r"error parsing pre-function: ",
        body["message"],
    )
    assert body["fields"]["plugins"][0]["config"]["access"].startswith("error parsing")
    assert store.revision() == revision
    assert client.get("/services/openai").json()["host"] == "api.openai.com"


def test_errors_name_nested_entities(client: TestClient) -> None:
    doc = {
        "_format_version": "3.0",
        "services": [
            {
                "name": "s",
                "host": "h",
                "routes": [{"name": "ok", "paths": ["/"]}, {"name": "bad", "paths": ["x"]}],
            }
        ],
    }
    body = client.post("/config", json=doc).json()
    assert body["message"] == (
        "declarative config is invalid: services[0].routes[1] (bad): paths: "
        "should start with: / (fixed path) or ~/ (regex path)"
    )
    assert body["fields"]["services"][0]["routes"][0] is None
    assert "paths" in body["fields"]["services"][0]["routes"][1]


def test_unknown_top_level_key_and_bad_references(client: TestClient) -> None:
    unknown = client.post("/config", json={"_format_version": "3.0", "upstreamz": []})
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "declarative config is invalid: upstreamz: unknown field"
    assert unknown.json()["fields"] == {"upstreamz": "unknown field"}

    no_version = client.post("/config", json={"services": []})
    assert no_version.status_code == 400
    assert "_format_version" in no_version.json()["message"]

    dangling = {"_format_version": "3.0", "routes": [{"paths": ["/"], "service": "ghost"}]}
    response = client.post("/config", json=dangling)
    assert response.status_code == 400
    assert "routes[0]: service: no service 'ghost'" in response.json()["message"]


def test_duplicates_in_the_file_are_refused(client: TestClient) -> None:
    doc = {
        "_format_version": "3.0",
        "services": [{"name": "s", "host": "a"}, {"name": "s", "host": "b"}],
    }
    response = client.post("/config", json=doc)
    assert response.status_code == 400
    assert "services[1] (s): name: duplicate of s" in response.json()["message"]


def test_unnamed_routes_are_matched_by_content(client: TestClient) -> None:
    doc = {
        "_format_version": "3.0",
        "services": [{"name": "s", "host": "h", "routes": [{"paths": ["/a"]}]}],
    }
    assert client.post("/config", json=doc).json()["summary"]["created"] == 2
    assert client.post("/config", json=doc).json()["summary"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
    }


def test_empty_document_deletes_everything(client: TestClient, store: Store) -> None:
    client.post("/config", json=DOC)
    body = client.post("/config", json={"_format_version": "3.0"}).json()
    assert body["summary"]["deleted"] == 7
    snap = store.snapshot()
    assert (snap.services, snap.routes, snap.plugins, snap.consumers) == ((), (), (), ())


def test_a_new_id_for_a_known_name_replaces_the_entity(client: TestClient) -> None:
    first: dict[str, Any] = {
        "_format_version": "3.0",
        "services": [{"name": "s", "host": "h", "routes": [{"name": "r", "paths": ["/"]}]}],
    }
    client.post("/config", json=first)
    new_id = "00000000-0000-4000-8000-0000000000aa"
    second = copy.deepcopy(first)
    second["services"][0]["id"] = new_id
    response = client.post("/config", json=second)
    assert response.status_code == 200, response.text
    body = response.json()
    assert _changes(body, "creating") == [("service", "s")]
    assert _changes(body, "deleting") == [("service", "s")]
    assert _changes(body, "updating") == [("route", "r")]
    assert client.get("/services/s").json()["id"] == new_id
    assert client.get("/routes/r").json()["service"] == {"id": new_id}


def test_a_renamed_consumer_keeps_its_id_and_credentials(client: TestClient, store: Store) -> None:
    doc: dict[str, Any] = {
        "_format_version": "3.0",
        "consumers": [{"username": "u", "custom_id": "c1", "keyauth_credentials": [{"key": "k"}]}],
    }
    client.post("/config", json=doc)
    consumer_id = client.get("/consumers/u").json()["id"]
    doc["consumers"][0]["username"] = "renamed"
    body = client.post("/config", json=doc).json()
    assert _changes(body, "updating") == [("consumer", "renamed")]
    assert client.get("/consumers/renamed").json()["id"] == consumer_id
    match = store.lookup_credential(hash_key("k"))
    assert match is not None and match.consumer.username == "renamed"


def test_tag_scoped_sync_is_refused_rather_than_deleting_the_rest(
    client: TestClient, store: Store
) -> None:
    client.post("/services", json={"name": "keep", "host": "h"})
    doc = {"_format_version": "3.0", "_info": {"select_tags": ["team-a"]}}
    response = client.post("/config", json=doc)
    assert response.status_code == 400
    assert response.json()["message"].startswith(
        "declarative config is invalid: _info.select_tags: not supported"
    )
    assert response.json()["fields"] == {
        "_info": {"select_tags": "not supported: the file must describe the whole config"}
    }
    assert client.get("/services/keep").status_code == 200
