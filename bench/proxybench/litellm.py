"""LiteLLM's proxy as a contender: `litellm[proxy]` pinned, in its own venv under bench/
(gitignored), one worker, master-key auth, no database, the same upstreams."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from proxybench import procs

VERSION = "1.108.7"
"""The newest `litellm[proxy]` whose dependencies the package index here can install."""
MASTER_KEY = "sk-bench-master"
VENV = Path(__file__).resolve().parent.parent / ".venv-litellm"

_CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-upstream-bench
  - model_name: gpt-4o-stream
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:{stream_port}/v1
      api_key: sk-upstream-bench
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: {master_key}
"""


def ensure_installed() -> str | None:
    """Create the venv and install LiteLLM if needed; None on success, else why not."""
    litellm = VENV / "bin" / "litellm"
    if litellm.exists():
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={VERSION}"],
            check=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"pip install litellm[proxy]=={VERSION} failed: {exc}"
    return None


def start(work: Path, port: int, upstream_port: int, stream_port: int, log_dir: Path) -> procs.Proc:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "litellm.yaml"
    config.write_text(
        _CONFIG.format(upstream_port=upstream_port, stream_port=stream_port, master_key=MASTER_KEY)
    )
    env = {
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "HOME": str(work),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    proc = procs.start(
        "litellm",
        [
            str(VENV / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        cores=procs.SERVER_CORE,
        log_dir=log_dir,
        env=env,
        cwd=work,
    )
    procs.wait_port(port, proc.popen, timeout_s=180)
    _wait_ready(port, proc)
    return proc


def _wait_ready(port: int, proc: procs.Proc, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {MASTER_KEY}"},
                timeout=10,
            )
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    raise RuntimeError(f"LiteLLM not answering: {last}\n{proc.tail()}")


def installed_version() -> str:
    out = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m;print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"
