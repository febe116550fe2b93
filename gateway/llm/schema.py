"""Config records of one LLM target (Kong's ai-proxy config, the `targets[]` of ai-proxy-advanced).

Field names, defaults, bounds and entity-check messages follow Kong 3.12's schema. Fields Kong
has but Lockgate does not implement are either accepted when they cannot change behaviour for
the implemented providers (provider-specific options of other providers), or rejected with a
clear error when leaving them unimplemented would silently change what goes upstream (cloud
identity credentials, unsupported providers, `$(...)` templates).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway.llm.providers import KNOWN_PROVIDERS, SUPPORTED_PROVIDERS, driver_for

RouteType = Literal["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings", "preserve"]

# Kong's UNSUPPORTED_LOG_STATISTICS: (route_type, provider) pairs without usage reports.
_NO_STATISTICS = {("llm/v1/completions", "anthropic")}
_SELF_HOSTED = ("llama2", "ollama")
# Cloud instance-metadata services live on link-local addresses (169.254.169.254, fd00:ec2::254
# aside); a target there would hand the gateway's own cloud credentials to whoever can write
# plugin config. IPv4 169.254.0.0/16 and IPv6 fe80::/10, also as IPv4-mapped IPv6.
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_link_local_allowed = False


def allow_link_local_upstreams(allowed: bool) -> None:
    """Set once at start from LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS (off: such targets refused)."""
    global _link_local_allowed
    _link_local_allowed = allowed


def link_local_upstreams_allowed() -> bool:
    return _link_local_allowed


def _only(field: str, supported: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value != supported:
            raise ValueError(f"{field} '{value}' is not supported by Lockgate yet")
        return value

    return check


# Kong's ai-proxy(-advanced) `llm_format` and `genai_category`: only these values are served.
LlmFormat = Annotated[str, AfterValidator(_only("llm_format", "openai"))]
GenaiCategory = Annotated[str, AfterValidator(_only("genai_category", "text/generation"))]


class Record(BaseModel):
    """A Kong config record: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_template(value: str | None, field: str) -> str | None:
    # Kong substitutes $(headers.x)/$(uri_captures.x)/$(query_params.x) in string options.
    # Lockgate does not, and forwarding the literal text would send requests somewhere unexpected.
    if value is not None and "$(" in value:
        raise ValueError(f"'{field}': $(...) template expressions are not supported by Lockgate")
    return value


def _is_link_local(host: str) -> bool:
    # Literal addresses only: names are resolved at request time, where DNS may answer anything.
    literal = host.split("%", 1)[0].rstrip(".")  # drop an IPv6 zone id, a root-label dot
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        try:  # the C resolver also reads 2852039166, 0251.0376.0251.0376, 169.254.43518
            address = ipaddress.IPv4Address(socket.inet_aton(literal))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _LINK_LOCAL)


REFERENCEABLE_AUTH = ("header_name", "header_value", "param_name", "param_value")
"""The `auth` fields Kong marks referenceable that Lockgate uses (gateway/vault.py)."""


class Auth(Record):
    """How the gateway authenticates to the provider (Kong `auth` record)."""

    header_name: str | None = None
    header_value: str | None = Field(default=None, json_schema_extra={"writeOnly": True})
    param_name: str | None = None
    param_value: str | None = Field(default=None, json_schema_extra={"writeOnly": True})
    param_location: Literal["query", "body"] | None = None
    allow_override: bool = False
    """If true, a value the client sent for the same header/parameter is kept."""
    # Cloud identity (GCP, AWS, Azure): only the defaults are accepted, see `_cloud_identity`.
    gcp_use_service_account: bool = False
    gcp_service_account_json: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    azure_use_managed_identity: bool = False
    azure_client_id: str | None = None
    azure_client_secret: str | None = None
    azure_tenant_id: str | None = None

    @model_validator(mode="after")
    def _cloud_identity(self) -> Auth:
        # These sign requests (GCP OAuth, AWS SigV4, Entra ID); Lockgate does not implement the
        # signing, so a set value would be ignored and the request sent unauthenticated.
        unsupported = (
            "gcp_use_service_account",
            "gcp_service_account_json",
            "aws_access_key_id",
            "aws_secret_access_key",
            "azure_use_managed_identity",
            "azure_client_id",
            "azure_client_secret",
            "azure_tenant_id",
        )
        for name in unsupported:
            if getattr(self, name) not in (None, False):
                raise ValueError(f"'auth.{name}' is not supported by Lockgate yet")
        return self

    @property
    def uses_header(self) -> bool:
        return self.header_name is not None and self.header_value is not None

    @property
    def uses_param(self) -> bool:
        return self.param_name is not None and self.param_value is not None


class ModelOptions(Record):
    """Kong `model.options`. Options of a provider other than the target's are stored and
    ignored, as in Kong."""

    max_tokens: int | None = None
    input_cost: float | None = Field(default=None, gt=0)
    """Cost per 1M prompt tokens."""
    output_cost: float | None = Field(default=None, gt=0)
    """Cost per 1M completion tokens."""
    temperature: float | None = Field(default=None, ge=0, le=5)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=500)
    upstream_url: str | None = None
    upstream_path: str | None = None
    """Deprecated in Kong: the path on the provider's default host, or the preserve-mode path."""
    anthropic_version: str | None = None
    azure_instance: str | None = None
    azure_api_version: str | None = "2023-05-15"
    azure_deployment_id: str | None = None
    llama2_format: Literal["raw", "openai", "ollama"] | None = None
    mistral_format: Literal["openai", "ollama"] | None = None
    embeddings_dimensions: int | None = None
    bedrock: dict[str, Any] | None = None
    gemini: dict[str, Any] | None = None
    huggingface: dict[str, Any] | None = None
    cohere: dict[str, Any] | None = None

    @field_validator("upstream_url")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        _no_template(value, "model.options.upstream_url")
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("'model.options.upstream_url' must be an http(s) URL with a host")
        try:
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError as exc:
            raise ValueError("'model.options.upstream_url' has an invalid port") from exc
        if not _link_local_allowed and _is_link_local(parts.hostname):
            raise ValueError(
                f"'model.options.upstream_url' points at the link-local address "
                f"{parts.hostname} (169.254.0.0/16, fe80::/10: cloud metadata services); "
                "refused (set LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS=on to allow)"
            )
        return value

    @field_validator("upstream_path")
    @classmethod
    def _upstream_path(cls, value: str | None) -> str | None:
        return _no_template(value, "model.options.upstream_path")


