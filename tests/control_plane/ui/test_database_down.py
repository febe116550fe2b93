"""With the database down, a page answers 503 with a readable message (not a bare 500)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.control_plane.ui.conftest import Browser, Env


def test_a_page_with_the_database_down_says_so(
    env: Env, admin: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert admin.get("/services").status_code == 200

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT ...", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(env.store, "read", down)
    page = admin.get("/services")
    assert page.status_code == 503
    assert page.headers["retry-after"] == "1"
    assert "Database unavailable" in page.text
    assert "The database is unavailable; retry the request" in page.text
    monkeypatch.undo()
    assert admin.get("/services").status_code == 200
