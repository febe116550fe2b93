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
    "| JSON | orjson measured (line under the Choices table) but not applied: the JSON of the "
    "pipeline lives in `gateway/llm` and `gateway/plugins` (another issue's files; change "
    "request in the report) | - |",
    "| per-snapshot precomputation | the router and pipelines were already compiled per "
    "snapshot; the remaining per-request plugin work is in the plugins (see below) | - |",
]

GAP_NOTES = [
    "Read with the profile above. Per request of the walkthrough pipeline the data plane "
    "spends roughly: the plugins' Python work (in-process pipeline minus no-plugins: "
    "ai-proxy-advanced, then pre-function, then key-auth), the transport (server, upstream "
    "client, two socket writes and two reads: what the no-plugins route costs over its "
    "in-process figure), and the proxy flow. nginx does the whole reverse-proxy job in "
    "~15 µs, so with one core shared with the upstream the ratio is bounded by "
    "(nginx + upstream) / (data plane + upstream) CPU per request.",
    "",
    "Note on the profile: `ClientConnection.send` includes the upstream's own work — the "
    "loopback write wakes nginx on the same core, and it runs inside that system call's "
    "time slice.",
    "",
    "What would close the gap, largest first:",
    "",
    "1. ai-proxy-advanced (`gateway/plugins/ai_proxy_advanced.py`, `gateway/llm/`): per request "
    "it parses the client body, builds and serializes a new one (`json.dumps` in "
    "`gateway/llm/upstream.py`), rewrites headers one `Headers.set/remove` at a time, and "
    "parses the whole answer to check `choices` and read `usage`. Use orjson for the three "
    "JSON steps; precompute per target and snapshot the merged options, upstream URL parts "
    "and auth header; skip re-serializing when the normalized body equals the client's "
    "(OpenAI to OpenAI with the model already right).",
    "2. `gateway/headers.py`: every `get/set/remove/names` lower-cases every name (≈190 "
    "`str.lower` calls per pipeline request) and `set/remove` rebuild the list. Keeping the "
    "lower-cased name beside each pair (or an index by name) makes lookups O(1) and removes "
    "most of those calls; it is used by every plugin and by the proxy.",
    "3. key-auth (`gateway/plugins/key_auth.py`, `key_locations.py`): removes the credential "
    "headers with one list rebuild per name and sets the consumer headers one by one; "
    "batch them (one pass).",
    "4. pre-function: the sandboxed Lua call and PDK bindings cost ~7-9 µs (bench/results/"
    "lua_prefunction.json); acceptable.",
    "5. More data-plane processes: the proxy port is shared with SO_REUSEPORT, so each core "
    "adds a process (the two-data-plane rows).",
    "",
    "Open question: the real data-plane process spends more CPU per pipeline request than the "
    "bare variant process with the same routes and plugins (`own+httptools pipeline` in the "
    "Choices table; 143 vs 171 µs in the run of 2026-11-27). The differences are the sync "
    "client (grpc threads), the analytics observer (~3 µs in-process), the credential cache "
    "chain and the control plane's defaults in the plugin configs; not profiled apart yet.",
    "",
    "For scale, measured separately on the same machine: the data plane's own server with a "
    "trivial app costs ~15 µs CPU per request, server plus upstream client forwarding to "
    "nginx ~31 µs (0.6-0.7 of nginx's req/s, as DESIGN.md's table predicts); the no-plugins "
    "route adds `ProxyApp` (context, router, header lists, latencies, observer) on top.",
    "",
    "Memory with 10k routes: the data plane's baseline is ~108 MB (interpreter, grpc, "
    "pydantic, lupa, the compiled plugins). Decoding a 10k-service/10k-route snapshot "
    "(`Snapshot.decode`, pydantic entities with every Kong field, ~3.5 KB per service+route "
    "pair) adds ~70 MB, the compiled router and pipelines ~14 MB; a `gc.collect()` plus "
    "`malloc_trim(0)` after the swap gave back only ~4 MB, so it is live data, not garbage. "
    "What would close it (`gateway/snapshot.py`, `gateway/entities.py`, owned by the sync "
    "issue): decode entities on the data plane into slotted, frozen records holding only the "
    "fields the router and plugins read (or `model_construct` without the per-field "
    "`__pydantic_fields_set__`), intern repeated strings (hosts, protocols, tags), and drop "
    "the decoded entity lists once the runtime is compiled (the runtime keeps what it needs).",
]
