"""decK-style text for what `sync` did or `diff` would do, and the `--json-output` body.

Text: `creating <kind> <name>`, then `updating <kind> <name>` followed by a unified JSON diff
of the entity (old vs new, every field as context, changed lines marked `-`/`+`), then
`deleting <kind> <name>`, then the `Summary:` block. Values substituted from `DECK_`
environment variables are shown as `[masked]` unless masking is turned off.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from lockgate.deck.client import Change, ConfigResult

MASK = "[masked]"


def _forms(secret: str) -> list[str]:
    """The secret as written and as it appears inside a JSON string (escaped)."""
    escaped = json.dumps(secret)[1:-1]
    return [secret] if escaped == secret else [secret, escaped]


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every substituted env value in `text` by `[masked]`, as decK does in diffs.

    Longer values first, so a value that contains a shorter one is masked whole.
    """
    forms = [form for secret in secrets if secret for form in _forms(secret)]
    for form in sorted(set(forms), key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def mask_value(value: Any, secrets: Iterable[str]) -> Any:
    """`value` (decoded JSON) with env values masked inside every string."""
    secrets = tuple(secrets)
    if not secrets:
        return value
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, list):
        return [mask_value(item, secrets) for item in value]
    if isinstance(value, Mapping):
        return {mask(str(k), secrets): mask_value(v, secrets) for k, v in value.items()}
    return value


def json_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """A unified diff of two JSON bodies with the whole body as context, decK's layout:
    unchanged lines start with a space, removed with `-`, added with `+`."""
    before = json.dumps(old or {}, indent=2, sort_keys=True).splitlines()
    after = json.dumps(new or {}, indent=2, sort_keys=True).splitlines()
    context = max(len(before), len(after))
    lines = list(difflib.unified_diff(before, after, n=context, lineterm=""))
    # Drop the `---`/`+++` file headers and the `@@` hunk header: one hunk covers everything.
    return [line for line in lines[2:] if not line.startswith("@@")]


def _update(change: Change, secrets: tuple[str, ...]) -> list[str]:
    head = f"updating {change.kind} {change.name}".rstrip()
    if change.old is None and change.new is None:
        return [mask(head, secrets)]
    return [mask(line, secrets) for line in [head, *json_diff(change.old, change.new)]]


def render(result: ConfigResult, secrets: Iterable[str] = ()) -> str:
    """The text report; `secrets` are the env values to mask (empty: no masking)."""
    secrets = tuple(secrets)
    lines = [mask(f"creating {c.kind} {c.name}".rstrip(), secrets) for c in result.creating]
    for change in result.updating:
        lines += _update(change, secrets)
    lines += [mask(f"deleting {c.kind} {c.name}".rstrip(), secrets) for c in result.deleting]
    lines += [
        "Summary:",
        f"  Created: {result.created}",
        f"  Updated: {result.updated}",
        f"  Deleted: {result.deleted}",
    ]
    return "\n".join(lines) + "\n"


def render_json(result: ConfigResult, secrets: Iterable[str] = ()) -> str:
    """decK's `--json-output` object: `changes` (`creating`/`updating`/`deleting` lists of
    `{kind, name}`, updates with `body: {old, new}`), `summary` (`creating`, `updating`,
    `deleting`, `total` counts), `warnings` and `errors`; env values masked."""
    changes = mask_value(dict(result.raw).get("changes", {}), secrets)
    summary = {
        "creating": result.created,
        "updating": result.updated,
        "deleting": result.deleted,
        "total": result.created + result.updated + result.deleted,
    }
    out = {"changes": changes, "summary": summary, "warnings": [], "errors": []}
    return json.dumps(out, indent=2) + "\n"
