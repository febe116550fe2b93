"""post-function: run Lua chunks last in each phase (Kong's Serverless Functions, priority -1000).

Same schema and behaviour as pre-function (shared in `gateway.lua.serverless`); only the name
(so the CP's syntax errors read `error parsing post-function: <lua error>`) and the priority
differ. Typical uses: rewrite the upstream request after authentication, or touch the response
in header_filter/body_filter after every other plugin.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.lua.serverless import FunctionsPlugin, functions_config_model
from gateway.plugins.base import PluginConfig

PostFunctionConfig = functions_config_model("post-function", "PostFunctionConfig")


class PostFunction(FunctionsPlugin):
    name: ClassVar[str] = "post-function"
    priority: ClassVar[int] = -1000
    config_model: ClassVar[type[PluginConfig]] = PostFunctionConfig


PLUGIN = PostFunction()

__all__ = ["PLUGIN", "PostFunction", "PostFunctionConfig"]
