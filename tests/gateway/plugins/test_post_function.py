"""post-function: pre-function's schema and behaviour at priority -1000, validated by the CP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from control_plane.admin.app import create_admin_app
from control_plane.store import open_store
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.plugins import registry
from gateway.plugins.base import BuildContext
from gateway.plugins.post_function import PLUGIN
from gateway.plugins.pre_function import PLUGIN as PRE_FUNCTION
from gateway.snapshot import Snapshot
from tests.gateway.lua.lua_helpers import make_ctx

TOKEN = "admin-token"


def test_identity_and_registry() -> None:
    assert PLUGIN.name == "post-function"
    assert PLUGIN.priority == -1000
    assert PLUGIN.allows_consumer_scope is False
    assert registry()["post-function"] is PLUGIN
    assert registry()["pre-function"] is PRE_FUNCTION


def test_same_schema_as_pre_function() -> None:
    assert (
        PLUGIN.config_model.model_json_schema()["properties"]
        == (PRE_FUNCTION.config_model.model_json_schema()["properties"])
    )


def test_syntax_error_names_post_function() -> None:
    with pytest.raises(ValidationError) as info:
        PLUGIN.validate({"header_filter": ["kong.response.set_header('x', 1", "y ="]})
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (
            ("header_filter", 0),
            "error parsing post-function: [string \"kong.response.set_header('x', 1\"]:1:"
            " ')' expected near <eof>",
        ),
        (("header_filter", 1), 'error parsing post-function: [string "y ="]:1: '
         "unexpected symbol near <eof>"),
    ]  # fmt: skip


async def test_runs_lua_like_pre_function() -> None:
    config: dict[str, object] = {
        "access": ["kong.service.request.set_header('x-post', kong.request.get_header('a'))"],
    }
    entity = PluginEntity(name="post-function", config=config)
    deps = BuildContext(Snapshot.create(1), InMemoryCredentials(), entity)
    handler = PLUGIN.build(PLUGIN.validate(config), deps)
    ctx = make_ctx(headers=[("A", "1")])
    assert await handler.access(ctx) is None
    assert ctx.request.headers.get("x-post") == "1"


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    app = create_admin_app(store, TOKEN, lambda event: None)
    with TestClient(app, headers={"Kong-Admin-Token": TOKEN}) as client:
        yield client
    store.close()


def test_admin_api_rejects_bad_lua_at_write_time(admin: TestClient) -> None:
    response = admin.post(
        "/plugins", json={"name": "post-function", "config": {"log": ["local x = ("]}}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["name"] == "schema violation"
    assert 'error parsing post-function: [string "local x = ("]:1:' in str(body["fields"])
    assert admin.get("/plugins").json()["data"] == []


def test_admin_api_accepts_good_lua(admin: TestClient) -> None:
    created = admin.post(
        "/plugins",
        json={
            "name": "post-function",
            "config": {"header_filter": ["kong.response.set_header('x', '1')"]},
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "post-function"
    assert body["config"]["header_filter"] == ["kong.response.set_header('x', '1')"]
    assert body["config"]["access"] == []
