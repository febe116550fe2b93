"""Admin API: list pagination (`size`, `offset`, `next`) and tag filters."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["data"]]


def _services(client: TestClient, tags_by_name: dict[str, list[str]]) -> None:
    for name, tags in tags_by_name.items():
        response = client.post("/services", json={"name": name, "host": "h", "tags": tags})
        assert response.status_code == 201, response.text


def test_default_and_maximum_size(client: TestClient) -> None:
    _services(client, {f"s{i:03}": [] for i in range(101)})
    first = client.get("/services").json()
    assert len(first["data"]) == 100
    assert first["next"] == f"/services?offset={first['offset']}"
    rest = client.get(first["next"]).json()
    assert _names(rest) == ["s100"] and rest["next"] is None and "offset" not in rest
    assert len(client.get("/services", params={"size": 1000}).json()["data"]) == 101


def test_bad_size_and_offset_are_kongs_errors(client: TestClient) -> None:
    for size in ("0", "1001", "-1", "1.5"):
        response = client.get("/services", params={"size": size})
        assert response.status_code == 400
        assert response.json() == {
            "code": 9,
            "name": "invalid size",
            "message": "size must be an integer between 1 and 1000",
        }
    word = client.get("/services", params={"size": "ten"})
    assert word.json()["message"] == "size must be a number"
    offset = client.get("/services", params={"offset": "%%%"})
    assert offset.status_code == 400
    assert offset.json() == {
        "code": 7,
        "name": "invalid offset",
        "message": "'%%%' is not a valid offset: bad base64 encoding",
    }


def test_pages_walk_every_entity_once(client: TestClient) -> None:
    _services(client, {f"s{i}": [] for i in range(7)})
    seen: list[str] = []
    url: str | None = "/services?size=3"
    for _ in range(5):
        if url is None:
            break
        body = client.get(url).json()
        seen += _names(body)
        url = body["next"]
        if url is not None:
            assert url.endswith("&size=3")
    assert seen == [f"s{i}" for i in range(7)]


def test_tags_all_and_any(client: TestClient) -> None:
    _services(
        client,
        {"ab": ["a", "b"], "a": ["a"], "b": ["b"], "c": ["c"], "none": []},
    )
    assert _names(client.get("/services", params={"tags": "a"}).json()) == ["ab", "a"]
    assert _names(client.get("/services", params={"tags": "a,b"}).json()) == ["ab"]
    assert _names(client.get("/services", params={"tags": "a/c"}).json()) == ["ab", "a", "c"]
    assert client.get("/services", params={"tags": "zzz"}).json() == {"data": [], "next": None}


def test_tag_filter_pages_keep_the_filter(client: TestClient) -> None:
    tags = {f"s{i}": (["even"] if i % 2 == 0 else ["odd"]) for i in range(9)}
    _services(client, tags)
    first = client.get("/services", params={"tags": "even", "size": 2}).json()
    assert _names(first) == ["s0", "s2"]
    assert "&tags=even" in first["next"] and "&size=2" in first["next"]
    second = client.get(first["next"]).json()
    assert _names(second) == ["s4", "s6"]
    third = client.get(second["next"]).json()
    assert _names(third) == ["s8"]
    assert third["next"] is None


def test_bad_tag_filters(client: TestClient) -> None:
    mixed = client.get("/services", params={"tags": "a,b/c"})
    assert mixed.status_code == 400
    assert mixed.json() == {
        "code": 11,
        "name": "invalid options",
        "message": "invalid option (tags: invalid filter syntax)",
        "fields": {"tags": "invalid filter syntax"},
    }
    many = client.get("/services", params={"tags": "a,b,c,d,e,f"})
    assert many.status_code == 400
    assert many.json()["fields"] == {"tags": "cannot query more than 5 tags"}
    assert client.get("/services", params={"tags": "a,b,c,d,e"}).status_code == 200


def test_nested_lists_page_and_filter(client: TestClient) -> None:
    client.post("/services", json={"name": "svc", "host": "h"})
    for i in range(3):
        tags = ["x"] if i != 1 else []
        body = {"name": f"r{i}", "paths": [f"/{i}"], "tags": tags}
        assert client.post("/services/svc/routes", json=body).status_code == 201
    client.post("/routes", json={"name": "other", "paths": ["/o"], "tags": ["x"]})
    page = client.get("/services/svc/routes", params={"tags": "x", "size": 1}).json()
    assert _names(page) == ["r0"]
    assert page["next"].startswith("/services/svc/routes?offset=")
    assert _names(client.get(page["next"]).json()) == ["r2"]
