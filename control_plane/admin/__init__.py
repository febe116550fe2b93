"""The Kong-compatible Admin API (FastAPI): `create_admin_app` in `control_plane.admin.app`."""
