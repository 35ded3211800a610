"""The configuration schema: every section of polyroute.yaml as a pydantic model.

Parsing denies unknown fields and checks ranges; the cross-references
(unknown models, providers, routes, cycles, empty pools) are checked in a
second step by ``config.validate`` once the catalog is known.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from polyroute.usage.alerts import AlertThresholds
from polyroute.usage.window import parse_duration

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
TIERS: tuple[str, ...] = ("fast", "balanced", "advanced", "expert")
TASKS: tuple[str, ...] = ("text", "image", "agent", "video-slides")
ROLES: tuple[str, ...] = ("classifier", "writer", "expander", "validator", "style_refiner")
CAPABILITIES: tuple[str, ...] = (
    "text",
    "vision",
    "image_generation",
    "tools",
    "json",
    "embedding",
    "prefill",  # accepts a trailing assistant message and continues it (mid-stream recovery)
    "audio",  # takes input_audio parts
    "reasoning",  # takes reasoning_effort (OpenAI's o-series, gpt-5, Gemini 2.5)
)
StreamRecovery = Literal["continue", "buffer", "off"]
Strategy = Literal["single", "fallback", "parallel", "loadbalance", "cascade"]
Wire = Literal["openai", "openai-compatible", "anthropic", "simulator"]

# A model name as the config names it: a catalog id (gpt-4o-mini) or provider/model
# (openai/gpt-4o-mini, together/meta-llama/Llama-3-70b-chat-hf, ollama/llama3:8b).
# Checked before any did-you-mean lookup, so "gpt 4o / / mini!!" is told what is
# wrong with its shape rather than offered look-alike names.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*(/[A-Za-z0-9][A-Za-z0-9._:-]*)*")
MODEL_NAME_RULE = (
    "model names are letters, digits and . _ - : / (no spaces, no empty part around a /), "
    "like gpt-4o-mini or openai/gpt-4o-mini"
)


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model name, or None when its shape is fine."""
    if _MODEL_NAME.fullmatch(name):
        return None
    return f"not a valid model name: {name!r}; {MODEL_NAME_RULE}"


_LOCAL_HOSTS = ("localhost", "127.", "0.0.0.0", "[::1]")
EXAMPLE_BASE_URL = "https://api.openai.com/v1"


def base_url_problem(url: str, example: str | None = None) -> str | None:
    """Why ``url`` cannot be an API root, or None.  http(s) with a host, or the
    built-in simulator's ``simulator://``; a pasted host without a scheme
    (``api.openai.com/v1``) would otherwise fail only at the first call."""
    parts = urlsplit(url)
    if parts.scheme == "simulator":
        return None
    if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in url):
        return None
    hint = ""
    bare = url.strip()
    if "://" not in bare and bare and not any(c.isspace() for c in bare):
        scheme = "http" if bare.startswith(_LOCAL_HOSTS) else "https"
        hint = f" (did you mean {scheme}://{bare}?)"
    return (
        f"not an http(s) URL: {url!r}{hint}; expected the API root with its scheme and host, "
        f"e.g. {example or EXAMPLE_BASE_URL}"
    )


def _env_var_name(v: str | None) -> str | None:
    # Upper-case letters, digits and underscores: a pasted key (mixed case, dashes)
    # is refused here, before any message could echo it.
    if v is not None and not _ENV_NAME.fullmatch(v):
        raise ValueError(
            "must be the NAME of an environment variable in upper case (like MY_VLLM_KEY), "
            "not the key itself"
        )
    return v


def _base_url(v: str | None) -> str | None:
    if v is not None:
        problem = base_url_problem(v)
        if problem:
            raise ValueError(problem)
    return v


def _temperature(v: float) -> float:
    if not 0.0 <= v <= 2.0:
        raise ValueError(f"temperature must be between 0.0 and 2.0, got {v}")
    return v


