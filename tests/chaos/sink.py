"""A webhook sink for the chaos tests, run as its own OS process:

    SINK_SECRET=whsec_... python sink.py PORTFILE LOGFILE [--delay SECONDS]
        [--slow-every K --slow-delay SECONDS] [--lifetime SECONDS]

A minimal HTTP/1.1 keep-alive server on 127.0.0.1 (port 0; the port is written to PORTFILE once
it listens). Every request is checked against the Standard Webhooks signature and logged to
LOGFILE as one JSON line (webhook_id, valid, error, body, t) *before* it is answered, so a request
that reached the sink is on record even if the sender dies waiting for the answer. Answers
200 after ``--delay`` seconds (concurrent requests overlap), or ``--slow-delay`` seconds for
bodies whose ``subscriber`` is a multiple of ``--slow-every`` (stragglers, the same ones on every
redelivery). Exits by itself after
``--lifetime`` seconds so a crashed test run leaves nothing behind for long.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from dripdrop.channels.webhook_signing import WebhookVerificationError, verify_signature

MAX_BODY = 1_000_000


class Sink:
    def __init__(
        self, secret: str, log: TextIO, delay: float, slow_every: int, slow_delay: float
    ) -> None:
        self.secret = secret
        self.log = log
        self.delay = delay
        self.slow_every = slow_every
        self.slow_delay = slow_delay

    def delay_for(self, body: Any) -> float:
        if self.slow_every and isinstance(body, dict):
            subscriber = str(body.get("subscriber", ""))
            if subscriber.isdigit() and int(subscriber) % self.slow_every == 0:
                return self.slow_delay
        return self.delay

    def record(self, headers: dict[str, str], body: bytes) -> Any:
        """Log the request; returns its parsed body."""
        error = None
        try:
            verify_signature(self.secret, headers, body)
        except WebhookVerificationError as exc:
            error = str(exc)
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        line = {
            "webhook_id": headers.get("webhook-id"),
            "valid": error is None,
            "error": error,
            "body": parsed,
            "t": time.time(),
        }
        # One write of a whole line, flushed: the test may read the file at any moment.
        self.log.write(json.dumps(line) + "\n")
        self.log.flush()
        return parsed

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the sender went away (killed worker) or sent garbage: drop the connection
        finally:
            writer.close()

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        request_line = await reader.readline()
        if not request_line:
            return False
        method, _path, version = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY or "chunked" in headers.get("transfer-encoding", ""):
            await self.answer(writer, 413, {"error": "body too large or chunked"}, close=True)
            return False
        body = await reader.readexactly(length) if length else b""
        if method.upper() != "POST":
            await self.answer(writer, 405, {"error": "POST only"}, close=False)
            return True
        delay = self.delay_for(self.record(headers, body))
        if delay > 0:
            await asyncio.sleep(delay)
        close = headers.get("connection", "").lower() == "close" or version.strip() == "HTTP/1.0"
        await self.answer(writer, 200, {"ok": True}, close=close)
        return not close

    @staticmethod
    async def answer(
        writer: asyncio.StreamWriter, status: int, payload: Any, *, close: bool
    ) -> None:
        body = json.dumps(payload).encode()
        reason = {200: "OK", 405: "Method Not Allowed", 413: "Payload Too Large"}[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()


async def serve(args: argparse.Namespace) -> None:
    secret = os.environ["SINK_SECRET"]
    port_file: Path = args.port_file
    with args.log_file.open("a", encoding="utf-8") as log:
        sink = Sink(secret, log, args.delay, args.slow_every, args.slow_delay)
        server = await asyncio.start_server(sink.handle, "127.0.0.1", 0, backlog=512)
        port = server.sockets[0].getsockname()[1]
        # Written then renamed, so the test never reads a half-written port.
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(port_file)
        try:
            await asyncio.wait_for(server.serve_forever(), timeout=args.lifetime)
        except TimeoutError:
            pass  # asyncio.run cancels the open connections' handlers
        finally:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port_file", type=Path)
    parser.add_argument("log_file", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--slow-every", type=int, default=0)
    parser.add_argument("--slow-delay", type=float, default=0.0)
    parser.add_argument("--lifetime", type=float, default=300.0)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
