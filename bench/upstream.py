"""A fast fake OpenAI chat-completions upstream for the benchmarks.

A raw ``asyncio.Protocol`` HTTP/1.1 server (uvloop when installed) with
keep-alive and pre-rendered answers: it parses only the request line, the
framing headers (Content-Length, Transfer-Encoding, Connection) and the JSON
body's ``model``, ``stream`` and ``stream_options.include_usage``.  On this
2-core machine it answers several times faster than aiohttp.web (see
bench/README.md), so it is never the bottleneck of a gateway measurement.

Endpoints: ``POST .../chat/completions`` (plain and SSE streaming, any path
prefix), ``GET .../models``, ``GET /__stats`` (requests served, for checking
that a gateway really called the upstream).

Latency and faults, globally or per model (the model name carries them, so one
upstream serves every phase):

* ``--latency-ms 50`` or a model name ending ``-lat50`` -> the answer is sent
  50 ms after the request arrived (a timer, no thread, no sleep per request);
* ``--fault-rate 0.1`` or a model name containing ``-fault10`` -> 10 % of
  answers are ``500`` with OpenAI's error shape.

``python bench/upstream.py --port 9100 [--latency-ms 0] [--fault-rate 0] [--workers 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import sys
from typing import Any, cast

import orjson

CONTENT_PARTS = ("Hello", " from", " the", " bench", " upstream", ".")
CONTENT = "".join(CONTENT_PARTS)
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
CREATED = 1_700_000_000
_LAT = re.compile(r"-lat(\d+)")
_FAULT = re.compile(r"-fault(\d+)")
MAX_HEADER = 64 * 1024


def _http(status: str, ctype: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: req-bench\r\n{extra}\r\n"
    )
    return head.encode() + body


def render_plain(model: str) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    return _http("200 OK", "application/json", orjson.dumps(body))


def render_stream(model: str, include_usage: bool) -> bytes:
    """The whole SSE answer in one chunked-encoding write: role chunk, content
    chunks, finish chunk, the usage chunk when asked for, ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        obj: dict[str, Any] = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage:
            obj["usage"] = usage
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": part}) for part in CONTENT_PARTS]
    events.append(chunk({}, finish="stop"))
    if include_usage:
        events.append(chunk({}, usage=USAGE))
    events.append(b"data: [DONE]\n\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        "transfer-encoding: chunked\r\nx-request-id: req-bench\r\n\r\n"
    )
    return head.encode() + body


FAULT = _http(
    "500 Internal Server Error",
    "application/json",
    b'{"error":{"message":"injected fault","type":"server_error","code":null}}',
)
MODELS = _http("200 OK", "application/json", b'{"object":"list","data":[]}')
NOT_FOUND = _http("404 Not Found", "application/json", b'{"error":{"message":"not found"}}')
BAD = _http(
    "400 Bad Request",
    "application/json",
    b'{"error":{"message":"bad request","type":"invalid_request_error"}}',
    "connection: close\r\n",
)


class Upstream:
    """Settings and pre-rendered answers shared by every connection."""

    def __init__(self, latency_ms: float, fault_rate: float, seed: int = 0) -> None:
        self.latency = latency_ms / 1000.0
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        self.served = 0
        self._answers: dict[tuple[str, bool, bool], bytes] = {}
        self._model_opts: dict[str, tuple[float, float]] = {}

    def model_opts(self, model: str) -> tuple[float, float]:
        opts = self._model_opts.get(model)
        if opts is None:
            lat = _LAT.search(model)
            fault = _FAULT.search(model)
            opts = (
                int(lat.group(1)) / 1000.0 if lat else self.latency,
                int(fault.group(1)) / 100.0 if fault else self.fault_rate,
            )
            if len(self._model_opts) < 10_000:
                self._model_opts[model] = opts
        return opts

    def answer(self, model: str, stream: bool, include_usage: bool) -> bytes:
        key = (model, stream, include_usage)
        data = self._answers.get(key)
        if data is None:
            data = render_stream(model, include_usage) if stream else render_plain(model)
            if len(self._answers) < 10_000:
                self._answers[key] = data
        return data

    def stats(self) -> bytes:
        return _http("200 OK", "application/json", orjson.dumps({"served": self.served}))


class Conn(asyncio.Protocol):
    __slots__ = ("buf", "closed", "transport", "up")

    def __init__(self, up: Upstream) -> None:
        self.up = up
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER:
                    self._send(BAD, close=True)
                return
            head = bytes(buf[:end]).split(b"\r\n")
            method, _, rest = head[0].partition(b" ")
            path = rest.partition(b" ")[0]
            length = 0
            chunked = False
            close = head[0].endswith(b"HTTP/1.0")
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    v = value.strip().lower()
                    close = v == b"close" or (close and v != b"keep-alive")
            start = end + 4
            if chunked:
                decoded = _dechunk(buf, start)
                if decoded is None:
                    return
                body, consumed = decoded
            else:
                if len(buf) < start + length:
                    return
                body, consumed = bytes(buf[start : start + length]), start + length
            del buf[:consumed]
            self._handle(method, path, body, close)
            if self.closed:
                return

    def _handle(self, method: bytes, path: bytes, body: bytes, close: bool) -> None:
        up = self.up
        if method == b"POST" and path.endswith(b"/chat/completions"):
            try:
                req = orjson.loads(body)
                model = str(req.get("model") or "bench")
                stream = bool(req.get("stream"))
                opts = req.get("stream_options")
                usage = stream and isinstance(opts, dict) and bool(opts.get("include_usage"))
            except (orjson.JSONDecodeError, AttributeError):
                self._send(BAD, close=True)
                return
            up.served += 1
            latency, fault_rate = up.model_opts(model)
            data = (
                FAULT
                if fault_rate and up.rng.random() < fault_rate
                else up.answer(model, stream, usage)
            )
            if latency > 0:
                asyncio.get_running_loop().call_later(latency, self._send, data, close)
            else:
                self._send(data, close)
        elif method == b"GET" and path.endswith(b"/models"):
            self._send(MODELS, close)
        elif method == b"GET" and path == b"/__stats":
            self._send(up.stats(), close)
        else:
            self._send(NOT_FOUND, close)

    def _send(self, data: bytes, close: bool = False) -> None:
        t = self.transport
        if t is None or self.closed or t.is_closing():
            return
        t.write(data)
        if close:
            t.close()
            self.closed = True


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked request body starting at ``pos``; None until complete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            # Skip trailers (usually none): the body ends at an empty line.
            while trailer_end != pos:
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
            return bytes(out), pos + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is in the project's venv
        return asyncio.new_event_loop()


def serve(host: str, port: int, latency_ms: float, fault_rate: float, reuse_port: bool) -> None:
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    up = Upstream(latency_ms, fault_rate, seed=os.getpid())
    sock = _listen(host, port, reuse_port)
    server = loop.run_until_complete(loop.create_server(lambda: Conn(up), sock=sock))
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(f"upstream listening on http://{host}:{port} pid={os.getpid()}", flush=True)
    try:
        loop.run_until_complete(stop)
    finally:
        server.close()
        loop.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added before every answer")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of answers that are 500")
    p.add_argument("--workers", type=int, default=1, help="SO_REUSEPORT processes")
    a = p.parse_args(argv)
    if a.workers <= 1:
        serve(a.host, a.port, a.latency_ms, a.fault_rate, reuse_port=False)
        return 0
    children: list[int] = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            serve(a.host, a.port, a.latency_ms, a.fault_rate, reuse_port=True)
            os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for c in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(c, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for c in children:
        os.waitpid(c, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
