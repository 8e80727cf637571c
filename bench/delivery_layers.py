"""Where a real delivery's CPU goes: ``run_due`` with the network replaced layer by layer.

Run: ``.venv/bin/python bench/delivery_layers.py [--n 20000] [--runs 3] [--concurrency 10]``
(database as in ``bench/dispatch.py``). Signed webhooks, one-step sequence, the claim, fence,
record and everything else real; per run, in alternating order:

- ``real``: the request goes to the loopback sink (``bench/sink.py``), as in dispatch.py (r);
- ``wire``: the guarded client's ``wire_request`` answers from memory (no aiohttp, no socket);
  the guard around it, the provider, the engine and the database work are real;
- ``provider``: the webhook provider's ``send`` answers from memory (no signing, no guard);
- ``inline``: as ``provider``, and the execution runs inline in its lane like the in-process
  ``memory`` provider's (no task, no slots, no fence, no time bound).

Each layer's cost is the difference of two neighbours' CPU per delivery (the client process's
``process_time``, its database threads included). Two request-only rows, in the same
alternation, say what the request costs without the engine, on the loop DripDrop runs:

- ``bare``: bare aiohttp posting the same signed requests (``dispatch.py``'s client);
- ``guarded``: those requests through ``guarded_request`` (the guard and wire layer, no engine).

``wire`` + ``guarded`` is what a delivery would cost if the engine's work and the request's simply
added up; ``real`` above that is what doing them together costs besides.

With the network out, the figures vary far less from run to run (about ±3 %) than dispatch.py's
real ones (±5 to 10 %): changes to the engine are best measured here first, then confirmed with
``bench/dispatch.py --only r``.

The stubs are this script's own monkeypatches of internal names (``dripdrop.net.client.
wire_request``, ``WebhookProvider.send``, ``worker.eager.runs_in_process``): a measuring aid,
not an API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

from dispatch import (
    DEFAULT_URL,
    SHAPES,
    Bench,
    Sink,
    each,
    enrolled_real,
    new_id_strings,
    post_aiohttp,
    say,
    timed,
)
from multidict import CIMultiDict, CIMultiDictProxy

import dripdrop.net.client as net_client
import dripdrop.worker.runner as runner
from dripdrop.channels.base import DeliveryResult
from dripdrop.channels.providers.webhook_http import WebhookProvider
from dripdrop.net import OutboundPolicy, create_http_client, guarded_request
from dripdrop.net.wire import WireResponse
from dripdrop.worker.loop_tuning import run as run_loop

LAYERS = ("real", "wire", "provider", "inline")
REQUEST_ONLY = ("bare", "guarded")
_ANSWER = b'{"ok":true}'
_HEADERS = CIMultiDictProxy(
    CIMultiDict({"Content-Type": "application/json", "Content-Length": str(len(_ANSWER))})
)


async def _wire_in_memory(session: Any, policy: Any, method: str, url: Any, **_: Any) -> Any:
    await asyncio.sleep(0)  # a real request waits once at least
    return WireResponse(200, _HEADERS, _ANSWER, url=str(url), method=method, reason_phrase="OK")


async def _send_in_memory(self: Any, message: Any, adapter: Any, ctx: Any) -> DeliveryResult:
    await asyncio.sleep(0)
    return DeliveryResult(provider_message_id=message.idempotency_key, response={"ok": True})


@contextlib.contextmanager
def stubbed(layer: str) -> Iterator[None]:
    """The stubs of ``layer`` in place for the block, the real code back after it."""
    saved = (net_client.wire_request, WebhookProvider.send, runner.eager.runs_in_process)
    try:
        if layer == "wire":
            net_client.wire_request = _wire_in_memory  # type: ignore[assignment]
        if layer in ("provider", "inline"):
            WebhookProvider.send = _send_in_memory  # type: ignore[method-assign]
        if layer == "inline":
            runner.eager.runs_in_process = lambda job: True  # type: ignore[assignment]
        yield
    finally:
        net_client.wire_request, WebhookProvider.send, runner.eager.runs_in_process = saved


def one_run(bench: Bench, sink: Sink, layer: str, n: int, c: int) -> tuple[float, float]:
    """(deliveries/s, CPU µs per delivery) of one drain of ``n`` webhooks through ``layer``."""
    dd = enrolled_real(bench, SHAPES[0], sink, n)
    with stubbed(layer):
        if layer == "real":
            sample = timed(sink, n, lambda: dd.run_due(concurrency=c))
            rate, cpu = sample.rate, sample.cpu_us
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            summary = dd.run_due(concurrency=c)
            wall, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            assert summary.sent == n, summary
            rate, cpu = n / wall, cpu_s / n * 1e6
    bench.close(dd)
    return rate, cpu


async def post_guarded(base: str, keys: list[str], c: int) -> None:
    """The bench's signed requests through ``guarded_request``, at most ``c`` at a time."""
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",))
    async with create_http_client(policy) as client:

        async def send(i: int, key: str) -> None:
            url, headers, body = SHAPES[0].request(base, i, key)
            response = await guarded_request(client, "POST", url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"guarded_request: HTTP {response.status_code}")

        await each(keys, c, send)


