"""What the web UI needs to know about its deployment, given by the entry point."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
"""`web/` at the top of the source tree: templates/ and static/ (vendored htmx and Chart.js)."""


@dataclass(frozen=True, slots=True)
class UiConfig:
    """Deployment facts the pages show, and session policy."""

    proxy_url: str = "http://localhost:8000"
    """The data planes' proxy URL as clients reach it (KONNECT_PROXY_URL)."""
    cluster_address: str = "localhost:8005"
    """`host:port` of this control plane's cluster listener, for a new data plane's command."""
    cluster_cert: Path | None = None
    """The cluster certificate (PEM) a new data plane needs; shown in the new-node panel."""
    cluster_key: Path | None = None
    """Where its private key lives: the panel names the file, never shows the key."""
    session_ttl_s: int = 12 * 3600
    """A login lasts at most this long."""
    session_idle_s: int = 3600
    """A login ends after this long without a request."""
    secure_cookies: bool | None = None
    """Force the session cookie's Secure flag (None: set it when the request came over
    HTTPS, as seen by the server: the scheme, or X-Forwarded-Proto from a trusted proxy)."""
    web_dir: Path = WEB_DIR
