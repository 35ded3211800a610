"""Runtime reassignments (seed 004's ``updateTaskConfig``), validated like config.

A change is a config *override*: a small mapping merged over the file and the
environment when the settings are rebuilt (``load_settings(overrides=...)``),
so it takes effect, survives later rebuilds and is checked by the same rules —
unknown models, providers outside ``allowed_providers``, capability mismatches.
``Router.update_task`` and ``PUT /api/v1/tasks/{task}`` both build theirs here.
"""

from __future__ import annotations

from typing import Any

from polyroute.config.load import Settings
from polyroute.config.validate import ALWAYS_ALLOWED
from polyroute.errors import ConfigError, ProviderNotAllowedError


def model_ref(
    settings: Settings, task: str, provider: Any, model: Any, field: str = ""
) -> str | None:
    """The catalog id or ``provider/model`` for a (provider, model) pair; a provider
    alone means its default model for ``task``.  None when neither is given."""
    if provider is None and model is None:
        return None
    specs = settings.providers
    if provider is not None and (not isinstance(provider, str) or provider not in specs):
        raise ConfigError(
            f"unknown provider {provider!r}; known: {', '.join(sorted(specs))}",
            path=f"{field}provider",
        )
    allowed = settings.config.server.allowed_providers
    banned = allowed is not None and provider not in (*allowed, *ALWAYS_ALLOWED)
    if isinstance(provider, str) and allowed is not None and banned:
        raise ProviderNotAllowedError(
            f"{field}provider {provider!r} is not in server.allowed_providers / "
            f"ALLOWED_MODEL_PROVIDERS ({', '.join(allowed)})"
        )
    if model is None:
        assert isinstance(provider, str)  # both None returned above
        spec = specs[provider]
        model = spec.default_models.get(task) or spec.default_models.get("text")
        if model is None:
            raise ConfigError(
                f"provider {provider!r} has no default model for {task}; give a model",
                path=f"{field}model",
            )
    if not isinstance(model, str) or not model.strip():
        raise ConfigError("model must be a non-empty string", path=f"{field}model")
    info = settings.catalog.get(model)
    if provider is None or (info is not None and info.provider == provider):
        return model
    return f"{provider}/{model}"


def task_override(
    settings: Settings,
    task: str,
    provider: Any = None,
    model: Any = None,
    fallback_provider: Any = None,
    fallback_model: Any = None,
) -> dict[str, Any]:
    """The override that makes ``task`` use this primary (and fallback) model."""
    primary = model_ref(settings, task, provider, model)
    if primary is None:
        raise ConfigError("give provider and/or model", path="model")
    fallback = model_ref(settings, task, fallback_provider, fallback_model, "fallback_")
    models = [primary] + ([fallback] if fallback and fallback != primary else [])
    return {"tasks": {task: {"models": models}}}


def pool_override(section: str, name: str, models: list[str]) -> dict[str, Any]:
    """``tiers`` / ``routes``: a new model list for one pool."""
    if not models or not all(isinstance(m, str) and m.strip() for m in models):
        raise ConfigError("models must be a non-empty list of model names", path="models")
    return {section: {name: {"models": list(models)}}}


def role_override(role: str, models: list[str], product_type: str | None) -> dict[str, Any]:
    if not models:
        raise ConfigError("models must be a non-empty list of model names", path="models")
    if product_type:
        return {"roles": {role: {"by_product": {product_type: list(models)}}}}
    return {"roles": {role: {"models": list(models)}}}


def step_override(pipeline: str, step: str, models: list[str]) -> dict[str, Any]:
    if not models:
        raise ConfigError("models must be a non-empty list of model names", path="models")
    # Both keys, so the new choice replaces whichever form the step had.
    spec: dict[str, Any] = (
        {"model": models[0], "models": None}
        if len(models) == 1
        else {"model": None, "models": models}
    )
    return {"pipelines": {pipeline: {"steps": {step: spec}}}}
