"""Loading: file (or dict) → built-in pools → environment → validated ``Settings``.

Where the file comes from: ``--config``, else ``POLYROUTE_CONFIG``, else
``./polyroute.yaml``, else none (built-in defaults only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from polyroute.config.catalog import Catalog
from polyroute.config.defaults import PoolLocalizer, builtin_sections
from polyroute.config.endpoints import base_url_problems, resolve_model_endpoints
from polyroute.config.env import EnvOverlay, split_csv
from polyroute.config.schema import Config, ModelEntry, ProviderConfig
from polyroute.config.validate import TASK_NEEDS, check_models, check_references, no_model_reason
from polyroute.errors import ConfigError
from polyroute.providers.presets import ProviderSpec, build_provider_specs

CONFIG_ENV = "POLYROUTE_CONFIG"
DEFAULT_FILE = "polyroute.yaml"


@dataclass(slots=True)
class Settings:
    """Everything a router needs, loaded and checked once."""

    config: Config
    catalog: Catalog
    providers: dict[str, ProviderSpec]
    environ: Mapping[str, str]
    path: Path | None = None
    env_sources: dict[str, str] = field(default_factory=dict)
    # (dotted path, message): loads, but probably not what was meant (a model the
    # provider's catalog does not list).  `polyroute doctor` prints them.
    warnings: list[tuple[str, str]] = field(default_factory=list)


def find_config_file(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist", path="--config")
        return p
    env_path = environ.get(CONFIG_ENV)
    if env_path:
        p = Path(env_path)
        if not p.is_file():
            raise ConfigError(
                f"{CONFIG_ENV}={env_path} names a file that does not exist", path=CONFIG_ENV
            )
        return p
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "PoolMember", "function-after[_known_caps(), list[str]]"):
            continue  # union branch names pydantic puts in the location
        else:
            out += ("." if out else "") + str(part)
    return out


def _problems(
    exc: ValidationError, sources: Mapping[str, str], prefix: str = ""
) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        # An error on a whole entry (a model validator) has no location of its own.
        path = ".".join(p for p in (prefix, _dotted(tuple(err["loc"]))) if p)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see the README's configuration reference)"
        elif err["type"] == "literal_error":
            msg = msg.replace("Input should be", "must be one of:")
        var = _source_of(path, sources)
        if var:
            msg += f" (from environment variable {var})"
        key = (path, msg)
        if key not in seen:
            seen.add(key)
            problems.append(key)
    return problems


def _allowed_providers(raw: Mapping[str, Any], env: Mapping[str, str]) -> frozenset[str] | None:
    """``ALLOWED_MODEL_PROVIDERS`` or ``server.allowed_providers``, read before validation
    so the built-in pools leave out providers that are not allowed."""
    var = (env.get("ALLOWED_MODEL_PROVIDERS") or "").strip()
    if var:
        return frozenset(split_csv(var))
    server = raw.get("server")
    listed = server.get("allowed_providers") if isinstance(server, dict) else None
    if isinstance(listed, list):
        return frozenset(str(p) for p in listed)
    return None


def _source_of(path: str, sources: Mapping[str, str]) -> str | None:
    """The variable that set ``path`` or its closest parent (the longest match wins)."""
    best = ""
    for p in sources:
        if (path == p or path.startswith((p + ".", p + "["))) and len(p) > len(best):
            best = p
    return sources[best] if best else None


def _merge_builtin(raw: dict[str, Any], section: str, builtin: dict[str, Any]) -> None:
    user = raw.get(section)
    if user is None:
        user = {}
    if not isinstance(user, dict):
        return  # let schema validation report the wrong type
    merged = {name: dict(body) for name, body in builtin.items()}
    for name, body in user.items():
        if isinstance(body, dict) and name in merged:
            merged[name] = {**merged[name], **body}
        else:
            merged[name] = body
    raw[section] = merged


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    use_env: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and check the configuration.  ``data`` (a dict) replaces the file;
    ``overrides`` (runtime changes, e.g. from the admin API) are merged over the file
    and the environment's variables."""
    env: Mapping[str, str] = dict(os.environ if environ is None else environ)
    overlay_env: Mapping[str, str] = env if use_env else {}
    file = None
    if data is not None:
        raw = _deep_copy(dict(data))
    else:
        file = find_config_file(path, env)
        raw = read_yaml(file) if file else {}

    problems: list[tuple[str, str]] = []
    user_providers: dict[str, ProviderConfig] = {}
    user_models: dict[str, ModelEntry] = {}
    for name, body in (raw.get("providers") or {}).items():
        try:
            user_providers[name] = ProviderConfig.model_validate(body)
        except ValidationError as exc:
            problems += _problems(exc, {}, f"providers.{name}")
    for mid, body in (raw.get("models") or {}).items():
        try:
            user_models[mid] = ModelEntry.model_validate(body)
        except ValidationError as exc:
            problems += _problems(exc, {}, f"models.{mid}")

    # Built from the entries that parsed, so a bad <PROVIDER>_BASE_URL is reported
    # together with the file's problems.
    specs = build_provider_specs(user_providers)
    chain_problems = [
        (
            f"providers.{name}.fallback",
            f"unknown provider {other!r}; known: {', '.join(sorted(specs))}",
        )
        for name, spec in specs.items()
        for other in spec.fallback
        if other not in specs
    ]
    if chain_problems:
        raise ConfigError(chain_problems)
    # Seed 001: models with their own base_url / api_key_env become providers of their
    # own; the resolved provider is written back so the validated config agrees.
    user_models, specs, endpoint_problems = resolve_model_endpoints(user_models, specs)
    problems += endpoint_problems
    for mid, entry in user_models.items():
        body = (raw.get("models") or {}).get(mid)
        if isinstance(body, dict):
            body["provider"] = entry.provider
    problems += base_url_problems(specs, user_providers, env)
    if problems:
        raise ConfigError(problems)
    catalog = Catalog.build(user_models, frozenset(specs))
    closed = frozenset(name for name, spec in specs.items() if spec.closed_catalog)

    def has_key(provider: str) -> bool:
        spec = specs.get(provider)
        return bool(spec and spec.api_key_env and overlay_env.get(spec.api_key_env))

    def provider_of(model_id: str) -> str | None:
        info = catalog.get(model_id)
        return info.provider if info else None

    prefer = (overlay_env.get("AI_PROVIDER") or "").strip().lower() or None
    if prefer is not None and prefer not in specs:
        raise ConfigError(
            f"AI_PROVIDER={prefer}: unknown provider; known: {', '.join(sorted(specs))}",
            path="AI_PROVIDER",
        )
    builtin = builtin_sections(
        PoolLocalizer(provider_of, has_key, prefer, _allowed_providers(raw, overlay_env))
    )
    for section in ("tiers", "tasks", "roles"):
        _merge_builtin(raw, section, builtin[section])
    defaults = raw.setdefault("defaults", {}) if isinstance(raw.get("defaults", {}), dict) else {}
    if isinstance(defaults, dict) and "model" not in defaults:
        defaults["model"] = builtin["default_model"]

    def model_ref(provider: str | None, model: str) -> str:
        if provider is None:
            if prefer is None or catalog.is_model_ref(model):
                return model
            provider = prefer
        info = catalog.get(model)
        if info is not None and info.provider == provider:
            return model
        return f"{provider}/{model}"

    def default_for(provider: str, task: str) -> str | None:
        # EnvOverlay has already refused a provider that is not in ``specs``.
        return specs[provider].default_models.get(task)

    def cannot_serve(provider: str, task: str) -> str | None:
        need = TASK_NEEDS.get(task)
        if need is None or provider not in closed:
            return None
        if any(m.has(need) for m in catalog.models_of(provider)):
            return None
        return no_model_reason(catalog, provider, need)

    overlay = EnvOverlay(overlay_env, model_ref, default_for, frozenset(specs), cannot_serve)
    raw = overlay.apply(raw)
    if overrides:
        # Runtime changes (the admin API, Router.update_task) come last: they are the
        # newest word, over the file and over the environment it started with.
        raw = deep_merge(raw, overrides)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, overlay.sources)) from None

    def annotate(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for p, m in found:
            var = _source_of(p, overlay.sources)
            out.append((p, m + (f" (from environment variable {var})" if var else "")))
        return out

    refs = check_references(cfg, catalog)
    fit, warnings = check_models(cfg, catalog, closed)
    if refs or fit:
        raise ConfigError(annotate(refs + fit))
    return Settings(cfg, catalog, specs, env, file, overlay.sources, annotate(warnings))


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, recursing into mappings; lists and scalars replace."""
    out: dict[str, Any] = _deep_copy(dict(base))
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = _deep_copy(v)
    return out


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj
