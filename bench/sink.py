"""A loopback HTTP/1.1 sink for ``bench/dispatch.py``: answers every request 200, counts them.

A raw ``asyncio.Protocol`` (no framework, no per-request task) so the sink stays far cheaper per
request than any client measured against it. Keep-alive by default; requests are handled in
order, so pipelined requests on one connection are answered in order too. Bodies must carry a
``Content-Length`` (chunked bodies get 501 and the connection is closed, so a client that sends
them shows up as a failure instead of a skewed figure).

Answers: ``POST /v3/{domain}/messages`` gets Mailgun's shape
(``{"id": "<...@mg>", "message": "Queued. Thank you."}``); anything else gets ``{"ok":true}``.
Two control paths are not counted: ``GET /_stats`` returns the counters as JSON and
``POST /_reset`` returns them and starts over. The counters: requests, the connections that
carried them, request head and body bytes, the first request (to compare clients' requests)
and the sink process's CPU seconds.

Run: ``python bench/sink.py [--port 0]``; it prints ``PORT <n>`` once listening. From Python,
``with Sink() as sink: sink.url, sink.stats(), sink.reset()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

OK = b'{"ok":true}'
HEAD = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
MAX_HEAD = 64 * 1024


def response(status: int, reason: bytes, body: bytes) -> bytes:
    return HEAD % (status, reason, len(body)) + body


OK_RESPONSE = response(200, b"OK", OK)


class Counters:
    """What the sink has seen since the last reset."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.head_bytes = 0
        self.body_bytes = 0
        self.first_head = ""
        self.first_body = ""

    def snapshot(self) -> dict[str, Any]:
        return {**vars(self), "cpu": time.process_time()}

    def reset(self) -> dict[str, Any]:
        """The snapshot, then zeros (in place: every connection holds this object)."""
        seen = self.snapshot()
        vars(self).update(vars(Counters()))
        return seen


class SinkProtocol(asyncio.Protocol):
    """One connection: parse complete requests out of the buffer, answer them in order."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.counted = False  # connections count once they carry a counted request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small answers must not wait for Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out: list[bytes] = []
        close = False
        while not close:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                close = len(self.buf) > MAX_HEAD
                break
            head = bytes(self.buf[:end])
            lower = head.lower()
            if b"\r\ntransfer-encoding:" in lower:
                out.append(response(501, b"Not Implemented", b'{"error":"chunked"}'))
                close = True
                break
            length = content_length(lower)
            total = end + 4 + length
            if len(self.buf) < total:
                break  # the body is still arriving
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            out.append(self.answer(head, body))
            close = b"\r\nconnection: close" in lower
        assert self.transport is not None
        if out:  # one write for every answer this read completed (pipelining)
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()

    def answer(self, head: bytes, body: bytes) -> bytes:
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0]
        if path.startswith(b"/_"):
            return self.control(method, path)
        c = self.counters
        if not self.counted:
            self.counted = True
            c.connections += 1
        c.requests += 1
        c.head_bytes += len(head) + 4
        c.body_bytes += len(body)
        if not c.first_head:
            c.first_head = head.decode("latin-1")
            c.first_body = body[:4096].decode("latin-1")
        if method == b"POST" and path.startswith(b"/v3/") and path.endswith(b"/messages"):
            answer = b'{"id":"<%d.%d@mg>","message":"Queued. Thank you."}' % (
                time.time_ns(),
                c.requests,
            )
            return response(200, b"OK", answer)
        return OK_RESPONSE

    def control(self, method: bytes, path: bytes) -> bytes:
        if path == b"/_stats":
            return response(200, b"OK", json.dumps(self.counters.snapshot()).encode())
        if path == b"/_reset" and method == b"POST":
            return response(200, b"OK", json.dumps(self.counters.reset()).encode())
        return response(404, b"Not Found", b'{"error":"unknown control path"}')


def content_length(lower_head: bytes) -> int:
    at = lower_head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + len(b"\r\ncontent-length:")
    stop = lower_head.find(b"\r\n", start)
    return int(lower_head[start:] if stop < 0 else lower_head[start:stop])


async def serve(host: str, port: int) -> None:
    counters = Counters()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SinkProtocol(counters), host, port, backlog=1024, reuse_address=True
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


class Sink:
    """The sink in a child process (its own interpreter, so its CPU is not the client's)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Sink:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--host", self.host, "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.__exit__()
            raise RuntimeError(f"sink did not start: {line!r}")
        self.url = f"http://{self.host}:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def _call(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_stats")

    def reset(self) -> dict[str, Any]:
        """The counters since the previous reset; they start over."""
        return self._call("POST", "/_reset")


def main() -> None:
    ap = argparse.ArgumentParser(description="loopback HTTP/1.1 sink")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
