"""decK-style text for what `sync` did or `diff` would do."""

from __future__ import annotations

from collections.abc import Iterable

from lockgate.deck.client import ConfigResult

MASK = "[masked]"


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every substituted env value in `text` by `[masked]`, as decK does in diffs.

    Longer values first, so a value that contains a shorter one is masked whole.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def render(result: ConfigResult, secrets: Iterable[str] = ()) -> str:
    """`creating <kind> <name>` lines (then updating, deleting), then the summary block."""
    secrets = tuple(secrets)
    lines = [
        mask(f"{verb} {change.kind} {change.name}".rstrip(), secrets)
        for verb, changes in (
            ("creating", result.creating),
            ("updating", result.updating),
            ("deleting", result.deleting),
        )
        for change in changes
    ]
    lines += [
        "Summary:",
        f"  Created: {result.created}",
        f"  Updated: {result.updated}",
        f"  Deleted: {result.deleted}",
    ]
    return "\n".join(lines) + "\n"