def _non_negative(v: int) -> int:
    if v < 0:
        raise ValueError(f"must be >= 0 (0 means no retries), got {v}")
    return v


Temperature = Annotated[float, AfterValidator(_temperature)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegInt = Annotated[int, AfterValidator(_non_negative)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


RETRY_ON: tuple[int | Literal["timeout"], ...] = (408, 409, 429, 500, 502, 503, 504, 529)


class RetryPolicy(Strict):
    max_attempts: Annotated[int, Field(ge=1)] = 3
    base_delay: Annotated[float, Field(ge=0)] = 0.5
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    max_retry_after: Annotated[float, Field(ge=0)] = 60.0
    # HTTP statuses to retry; "timeout" opts in to retrying a timed-out candidate while
    # another could be tried (by default it is given up at once; the last one is retried).
    retry_on: list[int | Literal["timeout"]] = Field(default_factory=lambda: list(RETRY_ON))


class RetryOverride(Strict):
    """Per-provider knobs; unset fields inherit ``policies.retry``."""

    max_attempts: Annotated[int, Field(ge=1)] | None = None
    base_delay: Annotated[float, Field(ge=0)] | None = None
    max_delay: Annotated[float, Field(ge=0)] | None = None
    max_retry_after: Annotated[float, Field(ge=0)] | None = None
    retry_on: list[int | Literal["timeout"]] | None = None


SimErrorKind = Literal["rate_limit", "server_error", "overloaded", "timeout", "connection_error"]
_SERVER_ERROR: tuple[SimErrorKind, ...] = ("server_error",)


class SimulatorSettings(Strict):
    latency: Annotated[float, Field(ge=0)] = 0.0
    failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    error_kinds: list[SimErrorKind] = Field(default_factory=lambda: list(_SERVER_ERROR))
    seed: int = 0


class ProviderConfig(Strict):
    type: Wire | None = None  # omitted for a built-in preset being adjusted
    base_url: str | None = None
    api_key_env: str | None = None  # the *name* of the variable, never the key
    api_key_required: bool | None = None
    key_page: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry: RetryOverride | None = None
    timeout: PositiveFloat | None = None
    simulator: SimulatorSettings | None = None
    rpm: Annotated[int, Field(ge=1)] | None = None  # requests per minute, all its models
    tpm: Annotated[int, Field(ge=1)] | None = None  # tokens per minute, all its models
    # The catalog knows its model line-up: other names are flagged at load (presets.yaml).
    closed_catalog: bool | None = None
    # Seed 003's FALLBACK_CHAINS: when a model of this provider fails, try the same-tier
    # model of each of these providers next, in order.
    fallback: list[str] = Field(default_factory=list)
    # Serves OpenAI's Responses API itself (openai: yes): /v1/responses bodies are then
    # forwarded as sent instead of translated to chat completions.
    responses_api: bool | None = None
    # Price factor of its batch API (openai, anthropic: 0.5): polyroute batch --provider-batch
    batch_discount: Annotated[float, Field(gt=0, le=1)] | None = None

    @field_validator("api_key_env")
    @classmethod
    def _looks_like_var(cls, v: str | None) -> str | None:
        return _env_var_name(v)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _base_url(v)


class Price(Strict):
    input: Annotated[float, Field(ge=0)] = 0.0  # USD per 1M input tokens
    output: Annotated[float, Field(ge=0)] = 0.0  # USD per 1M output tokens
    per_image: Annotated[float, Field(ge=0)] | None = None
    # Prompt tokens read from / written to the provider's prompt cache (USD per 1M);
    # unset: billed like other input tokens.
    cache_read: Annotated[float, Field(ge=0)] | None = None
    cache_write: Annotated[float, Field(ge=0)] | None = None
    as_of: str | None = None


class ModelEntry(Strict):
    # Omitted when base_url is given (seed 001's MODEL_CATALOG names no provider): the
    # loader then finds the preset serving that URL, or makes the model its own endpoint.
    provider: str | None = None
    model: str | None = None  # provider's name for it; defaults to the catalog id
    # Seed 001: a model may carry its own endpoint and key variable.  The loader turns
    # such an entry into a provider of its own (config.endpoints), so routing sees
    # only providers and models, as for any other entry.
    base_url: str | None = None
    api_key_env: str | None = None
    price: Price = Field(default_factory=Price)
    context_window: Annotated[int, Field(ge=0)] = 128_000
    max_output_tokens: Annotated[int, Field(ge=0)] = 4096
    capabilities: list[str] = Field(default_factory=lambda: ["text"])
    tier: Literal["fast", "balanced", "advanced", "expert"] | None = None
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None

    @field_validator("capabilities")
    @classmethod
    def _known_caps(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in CAPABILITIES]
        if bad:
            raise ValueError(f"unknown capabilities {bad}; allowed: {', '.join(CAPABILITIES)}")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _looks_like_var(cls, v: str | None) -> str | None:
        return _env_var_name(v)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _base_url(v)

    @field_validator("model")
    @classmethod
    def _model_name(cls, v: str | None) -> str | None:
        problem = model_name_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="before")
    @classmethod
    def _max_tokens_alias(cls, data: Any) -> Any:
        # Seed 001's MODEL_CATALOG says max_tokens for the model's token limit (128000 for
        # gpt-4o-mini): the context window, not an output cap.  Taken as context_window
        # here, before validation, so the stored entry has one name for one fact.
        if not isinstance(data, dict) or "max_tokens" not in data:
            return data
        data = dict(data)
        value = data.pop("max_tokens")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"max_tokens (the context window, seed 001's name for it) must be a whole "
                f"number of tokens >= 0, got {value!r}"
            )
        if "context_window" in data and data["context_window"] != value:
            raise ValueError(
                f"max_tokens ({value}) and context_window ({data['context_window']}) are the "
                "same limit under two names and disagree: keep one"
            )
        data["context_window"] = value
        return data

    @model_validator(mode="after")
    def _has_provider_or_endpoint(self) -> ModelEntry:
        if self.provider is None and self.base_url is None:
            raise ValueError(
                "needs a provider (e.g. provider: openai) or its own base_url "
                "(e.g. base_url: https://api.openai.com/v1)"
            )
        return self


