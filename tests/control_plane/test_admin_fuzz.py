"""Admin API under schemathesis: whatever a client sends, never a 5xx.

Every operation of `/openapi.json` is called with generated valid and invalid input (bodies
from the documented input schemas, odd path segments, bad query options), authenticated with
the bootstrap token, against a temp SQLite store. Bounded: a few examples per operation and
mode, no shrinking, derandomized, so the run takes seconds.

Hypothesis drives schemathesis's strategies directly (schemathesis's pytest integration does
not run under pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.openapi import from_asgi

from control_plane.admin.app import create_admin_app
from control_plane.store import open_store
from gateway.plugins import registry
from tests.control_plane.conftest import TOKEN

EXAMPLES = 4
"""Examples per operation and generation mode."""

AUTH = {"Kong-Admin-Token": TOKEN}


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    store = open_store(f"sqlite:///{tmp / 'fuzz.db'}")
    yield create_admin_app(store, TOKEN, lambda _event: None, registry())
    store.close()


def _seed(app: FastAPI) -> None:
    """Entities for generated paths and references to hit now and then."""
    from fastapi.testclient import TestClient

    with TestClient(app, headers=AUTH) as client:
        client.post("/services", json={"name": "svc", "host": "h"})
        client.post("/services/svc/routes", json={"name": "r", "paths": ["/"]})
        client.post("/consumers", json={"username": "alice"})
        client.post("/consumers/alice/key-auth", json={"key": "k"})


def _takes_input(spec: dict[str, Any]) -> bool:
    """Whether an operation has anything besides string path parameters to make invalid."""
    params = spec.get("parameters", [])
    return "requestBody" in spec or any(p["in"] != "path" for p in params)


def test_no_server_errors(admin_app: FastAPI) -> None:
    _seed(admin_app)
    schema = from_asgi("/openapi.json", admin_app, headers=AUTH)
    schema.config.generation.update(with_security_parameters=False, allow_x00=True)
    document = admin_app.openapi()
    server_errors: list[str] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid
        operations.append(result.ok())
    assert len(operations) > 80  # every entity path is documented

    for operation in operations:
        spec = document["paths"][operation.path][operation.method.lower()]
        modes = [GenerationMode.POSITIVE]
        if _takes_input(spec):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Case[Any]) -> None:
                response = case.call(headers=AUTH)
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} query={case.query} "
                        f"body={case.body!r} -> {response.status_code} {response.text[:200]}"
                    )

            call()

    assert server_errors == []


def test_the_document_describes_every_entity_body(admin_app: FastAPI) -> None:
    document = admin_app.openapi()
    operation = document["paths"]["/services"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    service = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"host", "url", "port", "protocol", "tags"} <= set(service["properties"])
    listing = {p["name"] for p in document["paths"]["/services"]["get"]["parameters"]}
    assert listing == {"size", "offset", "tags"}
    nested = document["paths"]["/consumers/{consumer}/key-auth/{id}"]["patch"]
    assert {p["name"] for p in nested["parameters"]} == {"consumer", "id"}
    credential = document["components"]["schemas"]["KeyAuthCredentialInput"]
    assert {"key", "ttl"} <= set(credential["properties"])
    assert "key_hash" not in credential["properties"]
