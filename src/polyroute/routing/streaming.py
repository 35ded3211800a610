"""Streaming through a route: the engine until the first chunk, then read on.

The engine serves a stream like any call — budgets, reservation, strategy,
retries, fallback — where a candidate succeeds when its first chunk arrives
(within ``first_chunk_timeout`` when set).  After that, chunks are relayed as
they come; a gap longer than ``idle_timeout`` is a failure.  What a failure
after the first chunk gets depends on ``stream_recovery``:

- ``continue`` (default): the next usable candidate continues the answer from
  the text already sent (``routing/recovery.py``); the caller sees one stream
  with one terminal event.  A stream that failed inside a tool call is not
  continued (its arguments cannot be spliced).
- ``buffer``: chunks are held until the candidate's stream completes; a
  failure restarts cleanly on the next candidate.
- ``off``: the failure is raised.

When nothing can recover, the failure is raised — never a clean end, because a
truncated answer must not look complete.  When the stream ends its ticket is
closed with the whole answer's usage and cost: the reservation settles and the
call leaves its one record, listing every attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field, replace

from polyroute.errors import (
    BadRequestError,
    PolyrouteError,
    ProviderError,
    ProviderTimeoutError,
    RouteExhaustedError,
)
from polyroute.providers.base import StreamChunk
from polyroute.routing.engine import Engine, Ticket
from polyroute.routing.recovery import (
    Overlap,
    accepts_prefill,
    continuation_messages,
    rejects_prefill,
)
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.triggers import trigger_for
from polyroute.routing.work import Opened, StreamWork, aclose_quietly
from polyroute.tokens import count_messages, count_text
from polyroute.types import Attempt, Envelope, Message, Usage


@dataclass(slots=True)
class _Segment:
    """What one candidate contributed to the answer (for usage and cost)."""

    candidate: Candidate
    messages: list[Message]
    text: list[str] = field(default_factory=list)
    usage: Usage | None = None

    def priced(self) -> tuple[Usage, float, bool]:
        info = self.candidate.info
        usage, estimated = self.usage, False
        if usage is None:
            usage = Usage(
                count_messages(self.messages, info.provider, info.name),
                count_text("".join(self.text), info.provider, info.name),
            )
            estimated = True
        return usage, info.cost(usage), estimated


class RouterStream:
    """Async iterable of ``StreamChunk``.  After it ends: ``envelope`` (usage,
    cost, attempts) and ``time_to_first_chunk``; ``model``/``provider`` are
    known once the first chunk has arrived."""

    def __init__(
        self, engine: Engine, work: StreamWork, route: Route, labels: Mapping[str, str]
    ) -> None:
        self.route = route
        self._engine = engine
        self._work = work
        self._labels = labels
        self.envelope: Envelope | None = None
        self.time_to_first_chunk: float | None = None
        self._iter: AsyncIterator[StreamChunk] | None = None

    @property
    def model(self) -> str | None:
        return self.envelope.model if self.envelope else None

    @property
    def provider(self) -> str | None:
        return self.envelope.provider if self.envelope else None

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        if self._iter is None:
            self._iter = self._run()
        return self._iter

    async def start(self) -> StreamChunk:
        """Wait for the first chunk (so fallback is over) and return it; the
        gateway calls this before it sends response headers."""
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Stop reading (the caller went away); the call is recorded as it stands."""
        if isinstance(self._iter, AsyncGenerator):
            await self._iter.aclose()

    # -- reading --------------------------------------------------------------------------

    async def _run(self) -> AsyncIterator[StreamChunk]:
        # The call is admitted (and counted in flight) when reading starts, not before:
        # a stream made and never read leaves nothing open.
        work, route = self._work, self.route
        ticket = self._engine.ticket("stream", route, self._labels)
        env = await self._engine.start(work, route, ticket)
        self.envelope = env
        self.time_to_first_chunk = ticket.elapsed()
        mode = work.stream_recovery or route.stream_recovery
        idle = work.idle_timeout or route.idle_timeout
        opened = await _take(work, env.model)
        segments = [_Segment(opened.candidate, work.messages)]
        tried = {env.model}
        sent: list[str] = []  # the text that reached the caller
        held: list[StreamChunk] = []  # buffer mode: the current candidate's chunks
        overlap: Overlap | None = None
        in_tool_call = False
        it = opened.chunks
        chunk: StreamChunk | None = opened.first
        chunk_id = (opened.first.raw or {}).get("id")
        failure: BaseException | None = None
        try:
            while True:
                if chunk is None:
                    try:
                        chunk = await _next(it, idle, segments[-1].candidate)
                    except ProviderError as exc:
                        await aclose_quietly(it)
                        if mode == "off" or (mode == "continue" and in_tool_call):
                            raise
                        resumed = await self._recover(
                            exc, env, segments, tried, "".join(sent) if mode == "continue" else ""
                        )
                        held.clear()
                        it, chunk = resumed.chunks, resumed.first
                        overlap = Overlap("".join(sent)) if sent and mode == "continue" else None
                        continue
                    if chunk is None:
                        break  # the adapter saw the terminal event
                seg = segments[-1]
                if len(segments) > 1 and chunk.native is not None:
                    # A continuation's own events (its message_start...) are not the
                    # caller's stream: only its text is, through the ingress's encoder.
                    chunk = replace(chunk, native=None)
                if chunk.usage is not None:
                    seg.usage = chunk.usage
                if chunk.skipped_events:
                    env.warnings.append(
                        f"{seg.candidate.info.id}: skipped {chunk.skipped_events} malformed "
                        "stream event(s)"
                    )
                    ticket.malformed_events += chunk.skipped_events
                if chunk.finish_reason:
                    env.finish_reason = chunk.finish_reason
                in_tool_call = in_tool_call or _has_tool_calls(chunk)
                seg.text.append(chunk.delta)
                out: StreamChunk | None = chunk
                if overlap is not None:
                    out = _trimmed(chunk, overlap.feed(chunk.delta, bool(chunk.finish_reason)))
                if out is not None and chunk_id is not None and out.raw is not None:
                    out.raw["id"] = chunk_id  # one stream, one id, whoever continued it
                if out is not None:
                    if mode == "buffer":
                        held.append(out)
                    else:
                        sent.append(out.delta)
                        yield out
                chunk = None
            for h in held:  # buffer mode: the answer is complete; release it
                sent.append(h.delta)
                yield h
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await aclose_quietly(it)
            self._settle(env, segments, "".join(sent), ticket, failure)

    def _settle(
        self,
        env: Envelope,
        segments: list[_Segment],
        text: str,
        ticket: Ticket,
        failure: BaseException | None,
    ) -> None:
        env.content = text
        total, cost, estimated = Usage(), 0.0, False
        for seg in segments:
            usage, seg_cost, est = seg.priced()
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens
            cost += seg_cost
            estimated = estimated or est
        if estimated:
            env.warnings.append("provider sent no usage; tokens estimated")
        env.usage, env.cost = total, cost
        ticket.finish(env, ttft=self.time_to_first_chunk, failure=failure)

    # -- recovery -------------------------------------------------------------------------

    async def _recover(
        self,
        exc: ProviderError,
        env: Envelope,
        segments: list[_Segment],
        tried: set[str],
        sent: str,
    ) -> Opened:
        """The next candidate's stream: continuing ``sent`` (or restarting cleanly when
        nothing was sent).  Raises, naming ``exc`` first, when none can."""
        failed = segments[-1].candidate
        _mark_failed(env, failed, exc)
        rt = self._engine.rt
        rt.cooldown.record_failure(failed.info.id, exc.retry_after, str(exc))
        rest = [c for c in self.route.candidates if c.info.id not in tried]
        if not rest:
            raise exc  # nobody else to ask: the failure as it came
        errors: list[BaseException] = [exc]
        for c in rest if sent else [None]:
            route = self._rest_route(rest) if c is None else self._one_route(c)
            forms = [False] if c is None else [accepts_prefill(c.info), False]
            for prefill in dict.fromkeys(forms):  # prefill first where accepted, then not
                msgs = (
                    self._work.messages
                    if c is None
                    else continuation_messages(self._work.messages, sent, prefill)
                )
                work = replace(self._work, messages=msgs, opened={})
                try:
                    resumed = await self._engine.resume(work, route)
                except BadRequestError as bad:
                    errors.append(bad)
                    env.attempts.append(_attempt(c or failed, bad))
                    if prefill and rejects_prefill(bad):
                        continue  # asked once more, with the instruction form
                    break
                except PolyrouteError as err:
                    errors.append(err)
                    env.attempts.extend(getattr(err, "attempts", []) or [_attempt(failed, err)])
                    break
                opened = await _take(work, resumed.model)
                tried.add(resumed.model)
                env.attempts.extend(resumed.attempts)
                segments.append(_Segment(opened.candidate, msgs))
                how = "restarted" if c is None else ("prefill" if prefill else "instruction")
                env.warnings.append(
                    f"stream recovered mid-answer: {failed.info.id} failed after "
                    f"{len(sent)} characters ({_trigger(exc)}); continued by "
                    f"{resumed.model} ({how})"
                )
                return opened
            if c is not None:
                tried.add(c.info.id)
        raise RouteExhaustedError(
            self.route.name,
            env.attempts,
            errors,
            reason=f"stream failed mid-answer ({exc}) and no candidate could continue it",
        ) from exc

    def _one_route(self, c: Candidate) -> Route:
        return replace(self.route, candidates=(c,), strategy="single", max_fallbacks=0)

    def _rest_route(self, rest: list[Candidate]) -> Route:
        strategy = "single" if len(rest) == 1 else "fallback"
        return replace(self.route, candidates=tuple(rest), strategy=strategy)


