"""Validating decoded snapshot JSON into entities that share what they have in common.

A data plane holds every entity of its snapshot for as long as it runs it (10k routes are 20k
entities). Validated as is, each pydantic entity carries its own `__pydantic_fields_set__`
(a set of every field name, ~2.2 KB for a route: the largest part of one), and every JSON
value is a separate object, even the `"http"` of each route's protocols or the `60000` of each
service's timeouts. `EntityDecoder` validates the same way (same errors, same values), then:

- gives all entities of one class with the same set fields one shared set. Entities are
  frozen, so pydantic never adds to it; `model_copy` and `copy` copy it first;
- rebuilds each entity with its fields set one by one, as for a plain object: CPython then
  keeps the field names once per class and only the values per entity (a key-sharing dict,
  ~270 bytes instead of ~460 for a route). The entity is equal, field for field, to the
  validated one, with the same pydantic attributes;
- passes strings and integers equal to one seen before in the same decode as that same object;
- with `validate_all`, drops each entity's JSON from its list as soon as it is validated: the
  entities then reuse that memory instead of growing the heap past the decoded document (which
  would stay allocated: the strings entities keep are scattered through it).

Lists and dicts are never shared: they stay one per entity, as pydantic built them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class EntityDecoder:
    """One per decode: the tables it shares values through live as long as it does."""

    __slots__ = ("_fields_sets", "_ints", "_strings")

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._ints: dict[int, int] = {}
        self._fields_sets: dict[tuple[type[BaseModel], frozenset[str]], set[str]] = {}

    def validate(self, model: type[M], data: Any) -> M:
        """`model.model_validate(data)` (raises what it raises), with shared parts. The lists
        and dicts of `data` (decoded JSON) may get their values replaced by equal ones."""
        return self._compact(model.model_validate(self._share_values(data)))

    def validate_all(self, model: type[M], items: Iterable[Any]) -> tuple[M, ...]:
        """`validate` each of `items`; a list is emptied as it goes (even on an error)."""
        if type(items) is not list:
            return tuple(self.validate(model, data) for data in items)
        items.reverse()
        out: list[M] = []
        while items:
            out.append(self.validate(model, items.pop()))
        return tuple(out)

    def _share_values(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self._strings.setdefault(value, value)
        if kind is int:  # not bool: True == 1 must not turn into 1
            return self._ints.setdefault(value, value)
        # In place: no copy of the document is made (keys are shared by the JSON decoder).
        if kind is dict:
            for key, item in value.items():
                value[key] = self._share_values(item)
        elif kind is list:
            for index, item in enumerate(value):
                value[index] = self._share_values(item)
        return value

    def _compact(self, model: M) -> M:
        values = model.__dict__
        for name, value in values.items():
            if isinstance(value, BaseModel):
                values[name] = self._compact(value)  # a reference, e.g. a route's service
        cls = type(model)
        compact = cls.__new__(cls)
        for name, value in values.items():
            object.__setattr__(compact, name, value)
        for name in _pydantic_slots(cls):
            if hasattr(model, name):
                object.__setattr__(compact, name, getattr(model, name))
        own = model.__pydantic_fields_set__
        shared = self._fields_sets.setdefault((cls, frozenset(own)), own)
        object.__setattr__(compact, "__pydantic_fields_set__", shared)
        return compact


def _pydantic_slots(cls: type[BaseModel]) -> tuple[str, ...]:
    """The attributes pydantic keeps in slots (`__pydantic_fields_set__`, ...)."""
    found = _SLOTS.get(cls)
    if found is None:
        names = (n for c in cls.__mro__ for n in c.__dict__.get("__slots__", ()))
        found = _SLOTS[cls] = tuple(n for n in names if n not in ("__dict__", "__weakref__"))
    return found


_SLOTS: dict[type[BaseModel], tuple[str, ...]] = {}
