"""Environment variables overlaid on the configuration, every scheme the seeds use.

=================================  ==========================================
variable                           sets
=================================  ==========================================
AI_<TASK>_PROVIDER / _MODEL        tasks.<task> primary (TASK: TEXT, IMAGE,
AI_<TASK>_FALLBACK_PROVIDER/_MODEL AGENT, VIDEO_SLIDES) and its fallback
AI_MODEL_<TIER>                    tiers.<tier> primary model
AI_TIMEOUT_<TIER>                  tiers.<tier>.timeout
AI_PROVIDER                        provider preferred by the built-in pools
AI_DEFAULT_TIER                    defaults.tier
AI_MAX_TIER                        budget.max_tier
AI_MAX_COST_PER_REQUEST            budget.max_cost_per_request
AI_MONTHLY_BUDGET                  budget.monthly
AI_CACHE_ENABLED / AI_CACHE_TTL    cache.enabled / cache.ttl
MODEL_<ROLE>                       roles.<role> primary model
ALLOWED_MODEL_PROVIDERS            server.allowed_providers (comma-separated)
<PROVIDER>_API_KEY / _BASE_URL     read when the provider is first used
OPENAI_COMPATIBLE_API_KEY/_BASE_URL the ``openai-compatible`` provider
=================================  ==========================================

A variable's value lands in the raw config before validation; ``sources``
remembers which variable set which path, so an error names the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from polyroute.config.schema import ROLES, TASKS, TIERS, model_name_problem
from polyroute.errors import ConfigError

ModelRef = Callable[[str | None, str], str]
# (provider, task) -> why that provider can serve no model for the task at all, or None
NoModelReason = Callable[[str, str], str | None]


def _section(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    node = raw
    for k in keys:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            node[k] = nxt
        node = nxt
    return node


def split_csv(value: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (how list-valued variables are written)."""
    return [p.strip() for p in value.split(",") if p.strip()]


def _with_primary(pool: list[Any], primary: str) -> list[Any]:
    rest = [m for m in pool if (m if isinstance(m, str) else m.get("model")) != primary]
    return [primary, *rest]


