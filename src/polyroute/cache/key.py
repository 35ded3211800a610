"""The cache key of a chat request, and whether a request may be cached at all.

Two requests share a key exactly when a provider would be asked the same thing:
the same route (and, if given, the same models behind it), the same messages
and the same output-changing parameters.

Normalization is deliberately shallow:

* Message text is kept byte for byte (trailing spaces and case can change an
  answer); only dict key order is canonicalized (``OPT_SORT_KEYS``, at every
  depth, so ``tools`` and ``response_format`` schemas are order-insensitive too).
* Parameters set to ``None`` are dropped (the router drops them before the
  call), ``n=1`` equals no ``n``, a single ``stop`` string equals a one-item
  list, and float parameters compare as floats (``temperature=0`` and ``0.0``
  share a key).
* Parameters that only change transport or bookkeeping (``IGNORED_PARAMS``:
  ``user``, ``stream``, ``metadata``, ``timeout`` ...) are left out.  Every other
  parameter is part of the key, including ones this module has never heard of:
  a new provider parameter might change the answer, and a needless miss costs
  one call while a wrong hit serves the wrong answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

# Bump when the key layout changes, so old entries (Redis outlives deploys) just miss.
KEY_VERSION = 1

# Known to change the answer; listed for documentation and for normalization.
# (The key does not depend on this list: unknown parameters are kept too.)
OUTPUT_PARAMS: frozenset[str] = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
        "verbosity",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "thinking",
    }
)

# Transport, accounting and routing hints: the same request with different
# values gets the same answer.
IGNORED_PARAMS: frozenset[str] = frozenset(
    {
        "user",
        "stream",
        "stream_options",
        "metadata",
        "timeout",
        "request_timeout",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "extra_headers",
        "labels",
        "product_type",
        # polyroute's own per-request cache switches must not split the key.
        "cache",
        "cache_namespace",
    }
)

_FLOAT_PARAMS: frozenset[str] = frozenset(
    {"temperature", "top_p", "presence_penalty", "frequency_penalty"}
)

# OpenAI and Anthropic both sample at temperature 1.0 when none is sent.
PROVIDER_DEFAULT_TEMPERATURE = 1.0

_DUMPS_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def key_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that go into the key, normalized (see the module docstring)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None or name in IGNORED_PARAMS:
            continue
        if name in _FLOAT_PARAMS and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif name == "stop" and isinstance(value, str):
            value = [value]
        elif name == "n" and value == 1:
            continue
        out[name] = value
    return out


def _default(obj: Any) -> Any:
    # Pydantic models (tool definitions built by callers) hash as their JSON form.
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)  # order-free by nature, so canonicalize it
    raise TypeError(f"no JSON form for a {type(obj).__name__}")


def cache_key(
    route: str,
    messages: Iterable[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    models: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A stable 32-hex-digit key for this request.

    ``params`` should be the *effective* parameters (route defaults under the
    call's own), so a tier default such as ``max_tokens`` is part of the key.
    ``models`` (the resolved candidates, in order) makes a config reload that
    changes a route's pool miss instead of serving the old pool's answers.
    ``extra`` is for anything else that decides the answer (an acceptance check).
    Raises ``TypeError`` for values that have no JSON form.
    """
    payload = {
        "v": KEY_VERSION,
        "route": route,
        "models": list(models),
        "messages": list(messages),
        "params": key_params(params),
        "extra": extra or None,
    }
    try:
        blob = orjson.dumps(payload, default=_default, option=_DUMPS_OPTS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"request cannot be hashed into a cache key: {exc}") from exc
    # blake2b is fast and collision resistant; 128 bits is plenty for a cache.
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def cacheable(
    params: Mapping[str, Any],
    allow_nonzero_temperature: bool = False,
    opt_out: bool = False,
) -> bool:
    """May this request be answered from (and stored in) the cache?

    * Opted out: no.
    * The route allows sampled answers (``allow_nonzero_temperature``): yes, at
      any temperature and any ``n``; the route owner decided a stored sample is
      good enough.
    * Otherwise only greedy requests: ``temperature`` must be set and ``<= 0``.
      An unset temperature means the provider default (1.0 for OpenAI and
      Anthropic), i.e. sampling, so it is *not* cacheable.  ``n > 1`` asks for
      several different samples, which one stored answer cannot honour.

    ``params`` should be the effective parameters (route defaults included), so
    a tier that fixes ``temperature: 0`` makes its calls cacheable.
    """
    if opt_out:
        return False
    if allow_nonzero_temperature:
        return True
    n = params.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        return False
    t = params.get("temperature")
    if t is None:
        return False  # provider default (PROVIDER_DEFAULT_TEMPERATURE) samples
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        return False  # not a number: let the provider reject it, do not cache
    return t <= 0
