"""Fixtures for every test: throwaway PostgreSQL and Redis servers (started on first use)."""

pytest_plugins = ["tests.services.postgres", "tests.services.redis"]
