"""The one exception type of `lockgate deck`."""

from __future__ import annotations


class DeckError(Exception):
    """Something the user must fix; `messages` are printed one per line as `error: <message>`.

    Several messages are carried together so that validation reports every problem at once.
    """

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages: tuple[str, ...] = messages
