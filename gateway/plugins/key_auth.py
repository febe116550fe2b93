"""key-auth: Kong's Key Authentication plugin (priority 1250, `kong/plugins/key-auth`).

Behaviour follows Kong 3.10+ (reference/kong-plugins.md §1), with these Lockgate choices:

- `hide_credentials` defaults to true, as in Kong Enterprise 3.14+.
- A key that cannot be checked because every credential backend is down gets
  `503 Unable to verify the API key right now; try again`, in both the plain and the anonymous
  flow: a key that can't be checked is not called invalid, and is not downgraded to anonymous
  (Kong raises there, answering 500).
- Header names match with `_`/`-` equivalence in both directions (see `key_locations`), for the
  key and for the consumer headers cleared before upstream, so a client can't smuggle a spoofed
  `X_Consumer_ID` past an upstream that folds `_` into `-`.
- With `hide_credentials` and `key_in_body`, the body is rewritten only when it holds the key
  name (Kong re-encodes it even when it doesn't, which changes nothing a upstream can read).
- Lookups go by the key's SHA-256 (`hash_key`); a key that is not valid UTF-8 can't match any
  stored key and gets 401 Unauthorized without a lookup.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from gateway.context import ConsumerInfo, CredentialInfo, Exit, RequestContext
from gateway.credentials import CredentialLookup, CredentialLookupError, hash_key
from gateway.entities import Consumer
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig
from gateway.plugins.key_locations import (
    DUPLICATE,
    ParsedBody,
    arg_value,
    header_value,
    normalize_header_name,
    parse_body,
    remove_headers,
    without_arg,
)
from gateway.responses import error

log = logging.getLogger(__name__)

_HEADER_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

NO_KEY = "No API key found in request"
DUPLICATE_KEY = "Duplicate API key found"
UNAUTHORIZED = "Unauthorized"
UNAVAILABLE = "Unable to verify the API key right now; try again"

CONSUMER_ID = "X-Consumer-ID"
CONSUMER_CUSTOM_ID = "X-Consumer-Custom-ID"
CONSUMER_USERNAME = "X-Consumer-Username"
CREDENTIAL_IDENTIFIER = "X-Credential-Identifier"
ANONYMOUS = "X-Anonymous-Consumer"
_CONSUMER_HEADERS = frozenset(
    normalize_header_name(h)
    for h in (CONSUMER_ID, CONSUMER_CUSTOM_ID, CONSUMER_USERNAME, CREDENTIAL_IDENTIFIER, ANONYMOUS)
)


class KeyAuthConfig(PluginConfig):
    """Kong's key-auth `config` (identity_realms and principals, Konnect/EE-only, are left out)."""

    key_names: list[str] = Field(default_factory=lambda: ["apikey"])
    hide_credentials: bool = True
    anonymous: str | None = Field(default=None, min_length=1)
    key_in_header: bool = True
    key_in_query: bool = True
    key_in_body: bool = False
    run_on_preflight: bool = True
    realm: str | None = Field(default=None, min_length=1)

    @field_validator("key_names")
    @classmethod
    def _header_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name or not _HEADER_NAME_CHARS.issuperset(name):
                raise PydanticCustomError(
                    "header_name",
                    "bad header name '{name}', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
                    {"name": name},
                )
        return names


