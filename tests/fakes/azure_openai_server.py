"""A real HTTP fake of Azure OpenAI, written from Azure's REST reference: OpenAI's operations
under `/openai/deployments/{deployment}/...`, authenticated by an `api-key` header, with a
required `api-version` query argument. Behaviour otherwise as `tests.fakes.openai_compat`.

In-process: `with fake_azure_openai(api_key="k") as fake: ...`.
As a process: `python -m tests.fakes.azure_openai_server --port N [--api-key K]`.
"""

from __future__ import annotations

from aiohttp import web

from tests.fakes.harness import FakeServer, main
from tests.fakes.openai_compat import OpenAICompatBackend


class AzureOpenAIBackend(OpenAICompatBackend):
    prefix = "/openai/deployments/{deployment}"
    needs_model = False  # the deployment names the model

    def error(self, status: int, message: str, code: str | None = None) -> web.Response:
        return web.json_response(
            {"error": {"code": code or str(status), "message": message}}, status=status
        )

    def check_auth(self, request: web.Request) -> web.Response | None:
        if not request.query.get("api-version"):
            return self.error(404, "Resource not found")
        if self.api_key is not None and request.headers.get("api-key") != self.api_key:
            return self.error(
                401,
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                "to provide a valid key for an active subscription and use a correct regional "
                "API endpoint for your resource.",
            )
        return None


def fake_azure_openai(
    api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
) -> FakeServer[AzureOpenAIBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(AzureOpenAIBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(AzureOpenAIBackend, "Fake Azure OpenAI server")
