"""UserStore: argon2id hashes, sessions, audit entries."""

from __future__ import annotations

import pytest

from control_plane.store.errors import SchemaViolation, UniqueViolation
from control_plane.store.users_tables import ui_users
from control_plane.ui.bootstrap import ensure_first_admin
from tests.control_plane.ui.conftest import PASSWORD, Env


def test_passwords_are_stored_as_argon2id_hashes(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    engine = env.users._engine
    with engine.connect() as conn:
        stored = conn.execute(ui_users.select()).one().password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert env.users.authenticate("alice", PASSWORD) is not None
    assert env.users.authenticate("alice", PASSWORD + "x") is None
    assert env.users.authenticate("nobody", PASSWORD) is None


def test_bad_input_and_duplicates(env: Env) -> None:
    env.users.create("alice", PASSWORD, "viewer")
    with pytest.raises(UniqueViolation):
        env.users.create("alice", PASSWORD, "viewer")
    with pytest.raises(SchemaViolation):
        env.users.create("bad name", PASSWORD, "viewer")
    with pytest.raises(SchemaViolation):
        env.users.create("bob", "short", "viewer")
    with pytest.raises(SchemaViolation):
        env.users.create("bob", PASSWORD, "owner")


def test_sessions_expire_and_end(env: Env) -> None:
    user = env.users.create("alice", PASSWORD, "admin")
    token, session = env.users.start_session(user, 100)
    found = env.users.session(token, idle_s=50)
    assert found is not None and found.user.username == "alice"
    assert found.csrf_token == session.csrf_token
    assert env.users.session("not-a-token", idle_s=50) is None
    env.clock.now += 49
    assert env.users.session(token, idle_s=50) is not None
    env.clock.now += 52  # past the absolute expiry
    assert env.users.session(token, idle_s=1000) is None
    other, _ = env.users.start_session(user, 100)
    env.users.end_session(other)
    assert env.users.session(other, idle_s=50) is None


def test_deleting_a_user_ends_their_sessions_and_is_audited(env: Env) -> None:
    user = env.users.create("alice", PASSWORD, "viewer", actor="ui:root")
    token, _ = env.users.start_session(user, 100)
    assert env.users.delete("alice", actor="ui:root")
    assert env.users.session(token, idle_s=100) is None
    assert not env.users.delete("alice")
    entries, _ = env.store.list_audit(entity="ui_users")
    assert [(e.action, e.actor, e.entity_name) for e in entries] == [
        ("delete", "ui:root", "alice"),
        ("create", "ui:root", "alice"),
    ]
    assert all("password" not in str(e.diff) for e in entries)


def test_first_admin_is_created_once(env: Env) -> None:
    password = ensure_first_admin(env.users)
    assert password is not None and len(password) >= 16
    assert env.users.authenticate("admin", password) is not None
    assert ensure_first_admin(env.users) is None
    assert [u.username for u in env.users.list()] == ["admin"]


def test_first_admin_with_a_configured_password_prints_nothing(env: Env) -> None:
    assert ensure_first_admin(env.users, PASSWORD) is None
    user = env.users.authenticate("admin", PASSWORD)
    assert user is not None and user.role == "admin"
