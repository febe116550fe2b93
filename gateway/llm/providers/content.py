"""OpenAI message content parts read for providers with other content shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Image:
    """An `image_url` part: inline base64 data with its media type, or a remote URL."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None


def image_of(image_url: object) -> Image | None:
    """The image of an OpenAI `image_url` value (`{"url": ...}` or a bare string)."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        return None
    match = _DATA_URL.match(url)
    if match is not None:
        return Image(media_type=match["mime"], data=match["data"])
    return Image(url=url)


def image_source(image_url: object) -> dict[str, Any] | None:
    """Anthropic's image `source` for an OpenAI `image_url` value."""
    image = image_of(image_url)
    if image is None:
        return None
    if image.data is not None:
        return {"type": "base64", "media_type": image.media_type, "data": image.data}
    return {"type": "url", "url": image.url}
