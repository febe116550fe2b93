"""`lockgate deck` end to end against a fake Admin API (httpx.MockTransport)."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lockgate.deck.command import add_parser

CANNED = {
    "changes": {
        "creating": [
            {"kind": "service", "name": "example-service"},
            {"kind": "route", "name": "example-route"},
        ],
        "updating": [{"kind": "plugin", "name": "key-auth (global)"}],
        "deleting": [{"kind": "route", "name": "r1"}],
    },
    "summary": {"created": 2, "updated": 1, "deleted": 1},
}

LUA = """\
local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  local key = auth_header:sub(8)
  kong.service.request.set_header("apikey", key)
end
"""

HOWTO = """\
_format_version: "3.0"
services:
- name: example-service
  url: http://httpbin.konghq.com/anything
  routes:
  - name: example-route
    paths:
    - /anything
consumers:
- username: openai-client
  keyauth_credentials:
  - key: my-consumer-key
plugins:
- name: pre-function
  config:
    access:
    - |
      local auth_header = kong.request.get_header("Authorization")
      if auth_header and auth_header:find("^Bearer ") then
        local key = auth_header:sub(8)
        kong.service.request.set_header("apikey", key)
      end
- name: key-auth
  config:
    key_names:
    - apikey
- name: ai-proxy-advanced
  config:
    targets:
    - route_type: llm/v1/chat
      auth:
        header_name: Authorization
        header_value: Bearer ${{ env "DECK_OPENAI_API_KEY" }}
      model:
        provider: openai
        name: gpt-4o
