"""The web UI served by the control plane (port 8002); see `create_ui_app`."""

from control_plane.ui.app import create_ui_app
from control_plane.ui.config import UiConfig
from control_plane.ui.extensions import AnalyticsQuery, AnalyticsSource, LocalNodes

__all__ = ["AnalyticsQuery", "AnalyticsSource", "LocalNodes", "UiConfig", "create_ui_app"]
