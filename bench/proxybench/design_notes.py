"""The text of docs/benchmarks.md that a run cannot measure by itself: the choices made for
the data plane, with the effect each had when it was made, and what would close the gaps."""

from __future__ import annotations

DECISIONS = [
    "Measured while the changes were made (same harness, 32 connections, the machine shared "
    "with other test runs, load average 1-10; CPU µs per request of the data-plane process "
    "from /proc is the steadiest figure). The side-by-side table above re-measures the two "
    "big choices in every run.",
    "",
    "| step | choice | effect |",
    "| --- | --- | --- |",
    "| starting point | uvicorn (httptools, uvloop) + bare ASGI `ProxyApp` + aiohttp | "
    "pipeline 2,900 req/s = 0.096 of nginx, key-auth 3,800 (0.12), no plugins 4,300 (0.14); "
    "py-spy: aiohttp ~55% of the process (request objects, header normalisation, payload "
    "writer) |",
    "| upstream client | `data_plane/http_client.py`: pooled HTTP/1.1 on httptools, request "
    "head and body in one write, answer parsed in C | the largest win: ~70 µs less CPU per "
    "request (see the Choices table: uvicorn+aiohttp vs uvicorn+httptools); pipeline ~1.8x |",
    "| server | `data_plane/http_server.py`: uvloop Protocol + httptools, one `Exchange` per "
    "request, small answers in one write | 6-10 µs less CPU per request than uvicorn with the "
    "same app and client (Choices table); keeps ASGI, so `ProxyApp` and its tests are "
    "unchanged |",
    "| garbage collector | `gc.freeze()` after start-up, young-generation threshold 700 -> "
    "20,000 (`data_plane/main.py`) | py-spy showed 7% of samples in `gc_collect_main` "
    "(every collection walked the long-lived heap: grpc, pydantic, lupa); together with the "
    "next row: no plugins 78 -> 62 µs, key-auth 84 -> 68 µs, pipeline 158 -> 134 µs CPU per "
    "request |",
    "| system calls per request | request id from `random.getrandbits` instead of "
    "`os.urandom` (a getrandom(2) each); the event loop cached per connection instead of "
    "`asyncio.get_running_loop()` (a getpid(2) each); timers with `loop.call_later` instead "
    "of `asyncio.timeout` | included in the row above (getpid + getrandom were ~2% of "
    "samples) |",
    "| per-request work in `proxy.py` | upstream and response header lists built in one pass "
    "instead of one `Headers.set` (a full list rebuild) per added header; whole-body reads "
    "without an async generator | in-process (no sockets): key-auth 27.9 -> 25.2 µs, no "
    "plugins 17.7 -> 16.4 µs |",
    "| streaming | chunks already received from the upstream go downstream as one write | "
    "fewer writes when the client or the proxy falls behind; tokens/s in the Streaming table |",
    "| JSON (session 3) | orjson (`gateway/llm/json_codec.py`, stdlib fallback for NaN, lone "
    "surrogates, a BOM) for the client body, the provider body, the answer check and streamed "
    "events; a per-target `UpstreamPlan` (URL, Host, auth header, fixed headers) and merged "
    "`model.options` computed once per snapshot | ai-proxy-advanced's handler 30 -> 14 µs; "
    "in-process pipeline 82.5 -> 65.1 µs |",
    "| headers (session 3) | `gateway/headers.py` keeps each lower-cased name beside its pair "
    "(computed once, on first lookup), in-place set/remove, bulk `set_many`/`remove_many`/"
    "`items_except`; key-auth removes credential headers and sets consumer headers in one pass "
    "| `str.lower` calls per pipeline request 157 -> 43; pipeline -6 %, key-auth -9 %, "
    "no plugins -5 % (in-process) |",
    "| Lua PDK (session 3) | inline fast path for `kong.service.request.set_header` with two "
    "plain strings (byte checks instead of `in` on bytes), direct decode in `get_header`, "
    "shared result objects, one coroutine layer fewer | the how-to snippet 5.2 -> 3.8 µs per "
    "call; in-process pipeline 56.3 -> 54.0 µs |",
    "| timers (session 3) | `data_plane/lazy_timer.py`: a deadline moved per request instead of a "
    "`call_later` + `cancel` pair (~1.8 µs each on uvloop, three per request: keep-alive, "
    "head timeout, upstream head wait) | real server, CPU per request: no plugins 55 -> 48 µs, "
    "key-auth 67 -> 58 µs (with the next row) |",
    "| one-message bodies (session 3) | an upstream answer with Content-Length and no body "
    "filter goes downstream in one send (no async iterator, no empty final send); "
    "Content-Length/Transfer-Encoding noted while parsing; `drain()` only when paused | "
    "included in the row above |",
    "| memory (session 3) | `gateway/entity_decoder.py`: entities of one type share one "
    "fields-set, equal strings/ints within a decode are one object, each entity's JSON dropped "
    "once validated; streamed snapshot hash; compact router structures; `malloc_trim(0)` "
    "after an apply | data plane with 10k routes 184 -> 138 MB (idle 107 MB); 25 deltas in a "
    "row no longer creep |",
]

