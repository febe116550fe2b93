"""decK's `${{ env "DECK_NAME" }}` templates in string values.

Substitution runs on parsed values, not on the raw file text, so a value containing quotes,
colons or newlines cannot change the document's structure. A substituted string stays a string.
Only `DECK_`-prefixed variables may be used, as in decK; the caller passes just those in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lockgate.deck.errors import DeckError

ENV_PREFIX = "DECK_"

_TEMPLATE = re.compile(r"\$\{\{\s*env\s+\"([^\"]*)\"\s*\}\}")
_ANY_TEMPLATE = re.compile(r"\$\{\{.*?\}\}")


class EnvSubstitution:
    """Replaces templates using `env` (the `DECK_` variables) and remembers the values used.

    `used_values` lets callers mask secrets in anything they print, as decK does in diffs.
    Problems are collected (each once, in order) rather than raised one at a time, so a user
    sees every missing variable in one run; call `check()` once all files are substituted.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.used_values: set[str] = set()
        self._errors: dict[str, None] = {}

    def check(self) -> None:
        """Raise DeckError listing every problem met so far, if any."""
        if self._errors:
            raise DeckError(*self._errors)

    def apply(self, value: Any, source: str) -> Any:
        """Return `value` with every string template replaced; lists and mappings are walked.

        Records an error naming the variable and `source` (the file) for a variable that is not
        set, a name without the `DECK_` prefix, or a `${{ ... }}` that is not an env template;
        the template is then replaced by an empty string (never sent: `check()` raises first).
        """
        if isinstance(value, str):
            return self._string(value, source)
        if isinstance(value, list):
            return [self.apply(item, source) for item in value]
        if isinstance(value, dict):
            return {key: self.apply(item, source) for key, item in value.items()}
        return value

    def _string(self, text: str, source: str) -> str:
        if "${{" not in text:
            return text
        errors = self._errors

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if not name.startswith(ENV_PREFIX):
                errors.setdefault(
                    f"environment variable {name} is not allowed: only {ENV_PREFIX}-prefixed "
                    f"variables can be used (used in {source})"
                )
                return ""
            if name not in self._env:
                errors.setdefault(f"environment variable {name} is not set (used in {source})")
                return ""
            self.used_values.add(self._env[name])
            return self._env[name]

        result = _TEMPLATE.sub(replace, text)
        for leftover in _ANY_TEMPLATE.findall(_TEMPLATE.sub("", text)):
            errors.setdefault(
                f"unsupported template {leftover} in {source}: only "
                '${{ env "DECK_NAME" }} is supported'
            )
        return result
