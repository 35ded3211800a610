"""Load generator for OpenAI chat completions: open loop, closed loop, streaming.

A raw ``asyncio.Protocol`` HTTP/1.1 client (uvloop when installed) with
keep-alive connections and one pre-rendered request: aiohttp's client costs
several times more CPU per request, and on this 2-core machine the load
generator shares its core with the fake upstream (see bench/README.md).

Modes:

* open loop (``--rate R``): request i is *intended* at ``t0 + i/R``; its latency
  is measured from that intended time, not from when it was actually written,
  so a gateway that falls behind shows its queueing (no coordinated omission).
  Requests wait in the client for a free connection (up to ``--max-conns``
  open at once); that wait counts.  Requests still unanswered when the drain
  time ends are reported as ``unfinished`` errors and enter the percentiles
  with their latency so far (a lower bound), so a saturated target cannot look
  fast by dropping its slowest answers.
* closed loop (``--closed N``): N connections, each sends its next request as
  soon as the previous answer is complete; gives the maximum throughput.
* ``--stream``: the request asks for SSE; ``ttfb_ms`` is the time to the first
  body byte (the first event), and an answer counts as ok only if it ends with
  ``[DONE]``.

Output: one JSON object (``--json``) or a short text summary.

``python bench/loadgen.py --url http://127.0.0.1:9100/v1/chat/completions --rate 500 --duration 10``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

DEFAULT_PROMPT = "Say hello in five words."


# -- request and response ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    request: bytes

    @classmethod
    def build(
        cls,
        url: str,
        model: str,
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        prompt: str = DEFAULT_PROMPT,
        max_tokens: int = 16,
    ) -> Target:
        u = urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"only http:// URLs are supported: {url}")
        port = u.port or 80
        body_obj: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
        }
        if stream:
            body_obj["stream"] = True
        body = orjson.dumps(body_obj)
        h = {
            "Host": f"{u.hostname}:{port}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "Authorization": "Bearer bench",
            "Content-Length": str(len(body)),
        }
        for k, v in (headers or {}).items():
            h = {kk: vv for kk, vv in h.items() if kk.lower() != k.lower()}
            h[k] = v
        head = f"POST {u.path or '/'} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        return cls(u.hostname, port, head.encode() + b"\r\n" + body)


class ResponseError(Exception):
    pass


class Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, float]] | None = None
        self.lost = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.head_done = False
        self.length = -1
        self.chunked = False
        self.close_after = False
        self.first_byte = 0.0
        self.body_tail = b""
        self.pos = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        w = self.waiter
        if w is not None and not w.done():
            if self.head_done and self.length < 0 and not self.chunked:
                self._finish()  # body delimited by the close
            else:
                w.set_exception(ConnectionError("connection closed mid-answer"))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, float]]:
        assert self.transport is not None
        self._reset()
        self.buf.clear()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            return
        buf = self.buf
        buf += data
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).split(b"\r\n")
            parts = head[0].split(b" ", 2)
            self.status = int(parts[1])
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self.length = int(value)
                elif name == b"transfer-encoding":
                    self.chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    self.close_after = value.strip().lower() == b"close"
            self.head_done = True
            self.pos = end + 4
        if len(buf) > self.pos and not self.first_byte:
            self.first_byte = time.perf_counter()
        if self.chunked:
            self._chunks()
        elif self.length >= 0 and len(buf) - self.pos >= self.length:
            self.body_tail = bytes(buf[self.pos : self.pos + self.length][-64:])
            self._finish()

    def _chunks(self) -> None:
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                return
            size = int(bytes(buf[self.pos : eol]).split(b";")[0], 16)
            if size == 0:
                if buf.find(b"\r\n", eol + 2) < 0:
                    return
                self._finish()
                return
            if len(buf) < eol + 2 + size + 2:
                return
            self.body_tail = (self.body_tail + bytes(buf[eol + 2 : eol + 2 + size]))[-64:]
            self.pos = eol + 2 + size + 2

    def _finish(self) -> None:
        w = self.waiter
        if w is None or w.done():
            return
        if self.length < 0 and not self.chunked:
            self.body_tail = bytes(self.buf[self.pos :][-64:])
        if self.stream and self.status == 200 and b"[DONE]" not in self.body_tail:
            w.set_exception(ResponseError("stream ended without [DONE]"))
        else:
            w.set_result((self.status, self.first_byte))
        if self.close_after and self.transport is not None:
            self.transport.close()
            self.lost = True


class Pool:
    """Idle keep-alive connections; opens new ones up to ``max_conns``."""

    def __init__(self, target: Target, stream: bool, max_conns: int) -> None:
        self.target = target
        self.stream = stream
        self.max_conns = max_conns
        self.idle: list[Conn] = []
        self.open = 0
        self.waiters: list[asyncio.Future[Conn]] = []

    async def _connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(
            lambda: Conn(self.stream), self.target.host, self.target.port
        )
        return proto

    async def acquire(self) -> Conn:
        while self.idle:
            c = self.idle.pop()
            if not c.lost:
                return c
            self.open -= 1
        if self.open < self.max_conns:
            self.open += 1
            try:
                return await self._connect()
            except BaseException:
                self.open -= 1
                raise
        fut: asyncio.Future[Conn] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        return await fut

    def release(self, c: Conn, broken: bool = False) -> None:
        if broken or c.lost:
            if c.transport is not None:
                c.transport.close()
            self.open -= 1
            if self.waiters:  # a broken connection frees a slot for a waiter
                fut = self.waiters.pop(0)
                task = asyncio.ensure_future(self._connect())
                self.open += 1
                task.add_done_callback(lambda t: self._hand_over(t, fut))
            return
        while self.waiters:
            fut = self.waiters.pop(0)
            if not fut.done():
                fut.set_result(c)
                return
        self.idle.append(c)

    def _hand_over(self, task: asyncio.Task[Conn], fut: asyncio.Future[Conn]) -> None:
        if task.exception() is not None:
            self.open -= 1
            if not fut.done():
                fut.set_exception(task.exception())  # type: ignore[arg-type]
        elif not fut.done():
            fut.set_result(task.result())
        else:
            self.release(task.result())

    async def prewarm(self, n: int) -> None:
        n = min(n, self.max_conns) - self.open - len(self.idle)
        if n <= 0:
            return
        self.open += n
        conns = await asyncio.gather(*(self._connect() for _ in range(n)))
        self.idle.extend(conns)

    def close(self) -> None:
        for c in self.idle:
            if c.transport is not None:
                c.transport.close()
        self.idle.clear()


# -- results --------------------------------------------------------------------------


@dataclass(slots=True)
class Samples:
    latencies: list[float] = field(default_factory=list)  # seconds
    ttfb: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    ok: int = 0

    def add(self, latency: float, ttfb: float | None = None) -> None:
        self.ok += 1
        self.latencies.append(latency)
        if ttfb is not None:
            self.ttfb.append(ttfb)

    def fail(self, kind: str, latency: float | None = None) -> None:
        self.errors[kind] += 1
        if latency is not None:
            self.latencies.append(latency)


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    s = sorted(values)

    def pct(p: float) -> float:
        # nearest-rank percentile
        k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
        return round(s[k] * 1000.0, 3)

    return {
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "max": round(s[-1] * 1000.0, 3),
        "mean": round(sum(s) / len(s) * 1000.0, 3),
    }


def summary(
    mode: str, s: Samples, elapsed: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    errors = sum(s.errors.values())
    out: dict[str, Any] = {
        "mode": mode,
        "count": s.ok + errors,
        "ok": s.ok,
        "errors": errors,
        "error_kinds": dict(s.errors),
        "elapsed_s": round(elapsed, 3),
        "rps": round(s.ok / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": percentiles(s.latencies),
        "ttfb_ms": percentiles(s.ttfb),
    }
    out.update(extra or {})
    return out


# -- the two loops ----------------------------------------------------------------------


async def _one(
    pool: Pool, target: Target, intended: float, samples: Samples | None, timeout: float
) -> None:
    conn: Conn | None = None
    broken = False
    try:
        conn = await pool.acquire()
        status, first = await asyncio.wait_for(conn.send(target.request), timeout)
        done = time.perf_counter()
        if samples is not None:
            if status == 200:
                samples.add(done - intended, (first - intended) if first else None)
            else:
                samples.fail(f"http_{status}", done - intended)
    except TimeoutError:
        broken = True
        if samples is not None:
            samples.fail("timeout", time.perf_counter() - intended)
    except Exception as exc:  # connection errors, bad framing: counted, never fatal
        broken = True
        if samples is not None:
            samples.fail(type(exc).__name__, time.perf_counter() - intended)
    finally:
        if conn is not None:
            pool.release(conn, broken)


async def open_loop(
    target: Target,
    rate: float,
    duration: float,
    *,
    stream: bool = False,
    warmup: float = 1.0,
    max_conns: int = 512,
    timeout: float = 30.0,
    drain: float = 10.0,
) -> dict[str, Any]:
    pool = Pool(target, stream, max_conns)
    await pool.prewarm(max(4, min(64, int(rate * 0.02) + 4)))
    pending: set[asyncio.Task[None]] = set()
    samples = Samples()
    intended_of: dict[asyncio.Task[None], float] = {}

    async def run(seconds: float, record: bool) -> None:
        n = int(rate * seconds)
        start = time.perf_counter() + 0.01
        i = 0
        while i < n:
            now = time.perf_counter()
            due = start + i / rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while i < n and start + i / rate <= now:
                intended = start + i / rate
                t = asyncio.ensure_future(
                    _one(pool, target, intended, samples if record else None, timeout)
                )
                pending.add(t)
                if record:
                    intended_of[t] = intended
                t.add_done_callback(pending.discard)
                i += 1

    if warmup > 0:
        await run(warmup, record=False)
    t0 = time.perf_counter()
    await run(duration, record=True)
    sent_for = time.perf_counter() - t0
    recorded = [t for t in pending if t in intended_of]
    if recorded:
        await asyncio.wait(recorded, timeout=drain)
    unfinished = 0
    cutoff = time.perf_counter()
    for t in list(pending):
        if t in intended_of and not t.done():
            unfinished += 1
            samples.fail("unfinished", cutoff - intended_of[t])
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    pool.close()
    return summary(
        "open",
        samples,
        max(sent_for, duration),
        {
            "offered_rps": rate,
            "duration_s": duration,
            "unfinished": unfinished,
            "max_conns_opened": pool.open,
        },
    )


async def closed_loop(
    target: Target,
    conns: int,
    duration: float,
    *,
    stream: bool = False,
    warmup: float = 1.0,
    timeout: float = 30.0,
) -> dict[str, Any]:
    pool = Pool(target, stream, conns)
    await pool.prewarm(conns)
    samples = Samples()
    state = {"record": False, "stop": False}

    async def worker() -> None:
        while not state["stop"]:
            rec = samples if state["record"] else None
            await _one(pool, target, time.perf_counter(), rec, timeout)

    workers = [asyncio.ensure_future(worker()) for _ in range(conns)]
    await asyncio.sleep(warmup)
    state["record"] = True
    t0 = time.perf_counter()
    await asyncio.sleep(duration)
    state["stop"] = True
    elapsed = time.perf_counter() - t0
    # Answers still in flight at the end are not counted: rps = answers within the window.
    ok_at_end, lat_at_end = samples.ok, len(samples.latencies)
    errs_at_end = Counter(samples.errors)
    await asyncio.wait(workers, timeout=timeout)
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    samples.ok, samples.errors = ok_at_end, errs_at_end
    del samples.latencies[lat_at_end:]
    pool.close()
    return summary("closed", samples, elapsed, {"connections": conns, "duration_s": duration})


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


def run(coro: Any) -> dict[str, Any]:
    loop = _new_loop()
    try:
        result: dict[str, Any] = loop.run_until_complete(coro)
        return result
    finally:
        loop.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="http://host:port/v1/chat/completions")
    p.add_argument("--model", default="bench")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--rate", type=float, help="open loop: offered requests per second")
    g.add_argument("--closed", type=int, metavar="N", help="closed loop with N connections")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--stream", action="store_true", help="SSE; reports time to first byte")
    p.add_argument("--max-conns", type=int, default=512, help="open loop connection cap")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--drain", type=float, default=10.0, help="open loop: wait after sending")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    headers = {}
    for h in a.header:
        k, _, v = h.partition(":")
        headers[k.strip()] = v.strip()
    target = Target.build(a.url, a.model, stream=a.stream, headers=headers)
    if a.rate is not None:
        res = run(
            open_loop(
                target,
                a.rate,
                a.duration,
                stream=a.stream,
                warmup=a.warmup,
                max_conns=a.max_conns,
                timeout=a.timeout,
                drain=a.drain,
            )
        )
    else:
        res = run(
            closed_loop(
                target, a.closed, a.duration, stream=a.stream, warmup=a.warmup, timeout=a.timeout
            )
        )
    res.update({"url": a.url, "model": a.model, "stream": a.stream})
    if a.json:
        print(orjson.dumps(res).decode())
    else:
        lat = res["latency_ms"] or {}
        print(
            f"{res['mode']}: {res['ok']} ok, {res['errors']} errors {res['error_kinds']}, "
            f"{res['rps']} rps; latency ms p50 {lat.get('p50')} p90 {lat.get('p90')} "
            f"p99 {lat.get('p99')} max {lat.get('max')}"
            + (f"; ttfb ms {res['ttfb_ms']}" if res["ttfb_ms"] else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
