"""pre-function: run Lua chunks first in each phase (Kong's Serverless Functions, priority 1000000).

All the behaviour is shared with post-function and lives in `gateway.lua.serverless`: config
(phase arrays compiled at validation, `error parsing pre-function: <lua error>` on a syntax
error), compile-once-per-snapshot handlers and the sandbox (reference/kong-plugins.md §2).
"""

from __future__ import annotations

from typing import ClassVar

from gateway.lua.serverless import FunctionsPlugin, LuaFunctionsConfig, functions_config_model
from gateway.plugins.base import PluginConfig

PreFunctionConfig = functions_config_model("pre-function", "PreFunctionConfig")


class PreFunction(FunctionsPlugin):
    name: ClassVar[str] = "pre-function"
    priority: ClassVar[int] = 1000000
    config_model: ClassVar[type[PluginConfig]] = PreFunctionConfig


PLUGIN = PreFunction()

__all__ = ["PLUGIN", "LuaFunctionsConfig", "PreFunction", "PreFunctionConfig"]
