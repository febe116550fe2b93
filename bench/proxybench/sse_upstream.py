"""A fake streaming LLM: every request gets `--tokens` OpenAI `chat.completion.chunk` events
as fast as the socket takes them (each its own chunk of a chunked answer), then `[DONE]`.

    python -m proxybench.sse_upstream --port 9000 --tokens 200
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop


def _event(i: int, tokens: int) -> bytes:
    delta = {"content": f"tok{i} "} if i < tokens else {}
    doc = {
        "id": "chatcmpl-stream",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None if i < tokens else "stop"}],
    }
    data = b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(data), data)


async def _serve(tokens: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    events = [_event(i, tokens) for i in range(tokens + 1)]
    done = b"data: [DONE]\n\n"
    tail = b"%x\r\n%b\r\n0\r\n\r\n" % (len(done), done)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for event in events:
                writer.write(event)
                await writer.drain()
                await asyncio.sleep(0)  # one event per write, as a model emits them
            writer.write(tail)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(port: int, tokens: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: _serve(tokens, r, w), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    uvloop.run(_main(args.port, args.tokens))
