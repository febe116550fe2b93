"""A real HTTP fake of Mistral's La Plateforme API, written from Mistral's API reference: the
OpenAI-compatible `/v1/chat/completions` and `/v1/embeddings` with Bearer auth and Mistral's
error bodies. Behaviour otherwise as `tests.fakes.openai_compat` (Mistral's `top_k`-less
arguments included). Mistral models served by Ollama are `tests.fakes.ollama_server`.

In-process: `with fake_mistral(api_key="k") as fake: ...`.
As a process: `python -m tests.fakes.mistral_server --port N [--api-key K]`.
"""

from __future__ import annotations

from aiohttp import web

from tests.fakes.harness import FakeServer, Handler, main
from tests.fakes.openai_compat import OpenAICompatBackend


class MistralBackend(OpenAICompatBackend):
    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/chat/completions", self.chat),
            ("POST", "/v1/embeddings", self.embeddings),
        ]

    def error(self, status: int, message: str, code: str | None = None) -> web.Response:
        if status == 401:
            return web.json_response({"message": "Unauthorized", "request_id": "fake"}, status=401)
        body = {
            "object": "error",
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": code,
        }
        return web.json_response(body, status=status)


def fake_mistral(
    api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
) -> FakeServer[MistralBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(MistralBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(MistralBackend, "Fake Mistral API server")