class KeyAuthHandler(Handler):
    """One compiled key-auth instance; `access` is Kong's handler, see the module doc."""

    __slots__ = (
        "_anonymous",
        "_anonymous_ref",
        "_config",
        "_credentials",
        "_names",
        "_www_authenticate",
    )

    def __init__(
        self,
        config: KeyAuthConfig,
        credentials: CredentialLookup,
        anonymous: ConsumerInfo | None,
    ) -> None:
        self._config = config
        self._credentials = credentials
        self._anonymous = anonymous
        self._anonymous_ref = config.anonymous
        self._names = tuple(
            (name, normalize_header_name(name), frozenset((normalize_header_name(name),)))
            for name in config.key_names
        )
        realm = config.realm
        www = "Key" if realm is None else f'Key realm="{realm}"'
        self._www_authenticate = (("WWW-Authenticate", www),)

    async def access(self, ctx: RequestContext) -> Exit | None:
        if not self._config.run_on_preflight and ctx.request.method == "OPTIONS":
            return None
        if self._anonymous_ref is not None and ctx.credential is not None:
            return None  # logical OR: a higher-priority auth plugin already authenticated
        try:
            failure = await self._authenticate(ctx)
        except CredentialLookupError as exc:
            log.warning("key-auth: credential lookup failed: %s", exc)
            return error(ctx, 503, UNAVAILABLE)
        if failure is None:
            return None
        if self._anonymous_ref is None:
            return error(ctx, 401, failure, self._www_authenticate)
        if self._anonymous is None:
            message = f"anonymous consumer {self._anonymous_ref} is configured but doesn't exist"
            return error(ctx, 500, message)
        _set_consumer(ctx, self._anonymous, None)
        return None

    async def _authenticate(self, ctx: RequestContext) -> str | None:
        """Kong's do_authentication: None on success, else the 401 message.

        Raises CredentialLookupError when the key cannot be checked.
        """
        config = self._config
        headers = ctx.request.headers
        body: ParsedBody | None = None
        body_parsed = False
        key: str | None = None
        for name, normalized, header_names in self._names:
            value = header_value(headers, normalized) if config.key_in_header else None
            if value is None and config.key_in_query:
                # the live query: what the client sent, as changed by earlier plugins
                value = arg_value(ctx.upstream.query, name)
            if value is None and config.key_in_body:
                if not body_parsed:
                    body, body_parsed = _parse_body(ctx), True
                value = None if body is None else body.value(name)
            if isinstance(value, str):
                key = value
                if config.hide_credentials:
                    ctx.upstream.query = without_arg(ctx.upstream.query, name)
                    remove_headers(headers, header_names)
                    if config.key_in_body:
                        if not body_parsed:
                            body, body_parsed = _parse_body(ctx), True
                        rewritten = None if body is None else body.without(name)
                        if rewritten is not None:
                            ctx.upstream.body = rewritten
                break
            if value is DUPLICATE:
                return DUPLICATE_KEY
            # present but not a string (`?apikey`, a JSON number): try the next key name

        if not key:
            return NO_KEY
        try:
            key_hash = hash_key(key)
        except UnicodeEncodeError:
            return UNAUTHORIZED  # not valid UTF-8: no stored key can match it
        match = await self._credentials.lookup(key_hash)
        # the lookup chain drops expired credentials; checked again so a stale cache can't pass
        if match is None or match.expired():
            return UNAUTHORIZED
        _set_consumer(ctx, match.consumer, match.credential)
        return None


def _parse_body(ctx: RequestContext) -> ParsedBody | None:
    # like kong.request.get_body after kong.service.request.set_body: an earlier rewrite wins
    raw = ctx.upstream.body if ctx.upstream.body is not None else ctx.request.body
    return parse_body(ctx.request.headers.get("content-type"), raw)


def _set_consumer(
    ctx: RequestContext, consumer: ConsumerInfo, credential: CredentialInfo | None
) -> None:
    """Kong's set_consumer: authenticate, then the upstream consumer headers.

    Every spelling of each header is removed first, so what reaches upstream is ours alone.
    """
    ctx.consumer = consumer
    ctx.credential = credential
    headers = ctx.request.headers
    remove_headers(headers, _CONSUMER_HEADERS)
    added = [(CONSUMER_ID, consumer.id)]
    if consumer.custom_id is not None:
        added.append((CONSUMER_CUSTOM_ID, consumer.custom_id))
    if consumer.username is not None:
        added.append((CONSUMER_USERNAME, consumer.username))
    if credential is not None:
        added.append((CREDENTIAL_IDENTIFIER, credential.id))
    else:
        added.append((ANONYMOUS, "true"))
    headers.extend(added)


def find_consumer(consumers: tuple[Consumer, ...], ref: str) -> ConsumerInfo | None:
    """The consumer `ref` names, by id first and then by username (kong.client.load_consumer)."""
    for by_id in (True, False):
        for consumer in consumers:
            if (consumer.id if by_id else consumer.username) == ref:
                return ConsumerInfo(consumer.id, consumer.username, consumer.custom_id)
    return None


class KeyAuthPlugin(Plugin[KeyAuthConfig]):
    name: ClassVar[str] = "key-auth"
    priority: ClassVar[int] = 1250
    config_model: ClassVar[type[PluginConfig]] = KeyAuthConfig
    allows_consumer_scope: ClassVar[bool] = False

    def build(self, config: KeyAuthConfig, deps: BuildContext) -> Handler:
        """A handler for one instance: names, WWW-Authenticate value and the anonymous consumer
        are resolved here, once per snapshot. A missing anonymous consumer is not a build error:
        as in Kong, it surfaces as a 500 on the first request that fails authentication."""
        anonymous = None
        if config.anonymous is not None:
            anonymous = find_consumer(deps.snapshot.consumers, config.anonymous)
        return KeyAuthHandler(config, deps.credentials, anonymous)


PLUGIN = KeyAuthPlugin()
