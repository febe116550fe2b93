"""POST /config: decK sync semantics, reported like `deck gateway diff --json-output`."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.store import ChangeEvent, Store, open_store
from gateway.credentials import hash_key
from gateway.plugins.base import Plugin as PluginType
from tests.control_plane.conftest import TOKEN

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


def test_select_tags_scope_matching_deleting_and_tag_the_created(
    client: TestClient, store: Store
) -> None:
    client.post("/services", json={"name": "untagged", "host": "h"})
    client.post("/services", json={"name": "other-team", "host": "h", "tags": ["team-b"]})
    client.post("/services", json={"name": "old-a", "host": "h", "tags": ["team-a", "x"]})
    doc = {
        "_format_version": "3.0",
        "_info": {"select_tags": ["team-a"]},
        "services": [{"name": "new-a", "host": "a", "tags": ["extra"]}],
    }
    body = client.post("/config", json=doc).json()
    assert _changes(body, "creating") == [("service", "new-a")]
    assert _changes(body, "deleting") == [("service", "old-a")]
    names = sorted(s["name"] for s in client.get("/services").json()["data"])
    assert names == ["new-a", "other-team", "untagged"]
    assert client.get("/services/new-a").json()["tags"] == ["extra", "team-a"]
    again = client.post("/config", json=doc).json()
    assert again["summary"] == {"created": 0, "updated": 0, "deleted": 0}


def test_select_tags_are_anded(client: TestClient) -> None:
    client.post("/services", json={"name": "a-only", "host": "h", "tags": ["a"]})
    client.post("/services", json={"name": "a-and-b", "host": "h", "tags": ["a", "b"]})
    doc = {"_format_version": "3.0", "_info": {"select_tags": ["a", "b"]}}
    body = client.post("/config", json=doc).json()
    assert _changes(body, "deleting") == [("service", "a-and-b")]
    assert client.get("/services/a-only").status_code == 200


def test_a_name_taken_outside_the_select_tags_is_an_error(client: TestClient, store: Store) -> None:
    client.post("/services", json={"name": "shared", "host": "h"})
    revision = store.revision()
    doc = {
        "_format_version": "3.0",
        "_info": {"select_tags": ["team-a"]},
        "services": [{"name": "shared", "host": "changed"}],
    }
    response = client.post("/config", json=doc)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "declarative config is invalid: services[0] (shared): name: a stored entity with this "
        "name lacks the select tags team-a"
    )
    assert store.revision() == revision


def test_a_scoped_file_may_reference_entities_outside_its_tags(client: TestClient) -> None:
    client.post("/services", json={"name": "platform", "host": "h"})
    doc = {
        "_format_version": "3.0",
        "_info": {"select_tags": ["team-a"]},
        "routes": [{"name": "mine", "paths": ["/mine"], "service": "platform"}],
    }
    response = client.post("/config", json=doc)
    assert response.status_code == 200, response.text
    platform_id = client.get("/services/platform").json()["id"]
    assert client.get("/routes/mine").json()["service"] == {"id": platform_id}


def test_bad_select_tags_are_refused(client: TestClient) -> None:
    doc = {"_format_version": "3.0", "_info": {"select_tags": ["a,b"]}}
    response = client.post("/config", json=doc)
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "_info": {"select_tags": ["invalid tag: printable ASCII except ',' and '/'"]}
    }


AI_PROXY = {
    "name": "ai-proxy-advanced",
    "config": {
        "targets": [
            {
                "route_type": "llm/v1/chat",
                "auth": {"header_name": "Authorization", "header_value": "Bearer sk-old-secret"},
                "model": {"provider": "openai", "name": "gpt-4o"},
            }
        ]
    },
}


def test_updates_carry_old_and_new_bodies_with_secrets_redacted(client: TestClient) -> None:
    doc: dict[str, Any] = {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": "http://old.internal"}],
        "plugins": [copy.deepcopy(AI_PROXY)],
    }
    client.post("/config", json=doc)
    doc["services"][0]["url"] = "http://new.internal"
    doc["plugins"][0]["config"]["targets"][0]["auth"]["header_value"] = "Bearer sk-new-secret"
    response = client.post("/config", params={"dry_run": "true"}, json=doc)
    assert "sk-old-secret" not in response.text and "sk-new-secret" not in response.text
    updating = {c["kind"]: c for c in response.json()["changes"]["updating"]}
    service = updating["service"]["body"]
    assert (service["old"]["host"], service["new"]["host"]) == ("old.internal", "new.internal")
    assert service["old"]["id"] == service["new"]["id"]
    assert "created_at" not in service["old"] and "updated_at" not in service["new"]
    old_auth = updating["plugin"]["body"]["old"]["config"]["targets"][0]["auth"]
    new_auth = updating["plugin"]["body"]["new"]["config"]["targets"][0]["auth"]
    assert old_auth["header_name"] == new_auth["header_name"] == "Authorization"
    assert old_auth["header_value"].startswith("[redacted:")
    assert new_auth["header_value"].startswith("[redacted:")
    # The fingerprints differ: the diff shows that the secret changed, not what it is.
    assert old_auth["header_value"] != new_auth["header_value"]
    assert updating["plugin"]["name"] == "ai-proxy-advanced (global)"


def _dump(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/config", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_get_config_exports_nested_ids_and_key_hash_markers(client: TestClient) -> None:
    client.post("/config", json=DOC)
    exported = _dump(client)
    assert exported["_format_version"] == "3.0"
    [service] = exported["services"]
    assert service["id"] == client.get("/services/openai").json()["id"]
    assert "created_at" not in service
    chat, extra = service["routes"]  # both routes of the service nest under it, by name
    assert (chat["name"], extra["name"]) == ("chat", "extra")
    assert [p["name"] for p in chat["plugins"]] == ["key-auth"]
    assert "service" not in chat and "routes" not in exported
    [alice] = exported["consumers"]
    [cred] = alice["keyauth_credentials"]
    assert cred["key_hash"] == "sha256:" + hash_key("alice-key")
    assert "key" not in cred and "consumer" not in cred
    assert [p["name"] for p in exported["plugins"]] == ["pre-function"]
    assert "alice-key" not in str(exported)


def test_get_config_requires_the_admin_token(client: TestClient) -> None:
    response = client.get("/config", headers={"Kong-Admin-Token": "wrong"})
    assert response.status_code == 401


def test_dump_then_sync_into_an_empty_store_recreates_the_state(
    client: TestClient, tmp_path: Path, plugins: Mapping[str, PluginType[Any]]
) -> None:
    doc = copy.deepcopy(DOC)
    doc["plugins"].append(copy.deepcopy(AI_PROXY))
    doc["consumers"][0]["keyauth_credentials"].append({"key": "ttl-key", "ttl": 3600})
    client.post("/config", json=doc)
    exported = _dump(client)

    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        app = create_admin_app(fresh, TOKEN, lambda _event: None, plugins)
        with TestClient(app, headers={"Kong-Admin-Token": TOKEN}) as other:
            response = other.post("/config", json=exported)
            assert response.status_code == 200, response.text
            assert response.json()["summary"]["created"] == 9
            assert _dump(other) == exported
            again = other.post("/config", json=exported).json()
            assert again["summary"] == {"created": 0, "updated": 0, "deleted": 0}
        match = fresh.lookup_credential(hash_key("alice-key"))
        assert match is not None and match.consumer.username == "alice"
        assert fresh.lookup_credential(hash_key("ttl-key")) is not None
        assert fresh.lookup_credential(hash_key("wrong")) is None
    finally:
        fresh.close()


def test_get_config_with_select_tags_exports_only_tagged_entities(client: TestClient) -> None:
    client.post("/config", json=DOC)
    tagged = {
        "_format_version": "3.0",
        "_info": {"select_tags": ["team-a"]},
        "services": [
            {"name": "a-svc", "host": "a", "routes": [{"name": "a-route", "paths": ["/a"]}]}
        ],
        "routes": [{"name": "a-on-openai", "paths": ["/x"], "service": "openai"}],
    }
    assert client.post("/config", json=tagged).status_code == 200
    exported = _dump(client, select_tags="team-a")
    assert exported["_info"] == {"select_tags": ["team-a"]}
    assert [s["name"] for s in exported["services"]] == ["a-svc"]
    assert exported["routes"] == [
        {**exported["routes"][0], "name": "a-on-openai", "service": "openai"}
    ]
    assert "consumers" not in exported and "plugins" not in exported
    # Syncing the scoped dump back changes nothing.
    assert client.post("/config", json=exported).json()["summary"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
    }


def test_sanitized_export_hides_every_secret(client: TestClient) -> None:
    doc = copy.deepcopy(DOC)
    doc["plugins"].append(copy.deepcopy(AI_PROXY))
    client.post("/config", json=doc)
    sanitized = _dump(client, sanitize="true")
    text = str(sanitized)
    assert hash_key("alice-key") not in text and "sk-old-secret" not in text
    [cred] = sanitized["consumers"][0]["keyauth_credentials"]
    assert "key_hash" not in cred and len(cred["key"]) == 64
    ai = next(p for p in sanitized["plugins"] if p["name"] == "ai-proxy-advanced")
    auth = ai["config"]["targets"][0]["auth"]
    assert auth["header_name"] == "Authorization" and len(auth["header_value"]) == 64


def test_key_and_key_hash_markers_are_validated(client: TestClient, store: Store) -> None:
    def creds(*items: dict[str, Any]) -> dict[str, Any]:
        return {
            "_format_version": "3.0",
            "consumers": [{"username": "u", "keyauth_credentials": list(items)}],
        }

    both = client.post("/config", json=creds({"key": "k", "key_hash": "sha256:" + "0" * 64}))
    assert both.status_code == 400
    assert "either 'key' or 'key_hash'" in both.json()["message"]
    bad = client.post("/config", json=creds({"key_hash": "md5:abc"}))
    assert bad.status_code == 400
    assert bad.json()["message"] == (
        "declarative config is invalid: consumers[0].keyauth_credentials[0]: key_hash: "
        "expected 'sha256:' and 64 lowercase hex digits"
    )
    assert store.revision() == 0
    ok = client.post("/config", json=creds({"key_hash": "sha256:" + hash_key("kept")}))
    assert ok.status_code == 200, ok.text
    assert store.lookup_credential(hash_key("kept")) is not None
