"""The contract suite's fixtures: every test here runs once per backend.

`database_url` (tests/control_plane/conftest.py) is a fresh SQLite file or a fresh database on
the session's PostgreSQL server; `store` is that database opened (and migrated) by `open_store`,
as the control plane does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from control_plane.store import Store, open_store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()