async def _next(
    it: AsyncIterator[StreamChunk], idle: float | None, c: Candidate
) -> StreamChunk | None:
    if idle is None:
        return await anext(it, None)
    try:
        async with asyncio.timeout(idle):
            return await anext(it, None)
    except TimeoutError:
        raise ProviderTimeoutError(
            f"stream stalled: no chunk for idle_timeout {idle}s",
            provider=c.info.provider,
            model=c.info.id,
        ) from None


async def _take(work: StreamWork, model: str) -> Opened:
    opened = work.opened.pop(model)
    for other in work.opened.values():  # a parallel race may have opened more than one
        await aclose_quietly(other.chunks)
    work.opened.clear()
    return opened


def _has_tool_calls(chunk: StreamChunk) -> bool:
    for choice in (chunk.raw or {}).get("choices") or ():
        if (choice.get("delta") or {}).get("tool_calls"):
            return True
    return False


def _trimmed(chunk: StreamChunk, text: str) -> StreamChunk | None:
    """``chunk`` with its text replaced by ``text`` (the part not already sent);
    None when nothing of it is left to send."""
    if text == chunk.delta:
        return chunk
    if not text and not chunk.finish_reason and chunk.usage is None:
        return None
    raw = dict(chunk.raw or {})
    choices = [dict(ch) for ch in raw.get("choices") or ()]
    for ch in choices:
        delta = dict(ch.get("delta") or {})
        delta["content"] = text
        ch["delta"] = delta
    raw["choices"] = choices
    return replace(chunk, delta=text, raw=raw)


def _trigger(exc: BaseException) -> str:
    trig = trigger_for(exc)
    return trig.value if trig else type(exc).__name__


def _mark_failed(env: Envelope, c: Candidate, exc: ProviderError) -> None:
    """The candidate's attempt succeeded at its first chunk; it failed after."""
    for a in reversed(env.attempts):
        if a.model == c.info.id and a.outcome == "success":
            a.outcome, a.trigger, a.error = "error", _trigger(exc), str(exc)[:500]
            a.status = exc.status
            return
    env.attempts.append(_attempt(c, exc))


def _attempt(c: Candidate, exc: BaseException) -> Attempt:
    status = exc.status if isinstance(exc, ProviderError) else None
    return Attempt(
        c.info.id, c.info.provider, "error", trigger=_trigger(exc), status=status, error=str(exc)
    )
