"""Control plane: Admin API, UI, storage, snapshot builder, cluster sync server."""