class Model(Record):
    provider: str = Field(json_schema_extra={"enum": list(SUPPORTED_PROVIDERS)})
    name: str | None = None
    """The model to run; when unset, the client's body `model` is used."""
    options: ModelOptions = Field(default_factory=ModelOptions)

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        if value in SUPPORTED_PROVIDERS:
            return value
        supported = ", ".join(SUPPORTED_PROVIDERS)
        if value in KNOWN_PROVIDERS:
            raise ValueError(
                f"provider '{value}' is not supported by Lockgate yet (supported: {supported})"
            )
        raise ValueError(f"expected one of: {supported}")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _no_template(value, "model.name")


class Logging(Record):
    log_statistics: bool = False
    """Write `ai.proxy.meta` / `ai.proxy.usage` log fields."""
    log_payloads: bool = False
    """Write `ai.proxy.payload.request` / `ai.proxy.payload.response` log fields."""


class Target(Record):
    """One LLM target: a complete ai-proxy configuration plus its balancer weight."""

    route_type: RouteType
    auth: Auth | None = None
    model: Model
    logging: Logging = Field(default_factory=Logging)
    weight: int = Field(default=100, ge=1, le=65535)
    description: str | None = None

    @model_validator(mode="after")
    def _auth_fields(self) -> Target:
        auth = self.auth
        if auth is None:
            return self
        header = (auth.header_name, auth.header_value)
        if any(v is not None for v in header) and not all(v is not None for v in header):
            raise ValueError(
                "all or none of these fields must be set: 'auth.header_name', 'auth.header_value'"
            )
        param = (auth.param_name, auth.param_value, auth.param_location)
        if any(v is not None for v in param) and not all(v is not None for v in param):
            raise ValueError(
                "all or none of these fields must be set: 'auth.param_name', "
                "'auth.param_value', 'auth.param_location'"
            )
        return self

    @model_validator(mode="after")
    def _provider_options(self) -> Target:
        # Kong's entity checks, in Kong's order and with Kong's messages.
        provider, options = self.model.provider, self.model.options
        required = {
            "llama2": ("llama2_format",),
            "mistral": ("mistral_format",),
            "anthropic": ("anthropic_version",),
            "azure": ("azure_instance", "azure_api_version", "azure_deployment_id"),
        }
        for name in required.get(provider, ()):
            if getattr(options, name) is None:
                raise ValueError(f"must set 'model.options.{name}' for {provider} provider")
        if provider in _SELF_HOSTED and options.upstream_url is None:
            raise ValueError(
                "must set 'model.options.upstream_url' for self-hosted providers/models"
            )
        if self.logging.log_statistics and (self.route_type, provider) in _NO_STATISTICS:
            raise ValueError(
                f"{provider} does not support statistics when route_type is {self.route_type}"
            )
        if self.route_type not in driver_for(provider, options).route_types:
            raise ValueError(
                f"route_type '{self.route_type}' is not supported for provider '{provider}' "
                "by Lockgate yet"
            )
        return self


Algorithm = Literal[
    "round-robin",
    "consistent-hashing",
    "lowest-latency",
    "lowest-usage",
    "priority",
    "least-connections",
    "semantic",
]
FailoverCriterion = Literal[
    "error",
    "timeout",
    "invalid_header",
    "http_403",
    "http_404",
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "non_idempotent",
]


def _default_failover() -> list[FailoverCriterion]:
    return ["error", "timeout"]


class Balancer(Record):
    """Kong `balancer` (3.13 fields included). Every algorithm but `semantic` is implemented
    (gateway/llm/balancer.py); `max_fails` > 0 turns the circuit breaker on."""

    algorithm: Algorithm = "round-robin"
    retries: int = Field(default=5, ge=0, le=32767)
    failover_criteria: list[FailoverCriterion] = Field(default_factory=_default_failover)
    connect_timeout: int = Field(default=60000, ge=1, le=2147483646)
    read_timeout: int = Field(default=60000, ge=1, le=2147483646)
    write_timeout: int = Field(default=60000, ge=1, le=2147483646)
    tokens_count_strategy: Literal[
        "total-tokens", "prompt-tokens", "completion-tokens", "cost", "llm-accuracy"
    ] = "total-tokens"
    latency_strategy: Literal["tpot", "e2e"] = "tpot"
    hash_on_header: str = "X-Kong-LLM-Request-ID"
    slots: int = Field(default=10000, ge=10, le=65536)
    max_fails: int = Field(default=0, ge=0, le=32767)
    fail_timeout: int = Field(default=10000, ge=1, le=2147483646)

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        if value == "semantic":
            raise ValueError(
                "balancer algorithm 'semantic' is not supported by Lockgate yet (it needs "
                "embeddings and a vector database)"
            )
        return value