GAP_NOTES = [
    "Progress and the moving reference: the previous report (2026-11-27 15:00, busier "
    "machine, load 1.3-6) measured nginx at 27,430 req/s, the pipeline at 5,201 (0.201) and "
    "key-auth at ~10,000 (0.366). This run, on a quiet machine (load 0.6-1.7), measured the "
    "pipeline at 9,276 req/s (+78 %) and key-auth at 15,211 (+51 %), but nginx itself at "
    "48,538: its ~13 µs per request gains most from an idle core, so the side-by-side "
    "ratios fell. Against the issue's reference figure for nginx (~33,000 req/s on this kind "
    "of machine) the pipeline would be 0.28 and key-auth 0.46; the targets count the "
    "side-by-side ratio, which stays missed.",
    "",
    "Read with the profile above. Per request of the walkthrough pipeline the data plane "
    "spends roughly: the plugins' Python work (in-process pipeline minus no-plugins), the "
    "transport (server, upstream client, two socket writes and two reads: what the "
    "no-plugins route costs over its in-process figure), and the proxy flow. nginx does the "
    "whole reverse-proxy job in ~15 µs, so with one core shared with the upstream the ratio "
    "is bounded by (nginx + upstream) / (data plane + upstream) CPU per request: for 0.30 "
    "the pipeline would have to cost ~60 µs per request and for 0.40 key-auth ~45 µs, "
    "against the figures in the in-process and Choices tables.",
    "",
    "Note on the profile: `ClientConnection.send` includes the upstream's own work: the "
    "loopback write wakes nginx on the same core, and it runs inside that system call's "
    "time slice.",
    "",
    "Where the remaining time is, and what would close the gap (largest first):",
    "",
    "1. The transport floor: with no plugins the data plane costs ~48 µs CPU per request on "
    "the real server, of which ~16-18 µs is kernel time (two reads, two writes, epoll) and "
    "~30 µs Python: the httptools callbacks, the ASGI messages between server and "
    "`ProxyApp`, one task per request. A direct path between our server and the proxy that "
    "skips the ASGI dicts (~2 µs), one task per connection instead of per request (~1.2 µs; "
    "needs care with context variables and cancellation) and encoding response headers once "
    "(~0.7 µs) are the measured candidates; beyond that the floor is CPython's per-call cost.",
    "2. Per-plugin dispatch: each plugin costs 3-4 µs beyond its own work (phase checks, "
    "coroutine per phase, context lookups); per-route precomputed phase lists "
    "(`Pipeline.fixed_phases`) cut part of it.",
    "3. ai-proxy-advanced's buffered answer path (header_filter/body_filter: buffer, parse "
    "the answer for `choices`/`usage`, re-frame) ~11 µs, and its handler ~11 µs spread over a "
    "dozen steps of 0.2-2 µs (orjson parse of the answer 1.9 µs, building the upstream "
    "request 1.6 µs, checks 1.1 µs, usage meter and log record ~1 µs).",
    "4. Not pursued: caching the key's SHA-256 per presented key (0.3-0.4 µs) would keep "
    "presented keys, including attackers' guesses, in memory in plain text; forwarding the "
    "client's body bytes unchanged when nothing changes would let duplicate JSON keys slip "
    "past the model lock (a provider parser keeping the first `model`), and checking for "
    "them costs more than re-serializing.",
    "5. More data-plane processes: the proxy port is shared with SO_REUSEPORT, so each core "
    "adds a process (the two-data-plane rows).",
    "",
    "For scale, measured separately on the same machine: the data plane's own server with a "
    "trivial app costs ~15 µs CPU per request, server plus upstream client forwarding to "
    "nginx ~31 µs; the no-plugins route adds `ProxyApp` (context, router, header lists, "
    "latencies, observer) on top.",
    "",
    "Memory with 10k routes (target 150 MB, met): the data plane's baseline is ~107 MB "
    "(interpreter, grpc, pydantic, lupa, the compiled plugins); the decoded 10k snapshot now "
    "costs ~2 KB per service+route pair (was ~5.7 KB) plus the compiled router and pipelines. "
    "What is left is mostly the pydantic objects themselves; plain records for the proxy, "
    "request context and Lua route lookup would be the next step.",
]
