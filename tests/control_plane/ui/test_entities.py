"""Gateway Services, Routes and Consumers pages: what a user sees after each form, and that
the writes are the Admin API's (same validation, same stored entity, same change events)."""

from __future__ import annotations

import re

from control_plane.admin.kinds import CONSUMERS, ROUTES, SERVICES
from gateway.credentials import hash_key
from tests.control_plane.ui.conftest import Browser, Env


def _one(env: Env, kind: type, name: str) -> dict[str, object]:
    found = env.store.read(lambda r: r.find(kind, "name", name))
    assert found is not None
    return found.model_dump(mode="json")


def test_create_a_service_and_see_it_listed(env: Env, admin: Browser) -> None:
    response = admin.post(
        "/services",
        {"name": "example-service", "url": "https://api.example.com:8443/v1", "enabled": "true"},
    )
    assert response.status_code == 303
    page = admin.get(response.headers["location"]).text
    assert "Created gateway service <strong>example-service</strong>" in page
    assert "https://api.example.com:8443/v1" in page
    stored = _one(env, SERVICES.model, "example-service")
    assert (stored["protocol"], stored["host"], stored["port"], stored["path"]) == (
        "https",
        "api.example.com",
        8443,
        "/v1",
    )
    assert stored["enabled"] is True
    assert len(env.events) == 1


def test_a_duplicate_name_is_shown_beside_the_field(env: Env, admin: Browser) -> None:
    admin.post("/services", {"name": "dup", "url": "http://a"})
    response = admin.post("/services", {"name": "dup", "url": "http://b.example"})
    assert response.status_code == 409
    assert "&#39;dup&#39; is already in use" in response.text
    assert 'value="http://b.example"' in response.text  # what was typed stays
    assert 'aria-invalid="true"' in response.text
    assert len(env.store.read(lambda r: r.all(SERVICES.model))) == 1


def test_invalid_input_gets_kongs_message_inline(admin: Browser) -> None:
    response = admin.post("/services", {"name": "bad", "url": "not a url"})
    assert response.status_code == 400
    assert "missing scheme in url" in response.text
    number = admin.post("/services", {"name": "bad", "url": "http://x", "retries": "many"})
    assert number.status_code == 400
    assert "expected a whole number" in number.text


def test_edit_a_service(env: Env, admin: Browser) -> None:
    admin.post("/services", {"name": "svc", "url": "http://old.example", "enabled": "true"})
    service_id = _one(env, SERVICES.model, "svc")["id"]
    form = admin.get(f"/services/{service_id}").text
    assert 'value="http://old.example"' in form
    saved = admin.post(f"/services/{service_id}", {"name": "svc", "url": "http://new.example:81/p"})
    assert saved.status_code == 303
    assert "Saved." in admin.get(saved.headers["location"]).text
    stored = _one(env, SERVICES.model, "svc")
    assert (stored["host"], stored["port"], stored["path"], stored["enabled"]) == (
        "new.example",
        81,
        "/p",
        False,  # the unchecked box
    )


def test_routes_pick_their_service_and_a_used_service_cannot_be_deleted(
    env: Env, admin: Browser
) -> None:
    admin.post("/services", {"name": "svc", "url": "http://up"})
    service_id = _one(env, SERVICES.model, "svc")["id"]
    page = admin.get("/routes").text
    assert f'<option value="{service_id}">svc</option>' in page
    created = admin.post(
        "/routes",
        {
            "name": "example-route",
            "service": service_id,
            "paths": "/anything\n/other",
            "methods": "GET, POST",
            "strip_path": "true",
        },
    )
    assert created.status_code == 303
    route = _one(env, ROUTES.model, "example-route")
    assert route["paths"] == ["/anything", "/other"]
    assert route["methods"] == ["GET", "POST"]
    assert route["service"] == {"id": service_id}
    listing = admin.get("/routes").text
    assert "/anything, /other" in listing
    refused = admin.post(f"/services/{service_id}/delete")
    assert refused.status_code == 400
    assert "references this" in refused.text
    assert admin.post(f"/routes/{route['id']}/delete").status_code == 303
    assert admin.post(f"/services/{service_id}/delete").status_code == 303
    assert env.store.read(lambda r: r.all(SERVICES.model)) == []


def test_a_bad_route_path_is_refused(admin: Browser) -> None:
    response = admin.post("/routes", {"name": "r", "paths": "no-slash"})
    assert response.status_code == 400
    assert "paths" in response.text


def test_consumer_key_is_generated_and_shown_once(env: Env, admin: Browser) -> None:
    assert admin.post("/consumers", {"username": "openai-client"}).status_code == 303
    consumer = env.store.read(lambda r: r.find(CONSUMERS.model, "username", "openai-client"))
    assert consumer is not None
    response = admin.post(f"/consumers/{consumer.id}/key-auth", {})
    assert response.status_code == 201
    assert "shown only once" in response.text
    found = re.search(r'<pre id="new-key"><code>([^<]+)</code>', response.text)
    assert found is not None
    key = found.group(1)
    match = env.store.lookup_credential(hash_key(key))
    assert match is not None and match.consumer.username == "openai-client"
    again = admin.get(f"/consumers/{consumer.id}").text
    assert key not in again
    assert "new-key" not in again


def test_a_chosen_key_that_exists_is_refused(env: Env, admin: Browser) -> None:
    admin.post("/consumers", {"username": "a"})
    admin.post("/consumers", {"username": "b"})
    admin.post("/consumers/a/key-auth", {"key": "my-consumer-key"})
    response = admin.post("/consumers/b/key-auth", {"key": "my-consumer-key"})
    assert response.status_code == 409
    assert "That key is already in use" in response.text
    assert "new-key" not in response.text


def test_delete_a_key(env: Env, admin: Browser) -> None:
    admin.post("/consumers", {"username": "a"})
    admin.post("/consumers/a/key-auth", {"key": "k-123"})
    credential = env.store.lookup_credential(hash_key("k-123"))
    assert credential is not None
    page = admin.get("/consumers/a").text
    ids = re.findall(r"/key-auth/([0-9a-f-]{36})/delete", page)
    assert len(ids) == 1
    consumer_id = env.store.read(lambda r: r.find(CONSUMERS.model, "username", "a")).id  # type: ignore[union-attr]
    assert admin.post(f"/consumers/{consumer_id}/key-auth/{ids[0]}/delete").status_code == 303
    assert env.store.lookup_credential(hash_key("k-123")) is None


def test_unknown_entities_are_404_pages(admin: Browser) -> None:
    response = admin.get("/services/nope")
    assert response.status_code == 404
    assert "No gateway service &#39;nope&#39;." in response.text
