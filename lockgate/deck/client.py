"""The Admin API as `lockgate deck` uses it: `POST /config` (sync, diff) and `GET /config` (dump).

Every failure becomes a DeckError whose message says what to do: an unreachable Admin API, a
refused admin token, or Kong's error body (`{"message": ...}`) from the control plane.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from lockgate.deck.errors import DeckError

TOKEN_HEADER = "Kong-Admin-Token"  # noqa: S105 (a header name, not a secret)


@dataclass(frozen=True, slots=True)
class Change:
    """One entity the control plane creates, updates or deletes, as it names it; for updates
    `old` and `new` are its bodies (secrets already redacted by the control plane)."""

    kind: str
    name: str
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ConfigResult:
    """The answer of `POST /config`: the changes by action, the counts, and the raw body
    (decK's `--json-output` shape)."""

    creating: tuple[Change, ...]
    updating: tuple[Change, ...]
    deleting: tuple[Change, ...]
    created: int
    updated: int
    deleted: int
    raw: Mapping[str, Any] = field(default_factory=dict)


class AdminClient:
    """A synchronous Admin API client; use as a context manager.

    `transport` replaces the network (tests pass an httpx.MockTransport). The timeout is long:
    a first sync of 100k consumers takes tens of seconds on the control plane.
    """

    def __init__(
        self,
        admin_url: str,
        admin_token: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._has_token = bool(admin_token)
        headers = {TOKEN_HEADER: admin_token} if admin_token else {}
        self._http = httpx.Client(
            base_url=self.admin_url, headers=headers, transport=transport, timeout=timeout
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def apply(self, document: Mapping[str, Any], *, dry_run: bool) -> ConfigResult:
        """Send the whole document; with `dry_run` the control plane only reports the changes."""
        params = {"dry_run": "true"} if dry_run else {}
        body = self._request("POST", "/config", params=params, json=dict(document))
        return _config_result(body)

    def export(self, select_tags: Sequence[str] = (), *, sanitize: bool = False) -> dict[str, Any]:
        """The control plane's config as a decK document (`GET /config`)."""
        params: dict[str, str] = {}
        if select_tags:
            params["select_tags"] = ",".join(select_tags)
        if sanitize:
            params["sanitize"] = "true"
        return self._request("GET", "/config", params=params)

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise DeckError(
                f"cannot reach the Admin API at {self.admin_url}: {str(exc) or type(exc).__name__}"
            ) from exc
        if response.status_code == 401:
            if self._has_token:
                raise DeckError("the Admin API refused the admin token (set LOCKGATE_ADMIN_TOKEN)")
            raise DeckError(
                "the Admin API requires an admin token (set LOCKGATE_ADMIN_TOKEN or --admin-token)"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                raise DeckError(body["message"])
            raise DeckError(
                f"the Admin API answered {method} {path} with "
                f"{response.status_code} {response.reason_phrase}"
            )
        if not isinstance(body, dict):
            raise DeckError(f"unexpected answer from {method} {path}: not a JSON object")
        return body


def _body(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _changes(value: object) -> tuple[Change, ...]:
    if not isinstance(value, list):
        return ()
    changes = []
    for item in value:
        if not isinstance(item, dict):
            continue
        raw = item.get("body")
        body: dict[str, Any] = raw if isinstance(raw, dict) else {}
        changes.append(
            Change(
                str(item.get("kind", "entity")),
                str(item.get("name", "")),
                _body(body.get("old")),
                _body(body.get("new")),
            )
        )
    return tuple(changes)


def _count(summary: Mapping[str, Any], key: str, default: int) -> int:
    value = summary.get(key)
    return value if isinstance(value, int) else default


def _config_result(body: Mapping[str, Any]) -> ConfigResult:
    changes = body.get("changes")
    summary = body.get("summary")
    if not isinstance(changes, dict):
        raise DeckError("unexpected answer from POST /config: no 'changes'")
    summary = summary if isinstance(summary, dict) else {}
    creating = _changes(changes.get("creating"))
    updating = _changes(changes.get("updating"))
    deleting = _changes(changes.get("deleting"))
    return ConfigResult(
        creating,
        updating,
        deleting,
        _count(summary, "created", len(creating)),
        _count(summary, "updated", len(updating)),
        _count(summary, "deleted", len(deleting)),
        body,
    )
