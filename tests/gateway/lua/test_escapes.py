"""Escape attempts: every way out of the sandbox we know of must fail.

Each snippet tries to reach the host (files, commands, environment, the Python objects behind
the PDK), to load code the control plane never saw, or to change what later requests run. Each
must end in a Lua error a client sees as Kong's 500, with nothing done on the host. Attempts on
the CPU and memory limits are in test_sandbox.py and test_patterns.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.lua.sandbox import LuaRuntimeError
from tests.gateway.lua.lua_helpers import compile_phase, make_ctx


def fails(code: str, message: str) -> None:
    functions = compile_phase(code)
    with pytest.raises(LuaRuntimeError, match=message):
        functions.run("access", make_ctx())


HOST_ACCESS = [
    pytest.param("os.execute('id')", "field 'execute'", id="os.execute"),
    pytest.param("io.popen('id')", "field 'popen'", id="io.popen"),
    pytest.param("io.open('/etc/passwd')", "field 'open'", id="io.open"),
    pytest.param("io.lines('/etc/passwd')", "field 'lines'", id="io.lines"),
    pytest.param("io.write('x')", "field 'write'", id="io.write"),
    pytest.param("io.output('/tmp/x')", "field 'output'", id="io.output"),
    pytest.param("io.stdout:write('x')", "field 'stdout'", id="io.stdout"),
    pytest.param("os.remove('/tmp/x')", "field 'remove'", id="os.remove"),
    pytest.param("os.rename('/tmp/x', '/tmp/y')", "field 'rename'", id="os.rename"),
    pytest.param("os.tmpname()", "field 'tmpname'", id="os.tmpname"),
    pytest.param("os.exit(1)", "field 'exit'", id="os.exit"),
    pytest.param("os.getenv('HOME')", "field 'getenv'", id="os.getenv"),
    pytest.param("os.setlocale('C')", "field 'setlocale'", id="os.setlocale"),
    pytest.param("dofile('/etc/passwd')", "global 'dofile'", id="dofile"),
    pytest.param("loadfile('/etc/passwd')", "global 'loadfile'", id="loadfile"),
    pytest.param("package.loadlib('libc.so.6', 'system')", "global 'package'", id="package"),
    pytest.param("_G.io.open('/etc/passwd')", "field 'open'", id="_G.io"),
    pytest.param("_ENV.os.execute('id')", "field 'execute'", id="_ENV.os"),
]

CODE_LOADING = [
    pytest.param("load('return 1')()", "global 'load'", id="load"),
    pytest.param("loadstring('return 1')()", "global 'loadstring'", id="loadstring"),
    pytest.param("string.dump(print)", "field 'dump'", id="string.dump"),
    pytest.param("(''):dump()", "method 'dump'", id="string-method-dump"),
    pytest.param("require('os')", "require 'os' not allowed", id="require-os"),
    pytest.param("require('io')", "require 'io' not allowed", id="require-io"),
    pytest.param("require('debug')", "require 'debug' not allowed", id="require-debug"),
    pytest.param("require('ffi')", "require 'ffi' not allowed", id="require-ffi"),
    pytest.param("require('python')", "require 'python' not allowed", id="require-python"),
    pytest.param("require('string')", "require 'string' not allowed", id="require-string"),
    pytest.param("require('kong.tools.utils')", "not allowed", id="require-kong-module"),
    pytest.param("debug.getinfo(1)", "global 'debug'", id="debug"),
    pytest.param("debug.sethook()", "global 'debug'", id="debug.sethook"),
    pytest.param("getfenv(1)", "global 'getfenv'", id="getfenv"),
    pytest.param("setfenv(1, {})", "global 'setfenv'", id="setfenv"),
    pytest.param("newproxy(true)", "global 'newproxy'", id="newproxy"),
    pytest.param("collectgarbage('stop')", "global 'collectgarbage'", id="collectgarbage"),
    pytest.param("coroutine.close(coroutine.running())", "field 'close'", id="coroutine.close"),
]

METATABLES = [
    pytest.param("getmetatable('').__index.dump = 1", "global 'getmetatable'", id="getmetatable"),
    pytest.param("setmetatable({}, {})", "global 'setmetatable'", id="setmetatable"),
    pytest.param("rawset(_G, 'x', 1)", "global 'rawset'", id="rawset"),
    pytest.param("rawget(kong.request, 'get_header')", "global 'rawget'", id="rawget"),
    pytest.param("('').upper = nil", "attempt to index a string value", id="string-table-write"),
    pytest.param("kong.request.get_header = nil", "the PDK is read-only", id="pdk-write"),
    pytest.param("kong.response.exit = print", "the PDK is read-only", id="pdk-exit-write"),
    pytest.param("kong.log.err = nil", "the PDK is read-only", id="pdk-log-write"),
    pytest.param("kong.ctx = {}", "the PDK is read-only", id="pdk-ctx-write"),
    pytest.param("ngx.say = nil", "the PDK is read-only", id="ngx-write"),
    pytest.param("ngx.req.set_header = nil", "the PDK is read-only", id="ngx-req-write"),
    pytest.param("require('cjson').decode = nil", "the PDK is read-only", id="cjson-write"),
]

# PDK functions are Lua closures over the Python callables, so snippets hold no Python function;
# the JSON sentinels (ngx.null, cjson.empty_array) are Python objects with attribute access refused.
PYTHON_OBJECTS = [
    pytest.param("python.eval('1')", "global 'python'", id="python-global"),
    pytest.param(
        "return kong.request.get_header.__self__",
        "attempt to index a function value",
        id="function-self",
    ),
    pytest.param(
        "return kong.request.get_header.__globals__",
        "attempt to index a function value",
        id="function-globals",
    ),
    pytest.param(
        "return kong.request.get_header['__call__']",
        "attempt to index a function value",
        id="function-item",
    ),
    pytest.param(
        "kong.request.get_header.x = 1", "attempt to index a function value", id="function-setattr"
    ),
    pytest.param("return ngx.null.__class__", "not allowed", id="null-class"),
    pytest.param("return ngx.null['__init__']", "not allowed", id="null-item"),
    pytest.param("return require('cjson').empty_array.__reduce__", "not allowed", id="array-attr"),
    pytest.param("ngx.null()", "not callable", id="null-call"),
]


@pytest.mark.parametrize(
    ("code", "message"), HOST_ACCESS + CODE_LOADING + METATABLES + PYTHON_OBJECTS
)
def test_escape_attempt_fails(code: str, message: str) -> None:
    fails(code, message)


def test_no_file_is_written_or_command_run(tmp_path: Path) -> None:
    target = tmp_path / "owned"
    for code in (
        f"io.open('{target}', 'w'):write('x')",
        f"os.execute('touch {target}')",
        f"io.popen('touch {target}')",
        f"require('io').open('{target}', 'w')",
    ):
        with pytest.raises(LuaRuntimeError):
            compile_phase(code).run("access", make_ctx())
    assert not target.exists()


def test_safe_globals_hold_no_host_function() -> None:
    # Walk every table reachable from the environment and list what could touch the host.
    code = """
    local seen, found = {}, {}
    local banned = { execute = 1, popen = 1, open = 1, getenv = 1, remove = 1, rename = 1,
                     exit = 1, load = 1, loadstring = 1, dofile = 1, loadfile = 1, dump = 1,
                     sethook = 1, getregistry = 1, getupvalue = 1, setupvalue = 1,
                     getmetatable = 1, setmetatable = 1, rawset = 1, rawget = 1, loadlib = 1 }
    local function walk(t, path)
      if seen[t] then return end
      seen[t] = true
      for k, v in pairs(t) do
        if banned[k] then found[#found + 1] = path .. "." .. tostring(k) end
        if type(v) == "table" then walk(v, path .. "." .. tostring(k)) end
      end
    end
    walk(_G, "_G")
    table.sort(found)
    return kong.response.exit(200, found)
    """
    result = compile_phase(code).run("access", make_ctx())
    assert result is not None
    # Only the PDK's own exits and table.remove share a name with a host function.
    assert json.loads(result.body) == ["_G.kong.response.exit", "_G.ngx.exit", "_G.table.remove"]


def test_exit_cannot_be_caught_by_pcall() -> None:
    functions = compile_phase(
        "pcall(kong.response.exit, 403) kong.service.request.set_header('x-after-exit', 'ran')"
    )
    ctx = make_ctx()
    result = functions.run("access", ctx)
    assert result is not None and result.status == 403
    assert "x-after-exit" not in ctx.request.headers


def test_coroutine_errors_surface_as_errors() -> None:
    fails(
        "local co = coroutine.create(function() error('inside') end)"
        " local ok, err = coroutine.resume(co) error(err, 0)",
        "inside",
    )


def test_bytecode_cannot_be_compiled() -> None:
    with pytest.raises(Exception, match="binary chunk"):
        compile_phase("\x1bLua\x54\x00\x19\x93\r\n\x1a\n")
