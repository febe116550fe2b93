"""nginx in two roles: the fake LLM upstream (a fixed `chat.completion` body) and the
reverse-proxy ceiling in front of it. One worker each, `daemon off`, everything in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

from proxybench import procs

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
        "system_fingerprint": "fp_bench",
    },
    separators=(",", ":"),
)
"""What the upstream answers to every chat request (OpenAI's shape, ~400 bytes)."""

_COMMON = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
{body}
}}
"""

_UPSTREAM = """\
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{completion}';
        }}
    }}
"""

_REVERSE = """\
    upstream llm {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    upstream stream {{
        server 127.0.0.1:{stream_port};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /stream/ {{
            proxy_pass http://stream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
        location / {{
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer sk-upstream";
        }}
    }}
"""


def _write(dir_: Path, body: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    conf = dir_ / "nginx.conf"
    conf.write_text(_COMMON.format(dir=dir_, body=body))
    return conf


def start_upstream(dir_: Path, port: int, log_dir: Path) -> procs.Proc:
    """The fake provider: `POST /v1/chat/completions` (any path) -> 200 `COMPLETION`."""
    conf = _write(dir_, _UPSTREAM.format(port=port, completion=COMPLETION.replace("'", "\\'")))
    proc = procs.start(
        "nginx-upstream",
        ["nginx", "-p", str(dir_), "-c", str(conf), "-g", "daemon off;"],
        cores=procs.SERVER_CORE,
        log_dir=log_dir,
    )
    procs.wait_port(port, proc.popen)
    return proc


def start_reverse_proxy(
    dir_: Path, port: int, upstream_port: int, stream_port: int, log_dir: Path
) -> procs.Proc:
    """nginx as the reverse proxy (the ceiling): pooled keep-alive to the upstream, swaps
    `Authorization` like ai-proxy does; `/stream/` goes unbuffered to the SSE upstream."""
    conf = _write(
        dir_,
        _REVERSE.format(port=port, upstream_port=upstream_port, stream_port=stream_port),
    )
    proc = procs.start(
        "nginx-proxy",
        ["nginx", "-p", str(dir_), "-c", str(conf), "-g", "daemon off;"],
        cores=procs.SERVER_CORE,
        log_dir=log_dir,
    )
    procs.wait_port(port, proc.popen)
    return proc


def version() -> str:
    import subprocess

    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True)
    return out.stderr.strip().split("/", 1)[-1]
