"""Checks of a pipeline config against a router: every model name resolves there.

Kept apart from the schema because they need a router (its catalog, its
routes, its ``allowed_providers``); an API body is parsed once without one and
checked against the router that will serve it.  Every problem names its field
path, all are reported at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from polyroute.errors import ConfigError, PolyrouteError, UnknownRouteError
from polyroute.pipelines.errors import did_you_mean

if TYPE_CHECKING:
    from polyroute.router import Router

Problem = tuple[str, str]


class SpecShape(Protocol):
    @property
    def ref(self) -> str: ...
    @property
    def provider(self) -> str | None: ...
    def ref_on(self, providers: Collection[str]) -> str: ...


class StepShape(Protocol):
    @property
    def model(self) -> str | None: ...
    @property
    def models(self) -> Sequence[SpecShape] | None: ...


class PipelineShape(Protocol):
    """What the checks read of a ``PipelineConfig`` (kept structural, so this module
    does not import the config it checks and the two never import each other)."""

    @property
    def default_model(self) -> str | None: ...
    @property
    def step_configs(self) -> Mapping[str, StepShape]: ...


def dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def pydantic_problems(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        problems.append((dotted(err["loc"]), msg))
    return problems


def model_key(router: Router, ref: str) -> tuple[str, str]:
    """``(provider, model)``: where a model's answer is filed in ``model_outputs``.
    Fixed by the config, not by who answered, so callers can rely on the keys;
    a route name (``tier:fast``) is filed under ``"route"``."""
    if router.catalog.is_model_ref(ref):
        info = router.catalog.lookup(ref)
        return info.provider, info.name
    return "route", ref


def _unknown(router: Router, ref: str) -> str:
    cfg = router.config
    names = [m.id for m in router.catalog] + list(cfg.routes)
    names += [
        f"{kind}:{n}" for kind, table in (("tier", cfg.tiers), ("task", cfg.tasks)) for n in table
    ]
    prefix, sep, rest = ref.partition("/")
    if sep:  # a misspelt provider, or a misspelt model behind a known one
        names += [f"{p}/{rest}" for p in router.catalog.providers]
        if prefix in router.catalog.providers:
            names += [f"{prefix}/{m.id}" for m in router.catalog]
    return (
        f"unknown model {ref!r}{did_you_mean(ref, names)} (use a catalog id from "
        f"`polyroute models`, provider/model with a known provider, or a route such as tier:fast)"
    )


def ref_problem(router: Router, ref: str) -> str | None:
    """Why ``router`` cannot serve ``ref``, or None when it can."""
    try:
        router.resolve(ref)
    except UnknownRouteError:
        return _unknown(router, ref)
    except PolyrouteError as exc:  # e.g. a provider outside allowed_providers
        return str(exc)
    return None


def _alias_problem(router: Router, written: str | None, provider: str) -> str | None:
    """Seed 002's ``custom`` served by polyroute's openai-compatible provider needs that
    provider's endpoint; without one the call could only fail, so say so now."""
    if written is None or written == provider or written in router.catalog.providers:
        return None
    try:
        status = router.registry.status(provider)
    except PolyrouteError:
        return None
    if status.base_url:
        return None
    spec = router.registry.spec(provider)
    return (
        f"unknown provider {written!r}: seed 002's {written!r} provider is polyroute's "
        f"{provider!r}, which has no base URL; set {spec.base_url_env} (and "
        f"{spec.api_key_env or 'its key variable'}), or define providers.{written} in the "
        f"config (type: openai-compatible, base_url, api_key_env)"
    )


def config_problems(
    config: PipelineShape, router: Router, step_names: Sequence[str] | None = None
) -> list[Problem]:
    problems: list[Problem] = []

    def check(path: str, ref: str) -> bool:
        why = ref_problem(router, ref)
        if why is not None:
            problems.append((path, why))
        return why is None

    if config.default_model is not None:
        check("default_model", config.default_model)
    for key, s in config.step_configs.items():
        base = f"step_configs.{key}"
        if step_names is not None and key not in step_names:
            problems.append(
                (
                    base,
                    f"this pipeline has no step {key!r}{did_you_mean(key, step_names)} "
                    f"(steps: {', '.join(step_names) or 'none'})",
                )
            )
        if s.model is not None:
            check(f"{base}.model", s.model)
        seen: dict[tuple[str, str], int] = {}
        for i, spec in enumerate(s.models or ()):
            path = f"{base}.models[{i}]"
            ref = spec.ref_on(router.catalog.providers)
            provider = ref.partition("/")[0]
            if spec.provider is not None and provider not in router.catalog.providers:
                known = sorted(router.catalog.providers)
                problems.append(
                    (
                        f"{path}.provider",
                        f"unknown provider {spec.provider!r}{did_you_mean(provider, known)} "
                        f"(known: {', '.join(known)})",
                    )
                )
                continue
            why = _alias_problem(router, spec.provider, provider)
            if why is not None:
                problems.append((f"{path}.provider", why))
                continue
            if not check(f"{path}.model", ref):
                continue
            # Different spellings of one model (light-1, openai/gpt-4o-mini) are
            # the same model twice: running it twice only repeats the answer.
            j = seen.setdefault(model_key(router, ref), i)
            if j != i:
                p, m = model_key(router, ref)
                problems.append((path, f"duplicate of models[{j}]: both are {p}/{m}"))
    return problems


def check_config(
    config: PipelineShape, router: Router, step_names: Sequence[str] | None = None
) -> None:
    problems = config_problems(config, router, step_names)
    if problems:
        raise ConfigError(problems)
