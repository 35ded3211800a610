"""Response cache: request keys, what may be cached, the memory LRU + TTL, the façade."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
import pytest

from polyroute.cache import Limits, MemoryCache, ResponseCache, cache_key, cacheable
from polyroute.cache.envelope import envelope_from_cache
from polyroute.clock import ManualClock
from polyroute.config.schema import Cache
from polyroute.types import Attempt, Envelope, Usage

# Seed 003's CACHE_CONFIG, verbatim.
CACHE_CONFIG = {
    "pattern_analysis": {"ttl": 3600, "max_size": 1000},
    "template_selection": {"ttl": 86400, "max_size": 500},
    "modification_map": {"ttl": 86400, "max_size": 100},
}

MESSAGES = [
    {"role": "system", "content": "You classify."},
    {"role": "user", "content": "play a funk groove"},
]


# -- keys --------------------------------------------------------------------------------


def test_key_is_stable_across_dict_order_and_runs() -> None:
    a = cache_key("tier:fast", MESSAGES, {"temperature": 0, "max_tokens": 256})
    b = cache_key(
        "tier:fast",
        [{"content": m["content"], "role": m["role"]} for m in MESSAGES],
        {"max_tokens": 256, "temperature": 0},
    )
    assert a == b
    # Golden value: keys outlive processes in Redis, so the layout must not drift
    # by accident (bump key.KEY_VERSION when it changes on purpose).
    assert a == "31e4a6c3341b37893b95910b2f059fcb"


def test_key_canonicalizes_nested_schemas() -> None:
    tool1 = {"type": "function", "function": {"name": "f", "parameters": {"a": 1, "b": 2}}}
    tool2 = {"function": {"parameters": {"b": 2, "a": 1}, "name": "f"}, "type": "function"}
    assert cache_key("r", MESSAGES, {"tools": [tool1]}) == cache_key(
        "r", MESSAGES, {"tools": [tool2]}
    )


@pytest.mark.parametrize(
    ("route", "messages", "params"),
    [
        ("tier:balanced", MESSAGES, {"temperature": 0}),  # route
        ("tier:fast", [*MESSAGES[:1], {"role": "user", "content": "play a funk groove "}], {}),
        ("tier:fast", [MESSAGES[1], MESSAGES[0]], {"temperature": 0}),  # message order
        ("tier:fast", MESSAGES, {"temperature": 0.2}),
        ("tier:fast", MESSAGES, {"temperature": 0, "max_tokens": 100}),
        ("tier:fast", MESSAGES, {"temperature": 0, "seed": 7}),
        ("tier:fast", MESSAGES, {"temperature": 0, "response_format": {"type": "json_object"}}),
        ("tier:fast", MESSAGES, {"temperature": 0, "some_new_param": True}),  # unknown: kept
    ],
)
def test_key_changes_with_what_changes_the_answer(
    route: str, messages: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    base = cache_key("tier:fast", MESSAGES, {"temperature": 0})
    assert cache_key(route, messages, params) != base


def test_key_depends_on_models_and_extra() -> None:
    base = cache_key("tier:fast", MESSAGES, {"temperature": 0}, models=["gpt-4o-mini"])
    assert base != cache_key("tier:fast", MESSAGES, {"temperature": 0}, models=["gpt-4o"])
    assert base != cache_key(
        "tier:fast", MESSAGES, {"temperature": 0}, models=["gpt-4o-mini"], extra={"accept": 1}
    )


def test_key_ignores_what_does_not_change_the_answer() -> None:
    base = cache_key("tier:fast", MESSAGES, {"temperature": 0, "stop": ["\n"]})
    same = cache_key(
        "tier:fast",
        MESSAGES,
        {
            "temperature": 0.0,  # int and float spell the same temperature
            "stop": "\n",  # one stop string is a one-item list
            "n": 1,  # the default
            "top_p": None,  # unset
            "user": "u-42",
            "stream": False,
            "stream_options": {"include_usage": True},
            "metadata": {"product_type": "landing"},
            "timeout": 12.0,
            "service_tier": "auto",
        },
    )
    assert same == base


def test_key_refuses_values_without_json_form() -> None:
    with pytest.raises(TypeError, match="cache key"):
        cache_key("r", MESSAGES, {"logit_bias": object()})


# -- what may be cached ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "allow", "opt_out", "expected"),
    [
        ({"temperature": 0}, False, False, True),
        ({"temperature": 0.0, "top_p": 0.5}, False, False, True),
        ({"temperature": 0}, False, True, False),  # opted out
        ({"temperature": 0}, True, True, False),  # opt-out beats the route
        ({}, False, False, False),  # unset = provider default 1.0 = sampling
        ({"temperature": None}, False, False, False),
        ({"temperature": 0.7}, False, False, False),
        ({"temperature": 0.7}, True, False, True),  # the route says so
        ({}, True, False, True),
        ({"temperature": 0, "n": 3}, False, False, False),  # several samples asked for
        ({"temperature": 0, "n": 3}, True, False, True),
        ({"temperature": 0, "n": 1}, False, False, True),
        ({"temperature": "0"}, False, False, False),  # not a number: do not guess
    ],
)
def test_cacheable(params: dict[str, Any], allow: bool, opt_out: bool, expected: bool) -> None:
    assert cacheable(params, allow_nonzero_temperature=allow, opt_out=opt_out) is expected


# -- memory backend ----------------------------------------------------------------------


def _mem(clock: ManualClock, ttl: float = 60, size: int = 3, **spaces: Limits) -> MemoryCache:
    return MemoryCache(clock, Limits(ttl=ttl, max_size=size), spaces)


def test_memory_ttl_expiry() -> None:
    clock = ManualClock()
    m = _mem(clock, ttl=10)
    m.set_now("ns", "k", b"v")
    clock.advance(9.999)
    assert m.get_now("ns", "k") == b"v"
    clock.advance(0.001)  # exactly at expiry: gone
    assert m.get_now("ns", "k") is None
    assert m.size("ns") == 0  # dropped on read, not just hidden


def test_memory_ttl_override_per_entry() -> None:
    clock = ManualClock()
    m = _mem(clock, ttl=10)
    m.set_now("ns", "short", b"1", ttl=1)
    m.set_now("ns", "long", b"2", ttl=100)
    clock.advance(50)
    assert m.get_now("ns", "short") is None
    assert m.get_now("ns", "long") == b"2"


def test_memory_lru_eviction() -> None:
    m = _mem(ManualClock(), size=3)
    for k in "abc":
        m.set_now("ns", k, k.encode())
    assert m.get_now("ns", "a") == b"a"  # a is now the most recently used
    m.set_now("ns", "d", b"d")
    assert m.size("ns") == 3
    assert m.get_now("ns", "b") is None  # least recently used went
    assert [m.get_now("ns", k) for k in "acd"] == [b"a", b"c", b"d"]


def test_memory_overwrite_refreshes_without_growing() -> None:
    clock = ManualClock()
    m = _mem(clock, ttl=10, size=2)
    m.set_now("ns", "a", b"1")
    m.set_now("ns", "b", b"1")
    clock.advance(8)
    m.set_now("ns", "a", b"2")  # rewritten: new TTL, most recent
    m.set_now("ns", "c", b"3")  # evicts b, the least recent
    clock.advance(5)  # 13 s after b and the first a; 5 s after the new a
    assert m.get_now("ns", "a") == b"2"
    assert m.get_now("ns", "b") is None


def test_memory_sweeps_expired_front_on_write() -> None:
    clock = ManualClock()
    m = _mem(clock, ttl=1, size=10)
    for k in "abc":
        m.set_now("ns", k, b"x")
    clock.advance(2)
    m.set_now("ns", "d", b"y")
    assert m.size("ns") == 1  # the expired a, b, c were at the front and went


async def test_memory_delete_and_clear() -> None:
    m = _mem(ManualClock())
    await m.set("a", "k", b"1")
    await m.set("b", "k", b"2")
    await m.delete("a", "k")
    assert await m.get("a", "k") is None
    await m.clear("b")
    assert await m.get("b", "k") is None
    await m.set("c", "k", b"3")
    await m.clear()
    assert await m.get("c", "k") is None
    await m.close()


def test_seed_003_namespaces_have_their_own_limits() -> None:
    clock = ManualClock()
    cache = ResponseCache.from_config(
        Cache(enabled=True, ttl=60, max_entries=5, namespaces=CACHE_CONFIG), "memory://", clock
    )
    assert cache is not None
    mem = cache.backend
    assert isinstance(mem, MemoryCache)
    assert mem.limits("pattern_analysis") == Limits(3600, 1000)
    assert mem.limits("template_selection") == Limits(86400, 500)
    assert mem.limits("modification_map") == Limits(86400, 100)

    for i in range(150):
        mem.set_now("modification_map", f"k{i}", b"x")
        mem.set_now("template_selection", f"k{i}", b"x")
    assert mem.size("modification_map") == 100
    assert mem.size("template_selection") == 150  # under its 500
    assert mem.get_now("modification_map", "k49") is None  # the oldest 50 went
    assert mem.get_now("modification_map", "k50") == b"x"

    mem.set_now("pattern_analysis", "k", b"x")
    clock.advance(3601)
    assert mem.get_now("pattern_analysis", "k") is None  # 1 h
    assert mem.get_now("template_selection", "k149") == b"x"  # 1 day
    clock.advance(86400)
    assert mem.get_now("template_selection", "k149") is None


def test_undeclared_namespace_uses_default_limits() -> None:
    cache = ResponseCache.from_config(
        Cache(enabled=True, namespaces=CACHE_CONFIG), "memory://", ManualClock()
    )
    assert cache is not None
    assert cache.namespace("pattern_analysis") == "pattern_analysis"
    assert cache.namespace("whatever-a-client-sent") == "default"
    assert cache.namespace(None) == "default"


def test_from_config_disabled_and_redis_url() -> None:
    assert ResponseCache.from_config(Cache(), "memory://", ManualClock()) is None
    pytest.importorskip("redis", reason="redis package not installed")
    from polyroute.cache.redis import RedisCache

    cache = ResponseCache.from_config(
        Cache(enabled=True), "redis://127.0.0.1:6379/0", ManualClock()
    )  # no connection is made until first use
    assert cache is not None and isinstance(cache.backend, RedisCache)


def test_redis_missing_package_names_it_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from polyroute.cache.redis import RedisCache

    # A None entry in sys.modules makes the import fail as if redis were absent.
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(RuntimeError, match=r"pip install 'redis>=5'") as info:
        RedisCache("redis://user:secret@127.0.0.1:6379/0")
    assert "'redis' package" in str(info.value)
    assert "secret" not in str(info.value)


# -- façade and envelopes ----------------------------------------------------------------


def _memory_cache(clock: ManualClock | None = None) -> ResponseCache:
    cache = ResponseCache.from_config(
        Cache(enabled=True, ttl=60, max_entries=100, namespaces=CACHE_CONFIG),
        "memory://",
        clock or ManualClock(),
    )
    assert cache is not None
    return cache


def _envelope(cost: float = 0.0042) -> Envelope:
    return Envelope(
        content="funk",
        model="gpt-4o-mini",
        provider="openai",
        route="tier:fast",
        usage=Usage(prompt_tokens=20, completion_tokens=5),
        cost=cost,
        latency=1.25,
        attempts=[
            Attempt("gpt-4o", "openai", "error", trigger="timeout", retries=2),
            Attempt("gpt-4o-mini", "openai", "success"),
        ],
        warnings=["tier expert capped to advanced by budget.max_tier"],
        request_id="req_1",
        finish_reason="stop",
        tool_calls=[{"id": "t1", "type": "function", "function": {"name": "f"}}],
        raw={"id": "chatcmpl-1", "choices": []},
    )


async def test_store_and_lookup_return_independent_copies() -> None:
    cache = _memory_cache()
    await cache.store("pattern_analysis", "k", _envelope().to_dict(include_raw=True))
    first = await cache.lookup("pattern_analysis", "k")
    assert first is not None and first["content"] == "funk"
    first["raw"]["id"] = "mutated"
    second = await cache.lookup("pattern_analysis", "k")
    assert second is not None and second["raw"]["id"] == "chatcmpl-1"
    assert await cache.lookup("template_selection", "k") is None  # namespaces are apart


async def test_store_ttl_override() -> None:
    clock = ManualClock()
    cache = _memory_cache(clock)
    await cache.store("pattern_analysis", "k", {"content": "x", "cost": 1.0}, ttl=5)
    clock.advance(6)
    assert await cache.lookup("pattern_analysis", "k") is None


async def test_a_hit_is_never_stored_again() -> None:
    cache = _memory_cache()
    await cache.store("default", "k", {"content": "x", "cost": 0.0, "cache_hit": True})
    assert await cache.lookup("default", "k") is None


def test_envelope_from_cache_costs_nothing_and_reports_the_saving() -> None:
    original = _envelope(cost=0.0042)
    d = orjson.loads(orjson.dumps(original.to_dict(include_raw=True)))
    env, saved = envelope_from_cache(d)
    assert saved == pytest.approx(0.0042)
    assert env.cost == 0.0 and env.cache_hit is True
    assert env.attempts == [] and env.retries == 0 and env.fallbacks == 0
    assert env.warnings == []
    assert (env.content, env.model, env.provider, env.route) == (
        "funk",
        "gpt-4o-mini",
        "openai",
        "tier:fast",
    )
    assert env.usage.total_tokens == 25
    assert env.request_id == "req_1" and env.finish_reason == "stop"
    assert env.tool_calls == original.tool_calls and env.raw == original.raw
    assert env.to_dict()["cache_hit"] is True


async def test_get_or_compute_miss_then_hit() -> None:
    cache = _memory_cache()
    calls = 0

    async def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return _envelope().to_dict(include_raw=True)

    v1, hit1 = await cache.get_or_compute("pattern_analysis", "k", compute)
    v2, hit2 = await cache.get_or_compute("pattern_analysis", "k", compute)
    assert (hit1, hit2) == (False, True)
    assert calls == 1 and v1 == v2
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)


class _BrokenBackend:
    async def get(self, namespace: str, key: str) -> bytes | None:
        raise ConnectionError("redis down")

    async def set(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        raise ConnectionError("redis down")

    async def delete(self, namespace: str, key: str) -> None:
        raise ConnectionError("redis down")

    async def clear(self, namespace: str | None = None) -> None:
        raise ConnectionError("redis down")

    async def close(self) -> None:
        return None


async def test_a_broken_store_serves_misses_not_errors() -> None:
    cache = ResponseCache(_BrokenBackend(), clock=ManualClock())

    async def compute() -> dict[str, Any]:
        return {"content": "ok", "cost": 0.1}

    for _ in range(2):
        value, hit = await cache.get_or_compute("default", "k", compute)
        assert value["content"] == "ok" and hit is False
    assert cache.stats.errors >= 4  # every read and write failed, and was logged


async def test_a_corrupt_entry_is_a_miss() -> None:
    cache = _memory_cache()
    mem = cache.backend
    assert isinstance(mem, MemoryCache)
    mem.set_now("default", "k", b"\xff not json")
    assert await cache.lookup("default", "k") is None

    async def compute() -> dict[str, Any]:
        return {"content": "fresh", "cost": 0.1}

    value, hit = await cache.get_or_compute("default", "k", compute)
    assert (value["content"], hit) == ("fresh", False)
    assert await cache.lookup("default", "k") == value


async def test_unjsonable_envelope_is_returned_but_not_stored() -> None:
    cache = _memory_cache()

    async def compute() -> dict[str, Any]:
        return {"content": "x", "cost": 0.1, "raw": {"oops": object()}}

    value, hit = await cache.get_or_compute("default", "k", compute)
    assert hit is False and value["content"] == "x"
    assert await cache.lookup("default", "k") is None
    await asyncio.sleep(0)