class EnvOverlay:
    """Applies the variables in ``environ`` to a raw config dict."""

    def __init__(
        self,
        environ: Mapping[str, str],
        model_ref: ModelRef,
        default_model_for: Callable[[str, str], str | None],
        providers: frozenset[str] = frozenset(),
        cannot_serve: NoModelReason | None = None,
    ) -> None:
        self.env = environ
        self._providers = providers
        self._cannot_serve = cannot_serve
        self._ref = model_ref  # (provider or None, model) -> catalog id or provider/model
        self._default_for = default_model_for  # (provider, task) -> model name
        self.sources: dict[str, str] = {}

    def _get(self, name: str) -> str | None:
        v = self.env.get(name)
        return v.strip() if v is not None and v.strip() else None

    def _model_name(self, var: str) -> str | None:
        """The variable's model name, refused by its shape before it is looked up, so the
        error names the variable and shows the value as the user wrote it."""
        model = self._get(var)
        if model is not None:
            problem = model_name_problem(model)
            if problem:
                raise ConfigError(problem, path=var)  # the path is the variable's name
        return model

    def _set(self, raw: dict[str, Any], path: str, value: Any, var: str) -> None:
        *parents, leaf = path.split(".")
        _section(raw, *parents)[leaf] = value
        self.sources[path] = var

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        self._tasks(raw)
        self._tiers(raw)
        self._roles(raw)
        scalars = {
            "AI_DEFAULT_TIER": "defaults.tier",
            "AI_MAX_TIER": "budget.max_tier",
            "AI_MAX_COST_PER_REQUEST": "budget.max_cost_per_request",
            "AI_MONTHLY_BUDGET": "budget.monthly",
            "AI_CACHE_ENABLED": "cache.enabled",
            "AI_CACHE_TTL": "cache.ttl",
        }
        for var, path in scalars.items():
            v = self._get(var)
            if v is not None:
                self._set(
                    raw, path, v.lower() if var in ("AI_DEFAULT_TIER", "AI_MAX_TIER") else v, var
                )
        allowed = self._get("ALLOWED_MODEL_PROVIDERS")
        if allowed is not None:
            self._set(
                raw, "server.allowed_providers", split_csv(allowed), "ALLOWED_MODEL_PROVIDERS"
            )
        return raw

    def _model(self, var_provider: str, var_model: str, task: str) -> tuple[str, str] | None:
        """(model reference, the variable that decided it), or None when unset."""
        provider = self._get(var_provider)
        model = self._model_name(var_model)
        if provider is not None:
            provider = provider.lower()
            if self._providers and provider not in self._providers:
                raise ConfigError(
                    f"unknown provider {provider!r}; known: {', '.join(sorted(self._providers))}",
                    path=var_provider,
                )
        if model is None and provider is None:
            return None
        if model is None:
            assert provider is not None
            model = self._default_for(provider, task)
            reason = self._cannot_serve(provider, task) if self._cannot_serve else None
            if model is None and reason is not None:
                # No model name would help (anthropic has no image model): the provider
                # is what to change, so the error names that variable.
                raise ConfigError(
                    f"{var_provider}={provider}: {reason}; set {var_provider} and {var_model} "
                    "to one of those",
                    path=var_provider,
                )
            if model is None:
                raise ConfigError(
                    f"{var_provider}={provider} but {var_model} is not set and provider "
                    f"{provider!r} has no default model for task {task!r}: set {var_model}",
                    path=var_model,
                )
            return self._ref(provider, model), var_provider
        return self._ref(provider, model), var_model

    def _tasks(self, raw: dict[str, Any]) -> None:
        for task in TASKS:
            p = "AI_" + task.upper().replace("-", "_")
            primary = self._model(f"{p}_PROVIDER", f"{p}_MODEL", task)
            fallback = self._model(f"{p}_FALLBACK_PROVIDER", f"{p}_FALLBACK_MODEL", task)
            if primary is None and fallback is None:
                continue
            node = _section(raw, "tasks", task)
            pool = list(node.get("models") or [])
            chosen: list[tuple[str, str | None]] = []
            if primary is not None:
                chosen.append(primary)
            elif pool:
                first = pool[0]
                chosen.append((first if isinstance(first, str) else first.get("model"), None))
            if fallback is not None and fallback[0] not in [m for m, _ in chosen]:
                chosen.append(fallback)
            path = f"tasks.{task}.models"
            self._set(raw, path, [m for m, _ in chosen], f"{p}_PROVIDER/{p}_MODEL")
            for i, (_, var) in enumerate(chosen):
                if var:
                    self.sources[f"{path}[{i}]"] = var

    def _tiers(self, raw: dict[str, Any]) -> None:
        for tier in TIERS:
            var = f"AI_MODEL_{tier.upper()}"
            model = self._model_name(var)
            if model is not None:
                node = _section(raw, "tiers", tier)
                ref = self._ref(None, model)
                self._set(
                    raw,
                    f"tiers.{tier}.models",
                    _with_primary(list(node.get("models") or []), ref),
                    var,
                )
            tvar = f"AI_TIMEOUT_{tier.upper()}"
            timeout = self._get(tvar)
            if timeout is not None:
                self._set(raw, f"tiers.{tier}.timeout", timeout, tvar)

    def _roles(self, raw: dict[str, Any]) -> None:
        for role in ROLES:
            var = f"MODEL_{role.upper()}"
            model = self._model_name(var)
            if model is not None:
                node = _section(raw, "roles", role)
                self._set(
                    raw,
                    f"roles.{role}.models",
                    _with_primary(list(node.get("models") or []), self._ref(None, model)),
                    var,
                )
