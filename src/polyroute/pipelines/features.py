"""Seed 002's rollout switches for pipelines: feature flags and the high token warning.

Each is read, lowest first, from its default, the environment of the router
(the deployment's switch), then the pipeline config (an API body's or the
caller's)::

    POLYROUTE_FEATURE_FLAGS=workflow.multiModel=false     # comma-separated NAME=BOOL
    POLYROUTE_HIGH_TOKEN_WARNING=4000                     # tokens per call

    PipelineConfig(feature_flags={"workflow.multiModel": False}, high_token_warning=4000)
    PipelineStepConfig(step_name="article_generation", high_token_warning=8000)

``workflow.multiModel`` (default on): off, a step that lists several models runs
the first of them alone (``routing: parallel`` or ``fallback`` alike).

The high token warning (default off): a call whose tokens (prompt + completion)
exceed the threshold gets a warning on its envelope and on the step's result,
and a log line on ``polyroute.pipelines``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from polyroute.errors import ConfigError
from polyroute.pipelines.config import (
    FEATURE_FLAGS,
    MULTI_MODEL,
    PipelineConfig,
    PipelineStepConfig,
    check_flags,
)
from polyroute.types import Envelope

FLAGS_ENV = "POLYROUTE_FEATURE_FLAGS"
TOKEN_WARNING_ENV = "POLYROUTE_HIGH_TOKEN_WARNING"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

log = logging.getLogger("polyroute.pipelines")


@dataclass(frozen=True, slots=True)
class Features:
    flags: Mapping[str, bool]
    high_token_warning: int | None = None

    @property
    def multi_model(self) -> bool:
        return bool(self.flags.get(MULTI_MODEL, FEATURE_FLAGS[MULTI_MODEL]))


def env_flags(environ: Mapping[str, str]) -> dict[str, bool]:
    raw = (environ.get(FLAGS_ENV) or "").strip()
    out: dict[str, bool] = {}
    for item in filter(None, (x.strip() for x in raw.split(","))):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip().lower() if sep else "true"
        if value not in _TRUE | _FALSE:
            raise ConfigError(
                f"{FLAGS_ENV}: {item!r}: the value must be true or false", path=FLAGS_ENV
            )
        out[name] = value in _TRUE
    try:
        return check_flags(out)
    except ValueError as exc:
        raise ConfigError(f"{FLAGS_ENV}: {exc}", path=FLAGS_ENV) from None


def env_token_warning(environ: Mapping[str, str]) -> int | None:
    raw = (environ.get(TOKEN_WARNING_ENV) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{TOKEN_WARNING_ENV}={raw}: must be a whole number of tokens >= 1",
            path=TOKEN_WARNING_ENV,
        )
    return value


def features_for(
    config: PipelineConfig, step: PipelineStepConfig | None, environ: Mapping[str, str]
) -> Features:
    flags = {**FEATURE_FLAGS, **env_flags(environ), **config.feature_flags}
    threshold = next(
        (
            t
            for t in (
                step.high_token_warning if step else None,
                config.high_token_warning,
                env_token_warning(environ),
            )
            if t is not None
        ),
        None,
    )
    return Features(flags, threshold)


def warn_high_tokens(env: Envelope, threshold: int | None, step: str, route: str) -> str | None:
    """Seed 002's high token warning for one call: on the envelope, in the log."""
    if threshold is None or env.usage.total_tokens <= threshold:
        return None
    u = env.usage
    note = (
        f"high token usage: {env.model} used {u.total_tokens} tokens "
        f"({u.prompt_tokens} prompt + {u.completion_tokens} completion) in step {step!r}, "
        f"above the warning threshold of {threshold}; lower max_tokens / max_output_tokens "
        f"or shorten the prompt"
    )
    if note not in env.warnings:
        env.warnings.append(note)
    log.warning(
        "high token usage",
        extra={
            "route": route,
            "step": step,
            "provider": env.provider,
            "model": env.model,
            "tokens": u.total_tokens,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "threshold": threshold,
        },
    )
    return note
