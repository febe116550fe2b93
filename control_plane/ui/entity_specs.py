"""The entity pages: which Admin API kind each manages, its form fields and list columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from control_plane.admin.kinds import CONSUMERS, ROUTES, SERVICES, Kind
from control_plane.ui.fields import Field

Row = Mapping[str, Any]


def service_url(service: Row) -> str:
    """A stored service's target as Kong's `url` shorthand."""
    port = service.get("port")
    protocol = service.get("protocol", "http")
    default = {"http": 80, "https": 443}.get(protocol)
    netloc = service.get("host", "") + ("" if port == default else f":{port}")
    return f"{protocol}://{netloc}{service.get('path') or ''}"


def _joined(name: str) -> Callable[[Row], str]:
    return lambda row: ", ".join(str(v) for v in row.get(name) or ()) or "-"


def _plain(name: str) -> Callable[[Row], str]:
    return lambda row: "-" if row.get(name) is None else str(row[name])


@dataclass(frozen=True, slots=True)
class EntitySpec:
    kind: Kind
    path: str
    """The UI path of the list page, also the Admin API collection it stands for."""
    title: str
    singular: str
    label_field: str
    """The field that names an entity in headings and messages."""
    fields: tuple[Field, ...]
    columns: tuple[tuple[str, Callable[[Row], str]], ...]
    intro: str = ""

    def label(self, row: Row) -> str:
        return str(row.get(self.label_field) or row.get("id", ""))

    def shown(self, row: Row) -> dict[str, Any]:
        values = {f.name: f.shown(row) for f in self.fields}
        if self.kind is SERVICES:
            values["url"] = service_url(row)
        return values


_TAGS = Field("tags", "Tags", "list", "Optional; one per line or comma-separated.")

SERVICE_PAGE = EntitySpec(
    SERVICES,
    "/services",
    "Gateway Services",
    "Gateway Service",
    "name",
    (
        Field("name", "Name", required=True, placeholder="example-service"),
        Field(
            "url",
            "Upstream URL",
            required=True,
            help="Where requests go, e.g. https://api.openai.com",
            placeholder="https://api.example.com",
        ),
        Field("retries", "Retries", "number", "Default 5."),
        Field("read_timeout", "Read timeout (ms)", "number", "Default 60000."),
        Field("enabled", "Enabled", "bool"),
        _TAGS,
    ),
    (
        ("Name", _plain("name")),
        ("URL", service_url),
        ("Enabled", _plain("enabled")),
        ("Tags", _joined("tags")),
    ),
    "A Gateway Service is an upstream API or model endpoint that routes send traffic to.",
)

ROUTE_PAGE = EntitySpec(
    ROUTES,
    "/routes",
    "Routes",
    "Route",
    "name",
    (
        Field("name", "Name", required=True, placeholder="example-route"),
        Field("service", "Gateway Service", "ref", "The service this route sends traffic to."),
        Field("paths", "Paths", "list", "One per line, e.g. /anything", placeholder="/anything"),
        Field("methods", "Methods", "list", "Empty: every method. e.g. GET, POST"),
        Field("hosts", "Hosts", "list", "Empty: any host."),
        Field("strip_path", "Strip the matched path", "bool"),
        Field("preserve_host", "Preserve the Host header", "bool"),
        _TAGS,
    ),
    (
        ("Name", _plain("name")),
        ("Paths", _joined("paths")),
        ("Methods", _joined("methods")),
        ("Hosts", _joined("hosts")),
    ),
    "A Route matches requests (by path, method, host) and hands them to a Gateway Service.",
)

CONSUMER_PAGE = EntitySpec(
    CONSUMERS,
    "/consumers",
    "Consumers",
    "Consumer",
    "username",
    (
        Field("username", "Username", required=True, placeholder="openai-client"),
        Field("custom_id", "Custom ID", help="Optional: your own identifier for this consumer."),
        _TAGS,
    ),
    (
        ("Username", _plain("username")),
        ("Custom ID", _plain("custom_id")),
        ("Tags", _joined("tags")),
    ),
    "A Consumer is a client of your APIs; its key-auth credentials identify it.",
)

SPECS = (SERVICE_PAGE, ROUTE_PAGE, CONSUMER_PAGE)
