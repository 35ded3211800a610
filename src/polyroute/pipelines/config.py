"""Seed 000's per-step model configuration, plus seed 002's several models per step.

``PipelineConfig`` parses exactly the ``pipeline_config`` body of
``POST /api/v1/pipeline``.  Checks that need nothing but the data (ranges,
shape, duplicates) run at parse time; checks against a router's catalog
(unknown models, providers not allowed) live in ``check.py`` and run through
``PipelineConfig.parse(data, router=...)`` or ``check(router)``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from polyroute.config.schema import NonNegInt, PoolItem, Temperature
from polyroute.errors import ConfigError
from polyroute.pipelines.check import check_config, pydantic_problems
from polyroute.pipelines.errors import UnknownPipelineError, did_you_mean

if TYPE_CHECKING:
    from polyroute.router import Router

Routing = Literal["parallel", "fallback"]

# Seed 002 names providers the way its UI does (openai, anthropic, google, custom).
# polyroute's provider for Google is "gemini"; its "custom" is the openai-compatible
# provider (OPENAI_COMPATIBLE_BASE_URL + OPENAI_COMPATIBLE_API_KEY).  A provider the
# config defines under the seed's name (``providers: {custom: ...}``) wins over the alias.
PROVIDER_ALIASES = {"google": "gemini", "custom": "openai-compatible"}
# Seed 002's feature flags, with their defaults: ``workflow.multiModel`` off makes a
# step that lists several models run its first one only (progressive rollout).
MULTI_MODEL = "workflow.multiModel"
FEATURE_FLAGS: dict[str, bool] = {MULTI_MODEL: True}
_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
# Seed 002 says max_output_tokens (Gemini's name); the router speaks OpenAI's max_tokens.
_TOKEN_ALIASES = ("max_tokens", "max_output_tokens")


def _non_empty(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("model name must not be empty")
    return v


ModelName = Annotated[str, AfterValidator(_non_empty)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Strict):
    """One model of a multi-model step (seed 002's ``ModelConfig``)."""

    provider: ModelName | None = None  # None: ``model`` is a catalog id, provider/model or route
    model: ModelName
    parameters: dict[str, Any] = Field(default_factory=dict)
    priority: int | None = None  # lower runs first in a fallback step; unset keeps list order
    weight: Annotated[float, Field(gt=0)] | None = None  # recorded; pipelines do not load-balance

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name, (lo, hi) in _RANGES.items():
            x = v.get(name)
            if x is not None and (
                isinstance(x, bool) or not isinstance(x, int | float) or not lo <= x <= hi
            ):
                raise ValueError(f"parameters.{name} must be between {lo} and {hi}, got {x!r}")
        given = [k for k in _TOKEN_ALIASES if v.get(k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of parameters.{' / '.join(_TOKEN_ALIASES)}, not both")
        for k in given:
            x = v[k]
            if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                raise ValueError(f"parameters.{k} must be an integer >= 1, got {x!r}")
        return v

    @property
    def ref(self) -> str:
        """The name the router is called with (aliases applied; see ``ref_on``)."""
        return self.ref_on(())

    def ref_on(self, providers: Collection[str]) -> str:
        """The name a router with these ``providers`` is called with: a seed-002
        provider name (``google``, ``custom``) means polyroute's provider for it,
        unless the router has a provider of that very name."""
        if self.provider is None:
            return self.model
        name = self.provider
        if name not in providers:
            name = PROVIDER_ALIASES.get(name, name)
        prefix = name + "/"
        return self.model if self.model.startswith(prefix) else prefix + self.model

    @property
    def output_key(self) -> tuple[str, str] | None:
        """``(provider, model)`` as the config wrote them, for ``model_outputs``;
        None when no provider was written (the catalog then says)."""
        if self.provider is None:
            return None
        prefix = PROVIDER_ALIASES.get(self.provider, self.provider) + "/"
        model = self.model.removeprefix(self.provider + "/").removeprefix(prefix)
        return self.provider, model

    def call_params(self) -> dict[str, Any]:
        out = {k: v for k, v in self.parameters.items() if v is not None}
        if "max_output_tokens" in out:
            out["max_tokens"] = out.pop("max_output_tokens")
        return out


class PipelineStepConfig(_Strict):
    """Model settings for one step: ``model`` or ``models`` (+ ``routing``)."""

    step_name: str
    model: ModelName | None = None
    temperature: Temperature | None = None
    max_retries: NonNegInt | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    models: list[ModelSpec] | None = None
    routing: Routing | None = None  # for ``models``; unset means fallback
    # Seed 002's high token warning: a call of this step using more tokens (prompt +
    # completion) than this adds a warning; unset: the pipeline's threshold.
    high_token_warning: Annotated[int, Field(ge=1)] | None = None

    @field_validator("models", mode="before")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        # A bare name in the list is shorthand for {"model": name}.
        if isinstance(v, list):
            return [{"model": m} if isinstance(m, str) else m for m in v]
        return v

    @field_validator("models")
    @classmethod
    def _distinct(cls, v: list[ModelSpec] | None) -> list[ModelSpec] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("list at least one model")
        seen: dict[str, int] = {}
        for i, spec in enumerate(v):
            j = seen.setdefault(spec.ref, i)
            if j != i:
                raise ValueError(f"models[{i}] duplicates models[{j}] ({spec.ref})")
        return v

    @model_validator(mode="after")
    def _one_choice(self) -> PipelineStepConfig:
        if self.models is not None and self.model is not None:
            raise ValueError("give either model or models, not both")
        return self


class PipelineConfig(_Strict):
    """Seed 000's pipeline configuration; every field optional (no config = defaults)."""

    default_model: ModelName | None = None
    default_temperature: Temperature | None = None
    default_max_retries: NonNegInt | None = None
    step_configs: dict[str, PipelineStepConfig] = Field(default_factory=dict)
    # Seed 002's feature flags, e.g. {"workflow.multiModel": false}; unset flags take
    # POLYROUTE_FEATURE_FLAGS, else their defaults (FEATURE_FLAGS).
    feature_flags: dict[str, bool] = Field(default_factory=dict)
    # Seed 002's high token warning threshold for every step (tokens per call);
    # unset: POLYROUTE_HIGH_TOKEN_WARNING, else no warning.
    high_token_warning: Annotated[int, Field(ge=1)] | None = None

    @field_validator("feature_flags")
    @classmethod
    def _known_flags(cls, v: dict[str, bool]) -> dict[str, bool]:
        return check_flags(v)

    @model_validator(mode="before")
    @classmethod
    def _name_steps(cls, data: Any) -> Any:
        # The key already names the step; repeating it as step_name is optional.
        if isinstance(data, Mapping) and isinstance(data.get("step_configs"), Mapping):
            steps = {
                k: {**v, "step_name": k} if isinstance(v, Mapping) and "step_name" not in v else v
                for k, v in data["step_configs"].items()
            }
            return {**data, "step_configs": steps}
        return data

    @model_validator(mode="after")
    def _names_match(self) -> PipelineConfig:
        for key, s in self.step_configs.items():
            if s.step_name != key:
                raise ValueError(
                    f"step_configs.{key}.step_name is {s.step_name!r}; it must match its key"
                )
        return self

    # -- building -------------------------------------------------------------------

    @classmethod
    def parse(
        cls, data: PipelineConfig | Mapping[str, Any] | None, router: Router | None = None
    ) -> PipelineConfig:
        """Parse an API body (or pass a config through); with a router, also check
        every model against its catalog.  Any problem is a ``ConfigError`` naming
        the field path, e.g. ``step_configs.seo_keywords.model``."""
        if data is None:
            cfg = cls()
        elif isinstance(data, PipelineConfig):
            cfg = data
        else:
            try:
                cfg = cls.model_validate(dict(data))
            except ValidationError as exc:
                raise ConfigError(pydantic_problems(exc)) from None
        if router is not None:
            cfg.check(router)
        return cfg

    @classmethod
    def from_settings(
        cls,
        router: Router,
        name: str,
        overlay: PipelineConfig | Mapping[str, Any] | None = None,
    ) -> PipelineConfig:
        """The pipeline ``name`` of the router's config file, as a PipelineConfig,
        with an API body's ``pipeline_config`` (``overlay``) laid over it."""
        pipe = router.config.pipelines.get(name)
        if pipe is None:
            raise UnknownPipelineError(name, list(router.config.pipelines))
        steps: dict[str, PipelineStepConfig] = {}
        for step_name, s in pipe.steps.items():
            fields: dict[str, Any] = {
                "temperature": s.temperature,
                "max_retries": s.max_retries,
                "max_tokens": s.max_tokens,
                "routing": s.routing,
            }
            # The file may set both; like step: routes, models wins over model.
            if s.models is not None:
                fields["models"] = [_spec_of(item) for item in s.models]
            else:
                fields["model"] = s.model
            steps[step_name] = PipelineStepConfig(
                step_name=step_name, **{k: v for k, v in fields.items() if v is not None}
            )
        top = {
            "default_model": pipe.default_model,
            "default_temperature": pipe.default_temperature,
            "default_max_retries": pipe.default_max_retries,
        }
        base = cls(step_configs=steps, **{k: v for k, v in top.items() if v is not None})
        return base.overlay(cls.parse(overlay, router)) if overlay is not None else base

    def overlay(self, other: PipelineConfig | Mapping[str, Any] | None) -> PipelineConfig:
        """This config with ``other``'s explicitly given fields laid over it, step by step."""
        if other is None:
            return self
        top = other if isinstance(other, PipelineConfig) else PipelineConfig.parse(other)
        update: dict[str, Any] = {
            k: getattr(top, k)
            for k in (
                "default_model",
                "default_temperature",
                "default_max_retries",
                "high_token_warning",
            )
            if k in top.model_fields_set
        }
        if top.feature_flags:
            update["feature_flags"] = {**self.feature_flags, **top.feature_flags}
        steps = dict(self.step_configs)
        for name, s in top.step_configs.items():
            base = steps.get(name)
            steps[name] = s if base is None else _overlay_step(base, s)
        update["step_configs"] = steps
        return self.model_copy(update=update)

    # -- reading --------------------------------------------------------------------

    def step(self, step_name: str) -> PipelineStepConfig | None:
        return self.step_configs.get(step_name)

    def check(self, router: Router, step_names: Iterable[str] | None = None) -> PipelineConfig:
        """Raise ``ConfigError`` unless every model resolves on ``router`` (and, given
        ``step_names``, every configured step exists)."""
        check_config(self, router, None if step_names is None else list(step_names))
        return self


def check_flags(flags: Mapping[str, bool]) -> dict[str, bool]:
    """The flags as given, or ``ValueError`` naming an unknown one."""
    for name in flags:
        if name not in FEATURE_FLAGS:
            known = ", ".join(FEATURE_FLAGS)
            raise ValueError(
                f"unknown feature flag {name!r}{did_you_mean(name, FEATURE_FLAGS)} (known: {known})"
            )
    return dict(flags)


def _spec_of(item: PoolItem) -> ModelSpec:
    if isinstance(item, str):
        return ModelSpec(model=item)
    return ModelSpec(model=item.model, weight=item.weight, parameters=dict(item.params))


def _overlay_step(base: PipelineStepConfig, top: PipelineStepConfig) -> PipelineStepConfig:
    data = base.model_dump(exclude_unset=True)
    over = top.model_dump(exclude_unset=True)
    if "model" in over or "models" in over:
        # Choosing models replaces the base's choice whole: a model laid over a
        # models list (or the reverse) would otherwise be "both".
        for k in ("model", "models", "routing"):
            data.pop(k, None)
    data.update(over)
    return PipelineStepConfig.model_validate(data)