class PoolMember(Strict):
    model: str
    weight: Annotated[float, Field(gt=0)] = 1.0
    params: dict[str, Any] = Field(default_factory=dict)


PoolItem = str | PoolMember


class Acceptance(Strict):
    """How a cascade (or any route) decides an answer is good enough."""

    json_schema: dict[str, Any] | None = None
    required_fields: list[str] = Field(default_factory=list)
    min_length: NonNegInt | None = None


class RouteCache(Strict):
    """A route's use of the response cache."""

    enabled: bool = True  # False: this route never reads or writes the cache
    namespace: str | None = None  # a key of cache.namespaces; else the default limits
    allow_nonzero_temperature: bool = False  # also cache sampled answers
    ttl: Annotated[float, Field(gt=0)] | None = None  # overrides the namespace's ttl


class CallParams(Strict):
    """Parameters a pool may fix; call parameters override them."""

    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    timeout: PositiveFloat | None = None
    # request sent -> first chunk of a stream (or the headers of a plain call)
    first_chunk_timeout: PositiveFloat | None = None
    idle_timeout: PositiveFloat | None = None  # the longest gap between stream chunks
    stream_recovery: StreamRecovery | None = None


_HOURS = re.compile(r"([01]?\d|2[0-3])-([01]?\d|2[0-4])")
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Schedule(Strict):
    """Time-of-day routing: during ``hours`` (and ``days``) the pool is ``models``."""

    hours: str  # "22-06": from 22:00 to 06:00, wrapping past midnight
    days: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    models: list[PoolItem]

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        m = _HOURS.fullmatch(v.strip())
        if not m or m.group(1) == m.group(2):
            raise ValueError(f"hours must look like 22-06 or 9-17 (start-end, 0-24), got {v!r}")
        return v.strip()

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d.lower() not in _DAY_NAMES]
        if bad:
            raise ValueError(f"unknown days {bad}; allowed: {', '.join(_DAY_NAMES)}")
        return [d.lower() for d in v]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return v


