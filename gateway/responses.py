"""Kong's generated responses: `kong.response.error` bodies and `kong.response.exit` encoding."""

from __future__ import annotations

import json

from gateway.context import Exit, RequestContext

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

_REASONS = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request Entity Too Large",
    429: "Too many requests",
    500: "An unexpected error occurred",
    502: "An invalid response was received from the upstream server",
    503: "The upstream server is currently unavailable",
    504: "The upstream server is timing out",
}


def default_message(status: int) -> str:
    return _REASONS.get(status, "The upstream server responded with " + str(status))


def error(
    ctx: RequestContext,
    status: int,
    message: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Exit:
    """kong.response.error: Kong's templated error body, formatted by the client's Accept header.

    JSON (the default) is Kong's exact template, newlines included; text/plain is supported too.
    """
    text = message if message is not None else default_message(status)
    accept = (ctx.request.headers.get("accept") or "").lower()
    if _prefers_text(accept):
        body = f"{text}\nrequest_id: {ctx.request_id}\n".encode()
        content_type = "text/plain; charset=utf-8"
    else:
        body = (
            "{\n"
            f'  "message":{json.dumps(text, ensure_ascii=False)},\n'
            f'  "request_id":"{ctx.request_id}"\n'
            "}"
        ).encode()
        content_type = JSON_CONTENT_TYPE
    return Exit(status, body, (("Content-Type", content_type), *headers))


def exit_json(status: int, body: object, headers: tuple[tuple[str, str], ...] = ()) -> Exit:
    """kong.response.exit with a table body: JSON-encoded, no request id added."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Exit(status, data, (("Content-Type", JSON_CONTENT_TYPE), *headers))


def _prefers_text(accept: str) -> bool:
    if not accept or "json" in accept.split(",")[0]:
        return False
    first = accept.split(",")[0].split(";")[0].strip()
    return first == "text/plain"
