"""Bundled plugins, by name. Both planes look plugins up here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.plugins.base import Plugin

_REGISTRY: dict[str, Plugin[Any]] = {}


def register(plugin: Plugin[Any]) -> None:
    _REGISTRY[plugin.name] = plugin


def registry() -> Mapping[str, Plugin[Any]]:
    """All bundled plugins by name (loaded on first call)."""
    if not _REGISTRY:
        _load_bundled()
    return _REGISTRY


def _load_bundled() -> None:
    from gateway.plugins import ai_proxy, ai_proxy_advanced, key_auth, post_function, pre_function

    for module in (pre_function, key_auth, ai_proxy_advanced, ai_proxy, post_function):
        register(module.PLUGIN)