def request_only(sink: Sink, kind: str, n: int, c: int) -> tuple[float, float]:
    """(requests/s, CPU µs per request) of ``n`` requests, no engine, on DripDrop's loop."""
    keys = new_id_strings(n)
    if kind == "bare":
        requests = post_aiohttp(SHAPES[0], sink.url, keys, c, {})
    else:
        requests = post_guarded(sink.url, keys, c)
    sample = timed(sink, n, lambda: run_loop(requests))  # a coroutine runs only when awaited
    return sample.rate, sample.cpu_us


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args(argv)
    bench = Bench(args.database_url)
    got: dict[str, list[tuple[float, float]]] = {row: [] for row in LAYERS + REQUEST_ONLY}
    say(
        f"run_due(concurrency={args.concurrency}), {args.n:,} signed webhooks per run, "
        f"{args.runs} runs, layers alternating"
    )
    try:
        with Sink() as sink:
            for run in range(args.runs):
                for layer in LAYERS:
                    rate, cpu = one_run(bench, sink, layer, args.n, args.concurrency)
                    got[layer].append((rate, cpu))
                    say(f"  run {run + 1} {layer:8s} {rate:8,.0f}/s  {cpu:6.1f} µs CPU/delivery")
                for kind in REQUEST_ONLY:
                    rate, cpu = request_only(sink, kind, args.n, args.concurrency)
                    got[kind].append((rate, cpu))
                    say(f"  run {run + 1} {kind:8s} {rate:8,.0f}/s  {cpu:6.1f} µs CPU/request")
    finally:
        bench.cleanup()
    cpu = {row: statistics.median(c for _, c in got[row]) for row in got}
    rate = {row: statistics.median(r for r, _ in got[row]) for row in got}
    say("\nmedians: layer, deliveries/s, CPU µs per delivery, and what the layer above adds")
    below = {"real": "wire", "wire": "provider", "provider": "inline"}
    what = {
        "real": "aiohttp, the socket, the event loop's I/O",
        "wire": "the provider (headers, signing, scrubbing, parsing) and the guard",
        "provider": "the task, slots, fence and time bound of a network delivery",
        "inline": "claim, conditions, render, record (the engine as the memory provider runs)",
    }
    for layer in LAYERS:
        extra = cpu[layer] - cpu[below[layer]] if layer in below else cpu[layer]
        say(
            f"  {layer:8s} {rate[layer]:8,.0f}/s  {cpu[layer]:6.1f} µs   "
            f"{extra:+6.1f} µs  {what[layer]}"
        )
    say("\nthe request alone, no engine, on the same loop (CPU µs per request)")
    say(f"  bare     {rate['bare']:8,.0f}/s  {cpu['bare']:6.1f} µs   bare aiohttp")
    say(
        f"  guarded  {rate['guarded']:8,.0f}/s  {cpu['guarded']:6.1f} µs   "
        f"{cpu['guarded'] - cpu['bare']:+6.1f} µs  the guard and wire layer"
    )
    summed = cpu["wire"] + cpu["guarded"]
    say(
        f"  wire + guarded = {summed:.1f} µs if engine and request simply added up; real "
        f"{cpu['real']:.1f} µs ({cpu['real'] - summed:+.1f})"
    )
    say(
        f"  bare / (wire + bare) = {cpu['bare'] / (cpu['wire'] + cpu['bare']):.2f}: the "
        f"C={args.concurrency} ratio to bare aiohttp if the engine's work and a bare request "
        f"added up exactly (both CPU-bound; an estimate, not a measurement)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
