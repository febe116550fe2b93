"""`/clustering/local-nodes` on the Admin API (with its token and role checks), and the
`lockgate scale` command against it."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from control_plane.admin.app import create_admin_app
from control_plane.clustering_api import NOT_SUPERVISING, add_clustering_routes
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import Store
from control_plane.supervisor import Supervisor, SupervisorConfig
from lockgate import scale_command
from tests.control_plane.conftest import TOKEN
from tests.control_plane.fake_node import COMMAND
from tests.control_plane.port_block import free_port_block
from tests.control_plane.test_supervisor import eventually, states

ADMIN = {"Kong-Admin-Token": TOKEN}


def _app(store: Store, supervisor: Supervisor | None) -> FastAPI:
    app = create_admin_app(store, TOKEN, lambda _event: None)
    add_clustering_routes(app, NodeRegistry(), Publisher(store.snapshot), local_nodes=supervisor)
    return app


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    sup = Supervisor(
        SupervisorConfig(
            command=COMMAND,
            env={**os.environ, "FAKE_NODE_EVENTS": str(tmp_path / "events.jsonl")},
            data_dir=tmp_path / "data",
            status_host="127.0.0.1",
            status_base_port=free_port_block(4),
            ready_poll_s=0.05,
            drain_timeout_s=5.0,
        )
    )
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


def _client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    # In the test's own event loop: the supervisor's tasks and processes live there.
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin", headers=headers or ADMIN
    )


async def _token(client: httpx.AsyncClient, role: str) -> dict[str, str]:
    response = await client.post("/admin-tokens", json={"name": f"t-{role}", "role": role})
    assert response.status_code == 201, response.text
    return {"Kong-Admin-Token": response.json()["token"]}


async def test_get_and_put_scale_the_nodes(store: Store, supervisor: Supervisor) -> None:
    async with _client(_app(store, supervisor)) as client:
        await eventually(lambda: states(supervisor) == [(1, "running")])
        body = (await client.get("/clustering/local-nodes")).json()
        assert body["desired"] == 1
        (node,) = body["data"]
        assert set(node) == {
            "index",
            "node_id",
            "pid",
            "state",
            "restarts",
            "status_port",
            "started_at",
        }
        assert (node["index"], node["state"], node["restarts"]) == (1, "running", 0)

        response = await client.put("/clustering/local-nodes", json={"count": 2})
        assert response.status_code == 200
        body = response.json()
        assert body["desired"] == 2
        assert [(n["index"], n["state"]) for n in body["data"]] == [(1, "running"), (2, "starting")]
        await eventually(
            lambda: len(supervisor.nodes()) == 2 and states(supervisor)[1][1] == "running"
        )
        listed = (await client.get("/clustering/local-nodes")).json()
        assert [n["state"] for n in listed["data"]] == ["running", "running"]

        response = await client.put("/clustering/local-nodes", json={"count": 1})
        assert [(n["index"], n["state"]) for n in response.json()["data"]] == [
            (1, "running"),
            (2, "draining"),
        ]
        await eventually(lambda: states(supervisor) == [(1, "running")])
        listed = (await client.get("/clustering/local-nodes")).json()
        assert listed["desired"] == 1
        assert [n["index"] for n in listed["data"]] == [1]


@pytest.mark.parametrize(
    "body",
    [{"count": 0}, {"count": 65}, {"count": "2"}, {"count": 2.0}, {"count": True}, {}, [2]],
)
async def test_bad_counts_are_400(store: Store, supervisor: Supervisor, body: Any) -> None:
    async with _client(_app(store, supervisor)) as client:
        response = await client.put("/clustering/local-nodes", json=body)
        assert response.status_code == 400
        assert response.json()["fields"] == {"count": "expected an integer from 1 to 64"}
        response = await client.put("/clustering/local-nodes", content=b"{nope")
        assert response.status_code == 400
    assert supervisor.desired == 1


async def test_not_supervising_is_404(store: Store) -> None:
    async with _client(_app(store, None)) as client:
        for response in (
            await client.get("/clustering/local-nodes"),
            await client.put("/clustering/local-nodes", json={"count": 2}),
        ):
            assert response.status_code == 404
            assert response.json() == {"message": NOT_SUPERVISING}


async def test_roles_viewer_reads_editor_scales(store: Store, supervisor: Supervisor) -> None:
    app = _app(store, supervisor)
    async with _client(app) as admin:
        viewer, editor = await _token(admin, "viewer"), await _token(admin, "editor")
    async with _client(app, viewer) as client:
        assert (await client.get("/clustering/local-nodes")).status_code == 200
        response = await client.put("/clustering/local-nodes", json={"count": 2})
        assert response.status_code == 403
    assert supervisor.desired == 1
    async with _client(app, editor) as client:
        assert (await client.put("/clustering/local-nodes", json={"count": 2})).status_code == 200
    assert supervisor.desired == 2
    async with _client(app, {"Kong-Admin-Token": "wrong"}) as client:
        assert (await client.get("/clustering/local-nodes")).status_code == 401


def _scale_args(count: int, *, wait: bool = True, timeout: float = 10.0) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    scale_command.add_parser(parser.add_subparsers())
    argv = ["scale", str(count), "--timeout", str(timeout), "--admin-url", "http://admin"]
    return parser.parse_args([*argv, *([] if wait else ["--no-wait"])])


async def test_scale_command_prints_progress_until_settled(
    store: Store, supervisor: Supervisor, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command is synchronous: run it in a thread, its requests go to the app on this loop.
    app = _app(store, supervisor)
    loop = asyncio.get_running_loop()

    def handler(request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            async with _client(app, dict(request.headers)) as client:
                response = await client.request(
                    request.method, request.url.path, content=request.content
                )
                await response.aread()
                return response

        response = asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10)
        return httpx.Response(response.status_code, content=response.content)

    transport = httpx.MockTransport(handler)
    env = {"LOCKGATE_ADMIN_TOKEN": TOKEN}
    code = await asyncio.to_thread(scale_command.run, _scale_args(3), env, transport=transport)
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "Scaling local data planes to 3."
    assert lines[1].startswith("  3 desired: ") and "starting" in lines[1]
    assert lines[-2:] == ["  3 desired: 3 running", "3 data plane(s) running."]
    assert states(supervisor) == [(1, "running"), (2, "running"), (3, "running")]

    code = await asyncio.to_thread(scale_command.run, _scale_args(1), env, transport=transport)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 draining" in out
    assert out.splitlines()[-2:] == ["  1 desired: 1 running", "1 data plane(s) running."]
    assert states(supervisor) == [(1, "running")]


def test_scale_command_errors(capsys: pytest.CaptureFixture[str]) -> None:
    def not_supervising(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": NOT_SUPERVISING})

    transport = httpx.MockTransport(not_supervising)
    env = {"LOCKGATE_ADMIN_TOKEN": "t"}
    assert scale_command.run(_scale_args(2), env, transport=transport) == 1
    assert capsys.readouterr().err == f"error: {NOT_SUPERVISING} (HTTP 404)\n"
    assert scale_command.run(_scale_args(2), {}, transport=transport) == 1
    assert "no admin token" in capsys.readouterr().err
    assert scale_command.run(_scale_args(65), env, transport=transport) == 1
    assert capsys.readouterr().err == "error: N must be from 1 to 64, got 65\n"


def test_scale_command_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    stuck = {"desired": 2, "data": [{"index": 1, "state": "running"}]}
    now = [0.0]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=stuck)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    code = scale_command.run(
        _scale_args(2, timeout=3),
        {"LOCKGATE_ADMIN_TOKEN": "t"},
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert code == 1
    assert capsys.readouterr().err == (
        "error: the nodes did not settle within 3 s (2 desired: 1 running)\n"
    )
