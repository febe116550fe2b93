"""Contract: admin token storage (hashed), expiry, revocation; never a config revision."""

from __future__ import annotations

import hashlib
import time

import pytest

from control_plane.store import AdminToken, Store
from control_plane.store.errors import UniqueViolation


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_a_created_token_is_listed_and_found_by_its_hash(store: Store) -> None:
    before = int(time.time())
    token = store.create_admin_token("ci", "editor", _hash("t1"))
    assert (token.name, token.role, token.token_hash) == ("ci", "editor", _hash("t1"))
    assert before <= token.created_at <= int(time.time())
    assert (token.last_used_at, token.expires_at) == (None, None)
    assert store.list_admin_tokens() == [token]
    assert store.find_admin_token(_hash("t1")) == token
    assert store.find_admin_token(_hash("other")) is None


def test_tokens_are_listed_oldest_first(store: Store) -> None:
    names = ["a", "b", "c"]
    for name in names:
        store.create_admin_token(name, "viewer", _hash(name))
    assert [t.name for t in store.list_admin_tokens()] == names


def test_a_taken_name_is_refused(store: Store) -> None:
    store.create_admin_token("ci", "admin", _hash("t1"))
    with pytest.raises(UniqueViolation) as info:
        store.create_admin_token("ci", "viewer", _hash("t2"))
    assert info.value.fields == {"name": "ci"}
    assert [t.role for t in store.list_admin_tokens()] == ["admin"]


def test_a_taken_hash_is_refused_without_echoing_it(store: Store) -> None:
    store.create_admin_token("one", "admin", _hash("t1"))
    with pytest.raises(UniqueViolation) as info:
        store.create_admin_token("two", "admin", _hash("t1"))
    assert info.value.fields == {"token_hash": "[redacted]"}
    assert _hash("t1") not in str(info.value)


def test_an_unknown_role_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="invalid role 'root'"):
        store.create_admin_token("x", "root", _hash("t"))
    assert store.list_admin_tokens() == []


def test_an_expired_token_is_not_found_but_still_listed(store: Store) -> None:
    past, future = int(time.time()) - 1, int(time.time()) + 3600
    store.create_admin_token("old", "admin", _hash("old"), expires_at=past)
    fresh = store.create_admin_token("new", "admin", _hash("new"), expires_at=future)
    assert store.find_admin_token(_hash("old")) is None
    assert store.find_admin_token(_hash("new")) == fresh
    assert [t.name for t in store.list_admin_tokens()] == ["old", "new"]


def test_touch_records_the_last_use_without_a_revision_or_audit(store: Store) -> None:
    token = store.create_admin_token("ci", "admin", _hash("t1"))
    audit_before, _ = store.list_audit()
    store.touch_admin_token(token.id)
    found = store.find_admin_token(_hash("t1"))
    assert found is not None and found.last_used_at is not None
    assert abs(found.last_used_at - time.time()) < 5
    assert store.list_audit()[0] == audit_before
    assert store.revision() == 0


@pytest.mark.parametrize("by", ["id", "name"])
def test_revoke_by_id_or_name(store: Store, by: str) -> None:
    token = store.create_admin_token("ci", "admin", _hash("t1"))
    keep = store.create_admin_token("keep", "viewer", _hash("t2"))
    assert store.revoke_admin_token(token.id if by == "id" else "ci") is True
    assert store.find_admin_token(_hash("t1")) is None
    assert store.list_admin_tokens() == [keep]
    assert store.revoke_admin_token("ci") is False


def test_revoke_prefers_the_id_over_a_name_that_looks_like_one(store: Store) -> None:
    first = store.create_admin_token("first", "admin", _hash("t1"))
    store.create_admin_token(first.id, "viewer", _hash("t2"))  # named like the first's id
    assert store.revoke_admin_token(first.id) is True
    assert [t.name for t in store.list_admin_tokens()] == [first.id]


def test_token_writes_are_audited_without_the_hash_and_keep_the_revision(store: Store) -> None:
    token = store.create_admin_token("ci", "editor", _hash("t1"), actor="root", request_id="r1")
    store.revoke_admin_token("ci", actor="root", request_id="r2")
    entries, _ = store.list_audit()
    assert [(e.action, e.entity, e.entity_id, e.entity_name) for e in entries] == [
        ("delete", "admin_tokens", token.id, "ci"),
        ("create", "admin_tokens", token.id, "ci"),
    ]
    assert [(e.actor, e.request_id) for e in entries] == [("root", "r2"), ("root", "r1")]
    created = entries[1].diff
    assert created["before"] is None
    assert created["after"]["role"] == "editor"
    assert created["after"]["token_hash"] == "[redacted]"
    assert _hash("t1") not in repr([e.diff for e in entries])
    assert store.revision() == 0


def test_tokens_are_plain_values(store: Store) -> None:
    token = store.create_admin_token("ci", "viewer", _hash("t1"))
    assert isinstance(token, AdminToken)
    with pytest.raises(AttributeError):
        token.role = "admin"  # type: ignore[misc]