"""

ENV = {"LOCKGATE_ADMIN_TOKEN": "admin-secret", "DECK_OPENAI_API_KEY": "sk-test-123"}


class FakeAdmin:
    """Records every request; answers POST /config with a canned body, GET /config with an
    exported document."""

    def __init__(
        self,
        config: tuple[int, Any] = (200, CANNED),
        export: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.export = export or {"_format_version": "3.0"}
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    @property
    def writes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method != "GET"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/config" and request.method == "POST":
            status, body = self.config
            if isinstance(body, str):
                return httpx.Response(status, text=body)
            return httpx.Response(status, json=body)
        if request.url.path == "/config" and request.method == "GET":
            return httpx.Response(200, json=self.export)
        return httpx.Response(404, json={"message": "Not found"})


def deck(
    argv: list[str],
    *,
    environ: dict[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog="lockgate")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deck", *argv])
    run: Callable[..., int] = args.func
    # Positional environ: the way lockgate.cli calls it.
    return run(args, ENV if environ is None else environ, transport=transport)


@pytest.fixture
def howto(tmp_path: Path) -> str:
    path = tmp_path / "kong.yaml"
    path.write_text(HOWTO, encoding="utf-8")
    return str(path)


def test_sync_of_the_howto_file_posts_the_substituted_document(
    howto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = FakeAdmin()

    assert deck(["sync", howto], transport=admin.transport) == 0

    [request] = admin.requests
    assert request.method == "POST"
    assert str(request.url) == "http://localhost:8001/config"
    assert request.headers["Kong-Admin-Token"] == "admin-secret"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "_format_version": "3.0",
        "services": [
            {
                "name": "example-service",
                "url": "http://httpbin.konghq.com/anything",
                "routes": [{"name": "example-route", "paths": ["/anything"]}],
            }
        ],
        "consumers": [
            {"username": "openai-client", "keyauth_credentials": [{"key": "my-consumer-key"}]}
        ],
        "plugins": [
            {"name": "pre-function", "config": {"access": [LUA]}},
            {"name": "key-auth", "config": {"key_names": ["apikey"]}},
            {
                "name": "ai-proxy-advanced",
                "config": {
                    "targets": [
                        {
                            "route_type": "llm/v1/chat",
                            "auth": {
                                "header_name": "Authorization",
                                "header_value": "Bearer sk-test-123",
                            },
                            "model": {"provider": "openai", "name": "gpt-4o"},
                        }
                    ]
                },
            },
        ],
    }
    assert capsys.readouterr().out == (
        "creating service example-service\n"
        "creating route example-route\n"
        "updating plugin key-auth (global)\n"
        "deleting route r1\n"
        "Summary:\n"
        "  Created: 2\n"
        "  Updated: 1\n"
        "  Deleted: 1\n"
    )


def test_diff_is_a_dry_run(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin(config=(200, {"changes": {}, "summary": {}}))

    assert deck(["diff", howto], transport=admin.transport) == 0

    [request] = admin.requests
    assert request.method == "POST"
    assert request.url.path == "/config"
    assert request.url.params["dry_run"] == "true"
    assert capsys.readouterr().out == "Summary:\n  Created: 0\n  Updated: 0\n  Deleted: 0\n"


def test_sync_merges_several_files(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text('_format_version: "3.0"\nservices: [{name: s1, host: one}]\n')
    b.write_text('_format_version: "3.0"\nservices: [{name: s2, host: two}]\n')
    admin = FakeAdmin()

    assert deck(["sync", str(a), str(b)], transport=admin.transport) == 0

    [request] = admin.requests
    assert json.loads(request.content)["services"] == [
        {"name": "s1", "host": "one"},
        {"name": "s2", "host": "two"},
    ]


def test_invalid_file_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kong.yaml"
    path.write_text(
        '_format_version: "3.0"\nservices: [{name: example-service, host: h, foo: 1}]\n'
    )
    admin = FakeAdmin()

    assert deck(["sync", str(path)], transport=admin.transport) == 1

    assert admin.writes == []
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {path}: services[0] (example-service): unknown field 'foo'\n"


def test_unsupported_entity_type_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kong.yaml"
    path.write_text('_format_version: "3.0"\nupstreams: [{name: u}]\n')
    admin = FakeAdmin()

    assert deck(["sync", str(path)], transport=admin.transport) == 1

    assert admin.writes == []
    assert capsys.readouterr().err == f"error: {path}: unsupported entity type 'upstreams'\n"


def test_missing_env_variable_sends_nothing(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin()

    assert deck(["sync", howto], environ={}, transport=admin.transport) == 1

    assert admin.requests == []
    assert capsys.readouterr().err == (
        f"error: environment variable DECK_OPENAI_API_KEY is not set (used in {howto})\n"
    )


def test_validate_is_offline(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin()

    assert deck(["validate", howto], transport=admin.transport) == 0

    assert admin.requests == []
    assert capsys.readouterr().out == (
        "valid: 1 service, 1 route, 1 consumer, 1 keyauth_credential, 3 plugins\n"
    )


def test_validate_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kong.yaml"
    path.write_text('_format_version: "3.1"\n')

    assert deck(["validate", str(path)]) == 1

    assert capsys.readouterr().err == f"error: {path}: _format_version must be \"3.0\", got '3.1'\n"


def test_refused_token(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin(config=(401, {"message": "Unauthorized"}))

    assert deck(["sync", howto], transport=admin.transport) == 1

    assert capsys.readouterr().err == (
        "error: the Admin API refused the admin token (set LOCKGATE_ADMIN_TOKEN)\n"
    )


def test_missing_token(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin(config=(401, {"message": "Unauthorized"}))
    environ = {"DECK_OPENAI_API_KEY": "sk"}

    assert deck(["sync", howto], environ=environ, transport=admin.transport) == 1

    [request] = admin.requests
    assert "Kong-Admin-Token" not in request.headers
    assert capsys.readouterr().err == (
        "error: the Admin API requires an admin token (set LOCKGATE_ADMIN_TOKEN or --admin-token)\n"
    )


def test_kong_error_body_is_printed_with_env_values_masked(
    howto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "code": 2,
        "name": "schema violation",
        "message": "schema violation (plugins.2.config: header 'Bearer sk-test-123' is bad)",
    }
    admin = FakeAdmin(config=(400, body))

    assert deck(["sync", howto], transport=admin.transport) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: schema violation (plugins.2.config: header 'Bearer [masked]' is bad)\n"
    )


def test_non_json_error(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin(config=(502, "<html>bad gateway</html>"))

    assert deck(["sync", howto], transport=admin.transport) == 1

    assert capsys.readouterr().err == (
        "error: the Admin API answered POST /config with 502 Bad Gateway\n"
    )


def test_connection_refused(howto: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    assert deck(["sync", howto, "--admin-url", url]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Admin API at {url}: ")
    assert "refused" in err.lower()


def test_admin_url_and_token_come_from_env_and_flags_win(howto: str) -> None:
    admin = FakeAdmin()
    environ = {
        **ENV,
        "LOCKGATE_ADMIN_URL": "http://cp.example:9001/",
        "LOCKGATE_ADMIN_TOKEN": "from-env",
    }

    assert deck(["diff", howto], environ=environ, transport=admin.transport) == 0
    assert (
        deck(
            ["diff", howto, "--admin-url", "https://flag.example", "--admin-token", "from-flag"],
            environ=environ,
            transport=admin.transport,
        )
        == 0
    )

    first, second = admin.requests
    assert (str(first.url), first.headers["Kong-Admin-Token"]) == (
        "http://cp.example:9001/config?dry_run=true",
        "from-env",
    )
    assert (str(second.url), second.headers["Kong-Admin-Token"]) == (
        "https://flag.example/config?dry_run=true",
        "from-flag",
    )


EXPORTED: dict[str, Any] = {
    "_format_version": "3.0",
    "services": [
        {
            "id": "s1",
            "name": "svc",
            "host": "h",
            "port": 80,
            "routes": [{"id": "r1", "name": "rt", "paths": ["/"]}],
        }
    ],
    "consumers": [
        {
            "id": "c1",
            "username": "openai-client",
            "keyauth_credentials": [{"id": "k1", "key_hash": "sha256:" + "0" * 64}],
        }
    ],
    "plugins": [{"id": "p1", "name": "pre-function", "config": {"access": [LUA]}}],
}


def test_dump_reads_get_config_and_passes_select_tags_and_sanitize(
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = FakeAdmin(export=EXPORTED)

    assert (
        deck(
            ["dump", "--select-tag", "a", "--select-tag", "b", "--sanitize"],
            transport=admin.transport,
        )
        == 0
    )

    [request] = admin.requests
    assert (request.method, request.url.path) == ("GET", "/config")
    assert dict(request.url.params) == {"select_tags": "a,b", "sanitize": "true"}
    out = capsys.readouterr().out
    assert out.startswith("# Sanitized dump")
    assert "    - |\n" in out  # the Lua stays readable as a literal block
    document = yaml.safe_load(out)
    assert document["services"] == [
        {"name": "svc", "host": "h", "port": 80, "routes": [{"name": "rt", "paths": ["/"]}]}
    ]
    assert document["consumers"][0]["keyauth_credentials"] == [
        {"id": "k1", "key_hash": "sha256:" + "0" * 64}
    ]


def test_dump_to_a_file_with_ids_and_back_through_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = FakeAdmin(export=EXPORTED)
    out = tmp_path / "dump.yaml"

    assert deck(["dump", "-o", str(out), "--with-id"], transport=admin.transport) == 0

    text = out.read_text()
    assert text.startswith("# Key-auth keys are stored hashed")
    assert yaml.safe_load(text) == EXPORTED
    assert capsys.readouterr().err == (
        f"wrote 1 service, 1 route, 1 consumer, 1 keyauth_credential, 1 plugin to {out}\n"
    )
    assert deck(["validate", str(out)]) == 0
    assert capsys.readouterr().out == (
        "valid: 1 service, 1 route, 1 consumer, 1 keyauth_credential, 1 plugin\n"
    )


def test_dump_reports_a_refused_token(capsys: pytest.CaptureFixture[str]) -> None:
    admin = httpx.MockTransport(lambda request: httpx.Response(401, json={"message": "no"}))

    assert deck(["dump"], transport=admin) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: the Admin API refused the admin token (set LOCKGATE_ADMIN_TOKEN)\n"
    )
