"""A case-insensitive, ordered, multi-valued header collection.

Names keep the case they were first given (what goes on the wire); lookups ignore case.
Kong's `_`/`-` equivalence is applied by the PDK and key-auth, not here.

Cost model: each entry's lower-cased name is computed once, on the first lookup, and then kept
next to it, so lookups are C-level list searches rather than a `str.lower()` per entry per
lookup; a collection that is only built and iterated (most response heads) never computes them.
A `set` of a name present once replaces it in place; only removals shift entries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet


class Headers:
    """Mutable HTTP headers: ordered (name, value) pairs with case-insensitive lookup."""

    __slots__ = ("_items", "_keys")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items) if items else []
        self._keys: list[str] | None = None
        """`_keys[i]` is `_items[i][0].lower()`; None until the first lookup needs it."""

    @classmethod
    def from_lowered(cls, items: list[tuple[str, str]]) -> Headers:
        """Headers of `items` (taken, not copied) whose names are all lower-case already (as
        a server gives request names): their index is the names themselves, not lowered again."""
        return cls.indexed(items, [name for name, _ in items])

    @classmethod
    def indexed(cls, items: list[tuple[str, str]], lower_names: list[str]) -> Headers:
        """Headers of `items` (taken, not copied) whose lower-cased names the caller already
        has (`lower_names[i]` is `items[i][0].lower()`, also taken), as when it filtered them."""
        out = cls.__new__(cls)
        out._items = items
        out._keys = lower_names
        return out

    def _index(self) -> list[str]:
        keys = self._keys
        if keys is None:
            keys = self._keys = [key.lower() for key, _ in self._items]
        return keys

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        lname = name.lower()
        keys = self._keys
        if keys is None:
            keys = self._index()
        if lname in keys:
            return self._items[keys.index(lname)][1]
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        keys = self._index()
        if lname not in keys:
            return []
        return [item[1] for key, item in zip(keys, self._items, strict=True) if key == lname]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        keys = self._keys
        if keys is None:
            keys = self._index()
        return name.lower() in keys

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` with one value (kept at the first one's position)."""
        lname = name.lower()
        keys = self._keys
        if keys is None:
            keys = self._index()
        if lname not in keys:
            self._items.append((name, value))
            keys.append(lname)
            return
        first = keys.index(lname)
        items = self._items
        items[first] = (name, value)
        for _ in range(keys.count(lname) - 1):  # the later values of the name go
            at = keys.index(lname, first + 1)
            del keys[at]
            del items[at]

    def set_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`set` of each pair in turn."""
        for name, value in pairs:
            self.set(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        if self._keys is not None:
            self._keys.append(name.lower())

    def extend(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`add` of each pair, in order."""
        if not isinstance(pairs, list | tuple):
            pairs = list(pairs)
        self._items.extend(pairs)
        if self._keys is not None:
            self._keys.extend([name.lower() for name, _ in pairs])

    def remove(self, name: str) -> None:
        """Remove every value of `name`; no error if absent."""
        lname = name.lower()
        keys = self._keys
        if keys is None:
            keys = self._index()
        items = self._items
        while lname in keys:
            at = keys.index(lname)
            del keys[at]
            del items[at]

    def remove_many(self, names: Iterable[str]) -> None:
        """Remove every value of each of `names` (any case) in one pass; absent names are fine."""
        self.remove_lowered({name.lower() for name in names})

    def remove_lowered(self, lnames: AbstractSet[str]) -> None:
        """`remove_many` for names already lower-cased (a module's constant set, say)."""
        keys = self._keys
        if keys is None:
            keys = self._index()
        if not lnames.isdisjoint(keys):
            self._drop(lnames)

    def items_except(self, lnames: Collection[str]) -> list[tuple[str, str]]:
        """The entries whose lower-cased name is not in `lnames` (names already lower-cased)."""
        keys = self._keys
        if keys is None:
            keys = self._index()
        return [item for key, item in zip(keys, self._items, strict=True) if key not in lnames]

    def _drop(self, lnames: Collection[str]) -> None:
        """Remove the entries whose lower-cased name is in `lnames`."""
        keys = self._index()
        items = self._items
        if len(lnames) <= 4:  # a few names: C-level searches beat a Python-level pass
            for lname in lnames:
                for _ in range(keys.count(lname)):
                    at = keys.index(lname)
                    del keys[at]
                    del items[at]
            return
        doomed = [at for at, key in enumerate(keys) if key in lnames]
        for at in reversed(doomed):
            del keys[at]
            del items[at]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def encoded(self) -> list[tuple[bytes, bytes]]:
        """The entries as latin-1 bytes pairs (what an ASGI message carries), in order."""
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in self._items]

    def lower_names(self) -> Sequence[str]:
        """Each entry's lower-cased name, in order (parallel to `items()`; repeats kept).

        A live view, not a copy: read it before changing these headers, don't keep it."""
        return self._index()

    def names(self) -> list[str]:
        """Distinct lower-cased names, in first-seen order."""
        return list(dict.fromkeys(self._index()))

    def copy(self) -> Headers:
        out = Headers(self._items)
        if self._keys is not None:
            out._keys = list(self._keys)
        return out

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