class PoolConfig(CallParams):
    models: list[PoolItem] = Field(default_factory=list)
    strategy: Strategy = "fallback"
    # cascade: cheapest first by catalog price ("price", the default) or as listed
    order: Literal["price", "as_listed"] = "price"
    max_fallbacks: NonNegInt | None = None
    accept: Acceptance | None = None
    schedules: list[Schedule] = Field(default_factory=list)
    cache: RouteCache | None = None

    @field_validator("models", mode="before")
    @classmethod
    def _single_model(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def model_ids(self) -> list[str]:
        return [m if isinstance(m, str) else m.model for m in self.models]


class RoleConfig(PoolConfig):
    by_product: dict[str, list[PoolItem]] = Field(default_factory=dict)


class PipelineStep(Strict):
    step_name: str | None = None
    model: str | None = None
    models: list[PoolItem] | None = None
    routing: Literal["parallel", "fallback"] | None = None
    temperature: Temperature | None = None
    max_retries: NonNegInt | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    prompt: str | None = None
    system: str | None = None


class PipelineConfig(Strict):
    default_model: str | None = None
    default_temperature: Temperature | None = None
    default_max_retries: NonNegInt | None = None
    steps: dict[str, PipelineStep] = Field(default_factory=dict)


class Defaults(Strict):
    model: str = "gpt-4o"
    tier: Literal["fast", "balanced", "advanced", "expert"] | None = None
    temperature: Temperature | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_retries: NonNegInt | None = None  # retries per candidate (attempts - 1)
    timeout: PositiveFloat = 60.0
    first_chunk_timeout: PositiveFloat | None = None
    idle_timeout: PositiveFloat | None = None
    # A stream that fails after chunks reached the caller: the next candidate continues
    # the answer ("continue"), the answer is held until complete ("buffer"), or "off".
    stream_recovery: StreamRecovery = "continue"


class FallbackPolicy(Strict):
    max_fallbacks: NonNegInt = 3
    # A provider's request-side content-policy rejection (HTTP 400) is the caller's
    # to see: another model would most likely refuse it too.  True falls back anyway.
    on_content_filter: bool = False


class CooldownPolicy(Strict):
    after_failures: Annotated[int, Field(ge=1)] = 3
    seconds: Annotated[float, Field(ge=0)] = 60.0
    window: Annotated[float, Field(gt=0)] = 60.0  # failures older than this are forgotten
    # When every candidate is cooling down, wait at most this long for the first to
    # return; past it the call is answered at once (503 / 529 with Retry-After).
    max_wait: Annotated[float, Field(ge=0)] = 1.0


class Policies(Strict):
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    fallback: FallbackPolicy = Field(default_factory=FallbackPolicy)
    cooldown: CooldownPolicy = Field(default_factory=CooldownPolicy)


def usd(amount: float) -> str:
    """A budget or cost as text: $100.00, $0.105, and $0.000050 for a per-request limit
    below a cent, which two decimals would print as a misleading $0.00."""
    if 0 < abs(amount) < 0.000001:
        return f"${amount:.1e}"
    if 0 < abs(amount) < 0.01:
        return f"${amount:.6f}"
    text = f"{amount:.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


class KeyBudget(Strict):
    monthly: Annotated[float, Field(ge=0)] | None = None


class Budget(Strict):
    max_cost_per_request: Annotated[float, Field(ge=0)] | None = None
    step_down: bool = False  # a tier route over max_cost_per_request tries the next cheaper tier
    monthly: Annotated[float, Field(ge=0)] | None = None
    on_monthly_exceeded: Literal["stop", "warn"] = "stop"
    per_key_monthly: Annotated[float, Field(ge=0)] | None = None  # each gateway key's limit
    keys: dict[str, KeyBudget] = Field(default_factory=dict)  # by key id (key_xxxxxxxxxx)
    max_tier: Literal["fast", "balanced", "advanced", "expert"] | None = None


class CacheNamespace(Strict):
    ttl: Annotated[float, Field(gt=0)] = 3600
    max_size: Annotated[int, Field(ge=1)] = 1000


class Cache(Strict):
    enabled: bool = False
    ttl: Annotated[float, Field(gt=0)] = 3600
    max_entries: Annotated[int, Field(ge=1)] = 1000
    namespaces: dict[str, CacheNamespace] = Field(default_factory=dict)
    lock_ttl: Annotated[float, Field(gt=0)] = 120.0  # cross-process single-flight lock
    prefix: str = "polyroute:cache:"


class State(Strict):
    url: str = "memory://"
    prefix: str = "polyroute:"  # Redis key prefix for shared cooldowns and rate limits

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not (v.startswith("memory://") or v.startswith(("redis://", "rediss://"))):
            raise ValueError(
                "must start with memory:// or redis:// (e.g. redis://127.0.0.1:6379/0)"
            )
        return v


class UsageStore(Strict):
    """Usage records (one per call) and seed 003's alerts."""

    store: str = "sqlite:///polyroute.db"  # or postgresql://user@host:5432/db
    enabled: bool = True  # False: no records, no /api/v1/usage, /alerts, /calls
    batch_size: Annotated[int, Field(ge=1)] = 500  # rows per INSERT; a full batch wakes the writer
    flush_interval: Annotated[float, Field(gt=0)] = 1.0  # seconds between background writes
    max_pending: Annotated[int, Field(ge=1)] = 1_000_000  # kept in memory while the DB is down
    spool: bool = True  # append-only local file per record: nothing lost on SIGKILL or a crash
    spool_dir: str | None = None  # default: <sqlite file>.spool/, or ./polyroute-usage-spool/
    window: str = "1h"  # the window of the Prometheus gauges and the alert log
    alert_interval: Annotated[float, Field(gt=0)] = 60.0  # seconds between alert evaluations
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)

    @field_validator("store")
    @classmethod
    def _store_url(cls, v: str) -> str:
        if not v.startswith(("sqlite:", "postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError(
                "must start with sqlite:/// or postgresql:// "
                "(e.g. sqlite:///polyroute.db, postgresql://user@127.0.0.1:5432/polyroute)"
            )
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        span = parse_duration(v)
        if span is None or span <= 0:
            raise ValueError("must be a duration like 15m, 1h, 24h or 7d")
        return v


class Server(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    api_keys_env: str = "POLYROUTE_API_KEYS"
    admin_keys_env: str = "POLYROUTE_ADMIN_KEYS"
    allowed_providers: list[str] | None = None
    max_body_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    # SIGTERM: /readyz answers 503 for drain_delay seconds while requests are still
    # served (a load balancer stops sending), then no new connections; requests and
    # streams in flight get drain_timeout seconds to finish; usage is flushed.
    drain_delay: Annotated[float, Field(ge=0)] = 0.0
    drain_timeout: Annotated[float, Field(ge=0)] = 30.0


class Config(Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    tiers: dict[str, PoolConfig] = Field(default_factory=dict)
    tasks: dict[str, PoolConfig] = Field(default_factory=dict)
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    routes: dict[str, PoolConfig] = Field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    policies: Policies = Field(default_factory=Policies)
    budget: Budget = Field(default_factory=Budget)
    cache: Cache = Field(default_factory=Cache)
    state: State = Field(default_factory=State)
    usage: UsageStore = Field(default_factory=UsageStore)
    server: Server = Field(default_factory=Server)
