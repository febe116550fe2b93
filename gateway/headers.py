"""A case-insensitive, ordered, multi-valued header collection.

Names keep the case they were first given (what goes on the wire); lookups ignore case.
Kong's `_`/`-` equivalence is applied by the PDK and key-auth, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    """Mutable HTTP headers: ordered (name, value) pairs with case-insensitive lookup."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self._items if key.lower() == lname]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self._items)

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` with one value (kept at the first one's position)."""
        lname = name.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for key, old in self._items:
            if key.lower() == lname:
                if not placed:
                    out.append((name, value))
                    placed = True
            else:
                out.append((key, old))
        if not placed:
            out.append((name, value))
        self._items = out

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        """Remove every value of `name`; no error if absent."""
        lname = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lname]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def names(self) -> list[str]:
        """Distinct lower-cased names, in first-seen order."""
        seen: dict[str, None] = {}
        for key, _ in self._items:
            seen.setdefault(key.lower(), None)
        return list(seen)

    def copy(self) -> Headers:
        return Headers(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
