"""Gateway entities in Kong's Admin API shapes (fields, defaults, foreign keys as `{"id": ...}`).

These are the stored and snapshot forms. The control plane validates writes with them; the data
plane compiles snapshots made of them. Key-auth credentials are not part of snapshots.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = re.compile(r"^[\w.\-~]+$", re.UNICODE)
# PCRE's `(?<name>` named group, which Kong users write in regex paths, is `(?P<name>` in
# Python (the router converts it the same way); lookbehinds `(?<=`, `(?<!` are left alone.
PCRE_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")


def new_id() -> str:
    return str(uuid.uuid4())


def now_s() -> int:
    return int(time.time())


class Ref(BaseModel):
    """A foreign key as Kong shows it: `{"id": "<uuid>"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str


class Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=new_id)
    created_at: int = Field(default_factory=now_s)
    updated_at: int = Field(default_factory=now_s)
    tags: list[str] | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str] | None) -> list[str] | None:
        for tag in tags or []:
            if not tag or "," in tag or "/" in tag or not tag.isprintable():
                raise ValueError("invalid tag: printable ASCII except ',' and '/'")
        return tags


def _check_name(name: str | None) -> str | None:
    if name is not None and not NAME_RE.match(name):
        raise ValueError(
            f"invalid value '{name}': the only accepted ascii characters are alphanumerics "
            "or ., -, _, and ~"
        )
    return name


ServiceProtocol = Literal["http", "https", "grpc", "grpcs", "tcp", "tls", "udp", "tls_passthrough"]


class Service(Entity):
    name: str | None = None
    protocol: ServiceProtocol = "http"
    host: str
    port: int = Field(default=80, ge=0, le=65535)
    path: str | None = None
    retries: int = Field(default=5, ge=0, le=32767)
    connect_timeout: int = Field(default=60000, ge=1, le=2147483646)
    write_timeout: int = Field(default=60000, ge=1, le=2147483646)
    read_timeout: int = Field(default=60000, ge=1, le=2147483646)
    enabled: bool = True
    tls_verify: bool | None = None
    tls_verify_depth: int | None = None
    ca_certificates: list[str] | None = None
    client_certificate: Ref | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return _check_name(name)

    @field_validator("path")
    @classmethod
    def _path(cls, path: str | None) -> str | None:
        if path is not None and (not path.startswith("/") or "//" in path):
            raise ValueError("should start with: / (fixed path)")
        return path


class Route(Entity):
    name: str | None = None
    protocols: list[str] = Field(default_factory=lambda: ["http", "https"])
    methods: list[str] | None = None
    hosts: list[str] | None = None
    paths: list[str] | None = None
    headers: dict[str, list[str]] | None = None
    snis: list[str] | None = None
    sources: list[dict[str, Any]] | None = None
    destinations: list[dict[str, Any]] | None = None
    strip_path: bool = True
    preserve_host: bool = False
    regex_priority: int = 0
    path_handling: Literal["v0", "v1"] = "v0"
    https_redirect_status_code: Literal[426, 301, 302, 307, 308] = 426
    request_buffering: bool = True
    response_buffering: bool = True
    service: Ref | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return _check_name(name)

    @field_validator("paths")
    @classmethod
    def _paths(cls, paths: list[str] | None) -> list[str] | None:
        for path in paths or []:
            if path.startswith("~"):
                try:
                    re.compile(PCRE_NAMED_GROUP.sub("(?P<", path[1:]))
                except re.error as exc:
                    raise ValueError(f"invalid regex: '{path[1:]}' ({exc})") from exc
            elif not path.startswith("/"):
                raise ValueError("should start with: / (fixed path) or ~/ (regex path)")
            elif "//" in path:
                raise ValueError("must not have empty segments")
        return paths

    @field_validator("methods")
    @classmethod
    def _methods(cls, methods: list[str] | None) -> list[str] | None:
        for method in methods or []:
            if not method.isalpha() or not method.isupper():
                raise ValueError(f"invalid value '{method}': must be uppercase")
        return methods


class Consumer(Entity):
    username: str | None = None
    custom_id: str | None = None


class KeyAuthCredential(Entity):
    """A stored key-auth credential: the key itself is never stored, only its SHA-256 hex."""

    consumer: Ref
    key_hash: str
    ttl: int | None = None
    expires_at: int | None = None


class Plugin(Entity):
    name: str
    instance_name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    protocols: list[str] = Field(default_factory=lambda: ["grpc", "grpcs", "http", "https"])
    enabled: bool = True
    service: Ref | None = None
    route: Ref | None = None
    consumer: Ref | None = None
    ordering: dict[str, Any] | None = None
