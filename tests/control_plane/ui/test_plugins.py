"""Plugins: forms drawn from each plugin's JSON Schema, Lua compiled on save with errors
shown beside the code, scopes, edit and delete."""

from __future__ import annotations

import json

from control_plane.admin.kinds import PLUGINS, ROUTES
from control_plane.ui.plugin_forms import plugin_fields, plugin_schema
from gateway.plugins import registry
from tests.control_plane.ui.conftest import Browser, Env

LUA = """local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  kong.service.request.set_header("apikey", auth_header:sub(8))
end"""


def _plugins(env: Env) -> list[dict[str, object]]:
    return [p.model_dump(mode="json") for p in env.store.read(lambda r: r.all(PLUGINS.model))]


def test_every_plugin_form_is_drawn_from_its_schema(admin: Browser) -> None:
    for name, plugin in registry().items():
        page = admin.get(f"/plugins/new/{name}")
        assert page.status_code == 200
        for field in plugin_fields(name, plugin_schema(plugin)):
            assert f'name="config.{field.name}"' in page.text, (name, field.name)
            assert field.label in page.text


def test_widgets_follow_the_schema_types() -> None:
    fields = {
        f.name: f.widget for f in plugin_fields("key-auth", plugin_schema(registry()["key-auth"]))
    }
    assert fields["key_names"] == "lines"
    assert fields["hide_credentials"] == "bool"
    assert fields["anonymous"] == "text"
    lua = {
        f.name: f.widget
        for f in plugin_fields("pre-function", plugin_schema(registry()["pre-function"]))
    }
    assert lua["access"] == "code"
    advanced = {
        f.name: f.widget
        for f in plugin_fields("ai-proxy-advanced", plugin_schema(registry()["ai-proxy-advanced"]))
    }
    assert advanced["targets"] == "json"


def test_enable_pre_function_with_lua(env: Env, admin: Browser) -> None:
    response = admin.post(
        "/plugins/new/pre-function", {"config.access": [LUA, ""], "enabled": "true"}
    )
    assert response.status_code == 303
    assert (
        "Enabled plugin <strong>pre-function</strong>"
        in admin.get(response.headers["location"]).text
    )
    (stored,) = _plugins(env)
    assert stored["config"]["access"] == [LUA]  # type: ignore[index]
    assert stored["service"] is None and stored["route"] is None  # global
    page = admin.get(f"/plugins/{stored['id']}").text
    assert "kong.service.request.set_header" in page


def test_invalid_lua_shows_the_compile_error_beside_the_code(env: Env, admin: Browser) -> None:
    response = admin.post(
        "/plugins/new/pre-function", {"config.access": "local x = (", "enabled": "true"}
    )
    assert response.status_code == 400
    assert 'id="c-access-err"' in response.text
    assert "error parsing pre-function" in response.text
    assert "local x = (" in response.text  # the code is kept for fixing
    assert _plugins(env) == []


def test_key_auth_on_a_route_with_listed_key_names(env: Env, admin: Browser) -> None:
    admin.post("/services", {"name": "svc", "url": "http://up"})
    admin.post("/routes", {"name": "r", "paths": "/x"})
    route = env.store.read(lambda r: r.find(ROUTES.model, "name", "r"))
    assert route is not None
    route_id = route.id
    response = admin.post(
        "/plugins/new/key-auth",
        {
            "route": route_id,
            "config.key_names": "apikey\nx-api-key",
            "config.hide_credentials": "true",
            "enabled": "true",
        },
    )
    assert response.status_code == 303
    (stored,) = _plugins(env)
    assert stored["route"] == {"id": route_id}
    config = stored["config"]
    assert config["key_names"] == ["apikey", "x-api-key"]  # type: ignore[index]
    assert config["hide_credentials"] is True  # type: ignore[index]
    assert config["key_in_query"] is False  # type: ignore[index]  # unchecked box
    assert "Route: r" in admin.get("/plugins").text


def test_nested_config_is_json_and_bad_json_is_named(env: Env, admin: Browser) -> None:
    bad = admin.post("/plugins/new/ai-proxy-advanced", {"config.targets": "[{", "enabled": "true"})
    assert bad.status_code == 400
    assert "invalid JSON" in bad.text
    targets = [
        {
            "route_type": "llm/v1/chat",
            "auth": {"header_name": "Authorization", "header_value": "Bearer sk-1"},
            "model": {"provider": "openai", "name": "gpt-4o"},
        }
    ]
    response = admin.post(
        "/plugins/new/ai-proxy-advanced",
        {"config.targets": json.dumps(targets), "enabled": "true"},
    )
    assert response.status_code == 303, response.text
    (stored,) = _plugins(env)
    assert stored["config"]["targets"][0]["model"]["name"] == "gpt-4o"  # type: ignore[index]


def test_a_second_global_instance_is_a_duplicate(admin: Browser) -> None:
    assert admin.post("/plugins/new/key-auth", {"enabled": "true"}).status_code == 303
    again = admin.post("/plugins/new/key-auth", {"enabled": "true"})
    assert again.status_code == 409
    assert "UNIQUE violation" in again.text


def test_edit_replaces_the_config_and_delete_removes(env: Env, admin: Browser) -> None:
    admin.post("/plugins/new/key-auth", {"config.key_names": "apikey", "enabled": "true"})
    (stored,) = _plugins(env)
    saved = admin.post(
        f"/plugins/{stored['id']}", {"config.key_names": "other", "instance_name": "main"}
    )
    assert saved.status_code == 303
    (after,) = _plugins(env)
    assert after["config"]["key_names"] == ["other"]  # type: ignore[index]
    assert after["enabled"] is False
    assert after["instance_name"] == "main"
    assert admin.post(f"/plugins/{stored['id']}/delete").status_code == 303
    assert _plugins(env) == []


def test_viewer_sees_plugins_but_cannot_add_them(browser_for: object, env: Env) -> None:
    viewer: Browser = browser_for("viewer")  # type: ignore[operator]
    page = viewer.get("/plugins").text
    assert "Add a plugin" not in page
    assert viewer.post("/plugins/new/key-auth", {"enabled": "true"}).status_code == 403
    assert _plugins(env) == []
