"""JSON endpoints the dashboard pages need, beside the gateway's own API.

``GET /api/v1/dashboard/session``   is a key needed, and is the presented one valid/admin
``GET /api/v1/catalog``             models (provider, prices, capabilities, key status),
                                    stand-ins on the simulator, and route names
``GET /api/v1/pipelines``           configured pipelines: steps, models, routing, prompts
``POST /api/v1/pipelines/validate`` problems of a pipeline definition, with field paths
``POST /api/v1/pipelines/yaml``     a pipeline definition as YAML (PyYAML ``safe_dump``)
``GET /api/v1/config/validation``   what deserves attention in the loaded configuration
``GET /api/v1/usage/series``        usage per time bucket (cost by group, latency
                                    percentiles, cache hit and fallback rates)

Every endpoint but ``session`` takes the gateway's keys like the rest of the API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response

from polyroute._version import __version__
from polyroute.config.schema import PipelineConfig as FilePipelineConfig
from polyroute.config.validate import route_names
from polyroute.errors import ConfigError, PolyrouteError
from polyroute.pipelines import PipelineConfig, PipelineError, PromptStep, select_models
from polyroute.pipelines.check import config_problems
from polyroute.router import Router
from polyroute.server.errors import RequestError
from polyroute.server.http import authorize, gateway_of, presented_key, read_json

if TYPE_CHECKING:
    from polyroute.providers.registry import CredentialStatus
    from polyroute.usage.store import UsageStore

JSON = "application/json"
MAX_BUCKETS = 200
SIMULATOR = "simulator"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type=JSON)


def _message(
    level: str, path: str, message: str, status: CredentialStatus | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"level": level, "path": path, "message": message}
    if status is not None:
        out["provider"] = status.provider
        out["key_variable"] = status.env_var
        out["key_page"] = status.key_page
    return out


def _missing_key_text(status: CredentialStatus) -> str:
    page = f" (get one at {status.key_page})" if status.key_page else ""
    return f"provider {status.provider!r} has no key: set {status.env_var}{page}"


# -- session ------------------------------------------------------------------------


async def session(request: Request) -> Response:
    """Whether the page must ask for a key; needs no key itself and tells nothing
    but whether the presented key (if any) is accepted, and as admin."""
    gw = gateway_of(request)
    key = presented_key(request)
    verdict = gw.check_key(key, admin=False)
    return _json(
        {
            "version": __version__,
            "auth_required": gw.auth_enabled,
            "authenticated": verdict is not None,
            "admin": gw.check_key(key, admin=True) is not None,
            "usage_enabled": getattr(request.app.state, "usage_store", None) is not None,
        }
    )


# -- catalog ------------------------------------------------------------------------


def _statuses(router: Router) -> dict[str, CredentialStatus]:
    return {name: router.registry.status(name) for name in router.settings.providers}


def _suggested(router: Router, usable: Mapping[str, bool], n: int = 3) -> list[str]:
    """A first selection for Compare: distinct text models the tiers would
    actually call (on the simulator when no key is set), best tier first."""
    out: list[str] = []
    order = ["tier:balanced", "tier:fast", "tier:advanced", "tier:expert"]
    for name in order + route_names(router.config):
        try:
            route = router.resolve(name)
        except PolyrouteError:
            continue
        for c in route.candidates:
            ok = usable.get(c.info.provider, False) and c.info.has("text")
            if ok and c.info.id not in out:
                out.append(c.info.id)
            if len(out) >= n:
                return out
    return out


async def catalog(request: Request) -> Response:
    authorize(request)
    router = gateway_of(request).router
    statuses = _statuses(router)
    usable = {p: s.usable for p, s in statuses.items()}

    def entry(info_dict: dict[str, Any], provider: str, **extra: Any) -> dict[str, Any]:
        st = statuses.get(provider)
        return {
            **info_dict,
            "usable": usable.get(provider, False),
            "key_variable": st.env_var if st else None,
            **extra,
        }

    models = [entry(i.to_dict(), i.provider, kind="catalog") for i in router.catalog]
    seen = {m["id"] for m in models}
    routes: list[dict[str, Any]] = []
    for name in route_names(router.config):
        try:
            r = router.resolve(name)
        except PolyrouteError as exc:
            routes.append({"name": name, "strategy": None, "models": [], "error": str(exc)})
            continue
        routes.append(
            {"name": name, "strategy": r.strategy, "models": [c.info.id for c in r.candidates]}
        )
        for c in r.candidates:  # provider/model references the config makes (flaky/gpt-4o)
            if c.info.id not in seen:
                seen.add(c.info.id)
                models.append(entry(c.info.to_dict(), c.info.provider, kind="referenced"))
    if SIMULATOR in router.settings.providers:
        for info in list(router.catalog):
            sim_id = f"{SIMULATOR}/{info.id}"
            if info.provider == SIMULATOR or not info.has("text") or sim_id in seen:
                continue
            seen.add(sim_id)
            twin = router.catalog.lookup(sim_id)
            models.append(entry(twin.to_dict(), SIMULATOR, kind="simulated", stand_in_for=info.id))
    providers = [
        {
            "provider": name,
            "usable": st.usable,
            "key_variable": st.env_var,
            "key_present": st.present,
            "key_page": st.key_page,
        }
        for name, st in sorted(statuses.items())
    ]
    return _json(
        {
            "models": models,
            "routes": routes,
            "providers": providers,
            "tasks": list(router.config.tasks),
            "suggested": _suggested(router, usable),
        }
    )


# -- pipelines ----------------------------------------------------------------------


def _clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def pipeline_config_dict(cfg: PipelineConfig) -> dict[str, Any]:
    """Seed 000's ``pipeline_config`` shape with nothing unset or empty: what
    ``PipelineConfig.parse`` reads back to the same config."""
    out: dict[str, Any] = {}
    for key in ("default_model", "default_temperature", "default_max_retries"):
        value = getattr(cfg, key)
        if value is not None:
            out[key] = value
    steps: dict[str, Any] = {}
    for name, s in cfg.step_configs.items():
        step: dict[str, Any] = {}
        if s.model is not None:
            step["model"] = s.model
        if s.models is not None:
            specs = []
            for spec in s.models:
                d: dict[str, Any] = {}
                if spec.provider is not None:
                    d["provider"] = spec.provider
                d["model"] = spec.model
                params = _clean_params(spec.parameters)
                if params:
                    d["parameters"] = params
                if spec.priority is not None:
                    d["priority"] = spec.priority
                if spec.weight is not None:
                    d["weight"] = spec.weight
                specs.append(d)
            step["models"] = specs
            step["routing"] = s.routing or "fallback"
        for key in ("temperature", "max_tokens", "max_retries"):
            value = getattr(s, key)
            if value is not None:
                step[key] = value
        steps[name] = step
    out["step_configs"] = steps
    return out


def _file_step_dict(
    step: Mapping[str, Any], prompt: str | None, system: str | None
) -> dict[str, Any]:
    """One step of a ``pipelines:`` section of polyroute.yaml."""
    out: dict[str, Any] = {}
    if "models" in step:
        out["models"] = [
            spec["model"] if "provider" not in spec else f"{spec['provider']}/{spec['model']}"
            for spec in step["models"]
        ]
        out["routing"] = step.get("routing", "fallback")
    elif "model" in step:
        out["model"] = step["model"]
    for key in ("temperature", "max_tokens", "max_retries"):
        if key in step:
            out[key] = step[key]
    if prompt:
        out["prompt"] = prompt
    if system:
        out["system"] = system
    return out


def _needs(step_name: str, prompt: str | None, system: str | None) -> list[str]:
    """The earlier steps a prompt template reads (``{outputs[STEP]}``)."""
    if not prompt:
        return []
    try:
        return sorted(PromptStep(step_name, prompt, system).needs)
    except PipelineError:
        return []


async def list_pipelines(request: Request) -> Response:
    authorize(request)
    router = gateway_of(request).router
    out = []
    for name, pipe in router.config.pipelines.items():
        problem: str | None = None
        effective: PipelineConfig | None = None
        try:
            effective = PipelineConfig.from_settings(router, name)
        except (ConfigError, PolyrouteError) as exc:
            problem = str(exc)
        steps = []
        for step_name, s in pipe.steps.items():
            needs = _needs(step_name, s.prompt, s.system)
            resolved: dict[str, Any] | None = None
            if effective is not None:
                try:
                    resolved = select_models(effective, step_name, router).describe()
                except PolyrouteError as exc:
                    resolved = {"error": str(exc)}
            step_cfg = effective.step_configs.get(step_name) if effective else None
            as_dict = pipeline_config_dict(
                PipelineConfig(step_configs={step_name: step_cfg} if step_cfg else {})
            )["step_configs"].get(step_name, {})
            steps.append(
                {
                    "name": step_name,
                    "prompt": s.prompt,
                    "system": s.system,
                    "needs": needs,
                    "config": as_dict,
                    "resolved": resolved,
                }
            )
        out.append(
            {
                "name": name,
                "default_model": pipe.default_model,
                "default_temperature": pipe.default_temperature,
                "default_max_retries": pipe.default_max_retries,
                "runnable": all(s.prompt for s in pipe.steps.values()),
                "problem": problem,
                "pipeline_config": pipeline_config_dict(effective) if effective else None,
                "steps": steps,
            }
        )
    return _json({"pipelines": out, "default_model": router.config.defaults.model})


def _definition(body: Mapping[str, Any]) -> tuple[str | None, Any]:
    """``(pipeline name or None, pipeline_config data)`` from a request body:
    ``{"pipeline"?, "pipeline_config"}`` or the definition itself."""
    name = body.get("pipeline")
    if name is not None and (not isinstance(name, str) or not name):
        raise RequestError("'pipeline' must be a pipeline name", param="pipeline")
    if "pipeline_config" in body:
        data = body["pipeline_config"]
    else:
        data = {k: v for k, v in body.items() if k not in ("pipeline", "format")}
    if not isinstance(data, dict):
        raise RequestError("'pipeline_config' must be an object", param="pipeline_config")
    return name, data


def _refs(cfg: PipelineConfig) -> Iterable[tuple[str, str]]:
    """``(field path, model reference)`` for every model a config names."""
    if cfg.default_model is not None:
        yield "default_model", cfg.default_model
    for key, s in cfg.step_configs.items():
        base = f"step_configs.{key}"
        if s.model is not None:
            yield f"{base}.model", s.model
        for i, spec in enumerate(s.models or ()):
            yield f"{base}.models[{i}].model", spec.ref


def credential_warnings(router: Router, cfg: PipelineConfig) -> list[dict[str, Any]]:
    """A model whose every candidate's provider lacks its key cannot answer:
    a warning naming the variable to set and where to get a key."""
    out: list[dict[str, Any]] = []
    for path, ref in _refs(cfg):
        try:
            route = router.resolve(ref)
        except PolyrouteError:
            continue  # reported as an error by the reference check
        statuses = [router.registry.status(c.info.provider) for c in route.candidates]
        if statuses and not any(s.usable for s in statuses):
            for st in {s.provider: s for s in statuses}.values():
                out.append(_message("warning", path, f"{ref}: {_missing_key_text(st)}", st))
    return out


def pipeline_problems(
    router: Router, name: str | None, data: Mapping[str, Any]
) -> tuple[PipelineConfig | None, list[dict[str, Any]]]:
    problems: list[dict[str, Any]] = []
    step_names: list[str] | None = None
    if name is not None:
        pipe = router.config.pipelines.get(name)
        if pipe is None:
            known = ", ".join(router.config.pipelines) or "none configured"
            problems.append(
                _message("error", "pipeline", f"unknown pipeline {name!r}; known: {known}")
            )
        else:
            step_names = list(pipe.steps)
    try:
        cfg = PipelineConfig.parse(data)
    except ConfigError as exc:
        problems += [_message("error", p, m) for p, m in exc.problems]
        return None, problems
    problems += [_message("error", p, m) for p, m in config_problems(cfg, router, step_names)]
    problems += credential_warnings(router, cfg)
    return cfg, problems


async def validate_pipeline(request: Request) -> Response:
    authorize(request)
    body = await read_json(request)
    name, data = _definition(body)
    router = gateway_of(request).router
    cfg, problems = pipeline_problems(router, name, data)
    valid = cfg is not None and not any(p["level"] == "error" for p in problems)
    return _json(
        {
            "valid": valid,
            "problems": problems,
            "pipeline_config": pipeline_config_dict(cfg) if cfg is not None else None,
        }
    )


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


async def pipeline_yaml(request: Request) -> Response:
    """Body: ``{"pipeline"?, "pipeline_config", "format"?}``.  ``format`` is
    ``pipeline_config`` (seed 000's shape, the default: what ``POST
    /api/v1/pipeline`` and ``PipelineConfig.parse`` take) or ``config`` (a
    ``pipelines:`` section for polyroute.yaml, prompts included)."""
    authorize(request)
    body = await read_json(request)
    name, data = _definition(body)
    fmt = body.get("format", "pipeline_config")
    if fmt not in ("pipeline_config", "config"):
        raise RequestError("'format' must be 'pipeline_config' or 'config'", param="format")
    router = gateway_of(request).router
    cfg, problems = pipeline_problems(router, name, data)
    errors = [p for p in problems if p["level"] == "error"]
    if cfg is None or errors:
        first = errors[0]
        lines = "; ".join(f"{p['path']}: {p['message']}" for p in errors)
        raise RequestError(f"invalid pipeline: {lines}", param=f"pipeline_config.{first['path']}")
    plain = pipeline_config_dict(cfg)
    label = name or "pipeline"
    if fmt == "pipeline_config":
        head = f"# pipeline_config for {label!r} (POST /api/v1/pipeline, PipelineConfig.parse)\n"
        return _json(
            {"yaml": head + _yaml(plain), "filename": f"{label}.pipeline.yaml", "format": fmt}
        )
    file_steps = router.config.pipelines[name].steps if name in router.config.pipelines else {}
    section: dict[str, Any] = {
        k: v for k, v in plain.items() if k != "step_configs" and v is not None
    }
    steps: dict[str, Any] = {}
    for step_name in [*file_steps, *(s for s in plain["step_configs"] if s not in file_steps)]:
        fs = file_steps.get(step_name)
        steps[step_name] = _file_step_dict(
            plain["step_configs"].get(step_name, {}),
            fs.prompt if fs else None,
            fs.system if fs else None,
        )
    section["steps"] = steps
    try:
        FilePipelineConfig.model_validate(section)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise RequestError(f"cannot write the config form: {exc}", param="format") from None
    head = f"# polyroute.yaml section for pipeline {label!r}\n"
    return _json(
        {
            "yaml": head + _yaml({"pipelines": {label: section}}),
            "filename": f"{label}.polyroute.yaml",
            "format": fmt,
        }
    )


# -- configuration ------------------------------------------------------------------


def _providers_in_use(router: Router) -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for name in route_names(router.config):
        try:
            route = router.resolve(name)
        except PolyrouteError:
            continue
        for c in route.candidates:
            models = used.setdefault(c.info.provider, [])
            if c.info.id not in models:
                models.append(c.info.id)
    return used


async def config_validation(request: Request) -> Response:
    authorize(request)
    gw = gateway_of(request)
    router = gw.router
    out: list[dict[str, Any]] = []
    used = _providers_in_use(router)
    for provider, models in sorted(used.items()):
        st = router.registry.status(provider)
        if not st.usable:
            shown = ", ".join(models[:4]) + (" …" if len(models) > 4 else "")
            out.append(
                _message(
                    "warning",
                    f"providers.{provider}",
                    f"{_missing_key_text(st)}; routes using it ({shown}) fall back past it",
                    st,
                )
            )
    if SIMULATOR in used:
        out.append(
            _message(
                "info",
                f"providers.{SIMULATOR}",
                f"{len(used[SIMULATOR])} model(s) in use run on the simulator: answers are "
                "simulated (priced like the real models). Set a provider key and reload "
                "to use real models.",
            )
        )
    for name in route_names(router.config):
        try:
            route = router.resolve(name)
        except PolyrouteError as exc:
            out.append(_message("error", name, str(exc)))
            continue
        out += [_message("info", name, w) for w in route.warnings]
    for name, pipe in router.config.pipelines.items():
        missing = [s for s, sc in pipe.steps.items() if not sc.prompt]
        if missing:
            out.append(
                _message(
                    "warning",
                    f"pipelines.{name}.steps.{missing[0]}.prompt",
                    f"step(s) {', '.join(missing)} have no prompt: the pipeline cannot run "
                    "from the gateway or the dashboard",
                )
            )
        try:
            cfg = PipelineConfig.from_settings(router, name)
        except ConfigError as exc:
            out += [_message("error", f"pipelines.{name}.{p}", m) for p, m in exc.problems]
            continue
        except PolyrouteError as exc:
            out.append(_message("error", f"pipelines.{name}", str(exc)))
            continue
        for w in credential_warnings(router, cfg):
            w["path"] = f"pipelines.{name}.{w['path']}"
            out.append(w)
    for provider, var in sorted(router.settings.env_sources.items()):
        out.append(_message("info", provider, f"set by environment variable {var}"))
    if not gw.auth_enabled:
        out.append(
            _message(
                "info",
                "server.api_keys_env",
                f"no gateway keys configured: anyone who reaches this port may call it "
                f"(set {router.config.server.api_keys_env} to require keys)",
            )
        )
    if getattr(request.app.state, "usage_store", None) is None:
        out.append(
            _message("info", "usage.store", "usage recording is not enabled on this gateway")
        )
    source = router.settings.path
    return _json(
        {
            "source": str(source) if source else "built-in defaults",
            "generation": gw.generation,
            "messages": out,
        }
    )


# -- usage over time ----------------------------------------------------------------


def _usage_store(request: Request) -> UsageStore:
    store: UsageStore | None = getattr(request.app.state, "usage_store", None)
    if store is None:
        raise RequestError("usage recording is not enabled", status=404, code="usage_disabled")
    return store


def _bucket_count(raw: str | None) -> int:
    text = raw or "24"
    if not text.isdigit() or not 1 <= int(text) <= MAX_BUCKETS:
        raise RequestError(f"'buckets' must be an integer from 1 to {MAX_BUCKETS}", param="buckets")
    return int(text)


_TOTAL_FIELDS = (
    "count",
    "errors",
    "cost",
    "tokens_in",
    "tokens_out",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "cache_hit_rate",
    "fallback_rate",
    "error_rate",
)

# An empty bucket: no calls, nothing spent; rates and percentiles stay unknown (null).
_EMPTY_BUCKET: dict[str, Any] = {
    "count": 0,
    "errors": 0,
    "cost": 0.0,
    "tokens_in": 0,
    "tokens_out": 0,
}


async def usage_series(request: Request) -> Response:
    """``?since=24h&until=&buckets=24&by=model`` → per bucket the totals (cost,
    count, latency p50/p95/p99, cache hit and fallback rates) and the cost of
    each group; groups listed by total cost, highest first."""
    from polyroute.usage.queries import GroupByError, group_names
    from polyroute.usage.window import iso, parse_time

    authorize(request)
    store = _usage_store(request)
    q = request.query_params
    now = time.time()
    try:
        since = parse_time(q.get("since") or "24h", now)
        until = parse_time(q["until"], now) if q.get("until") else now
    except ValueError as exc:
        raise RequestError(str(exc), param="since") from None
    if until <= since:
        raise RequestError("'until' must be after 'since'", param="until")
    buckets = _bucket_count(q.get("buckets"))
    try:
        by = group_names([q["by"]]) if q.get("by") else []
    except GroupByError as exc:
        raise RequestError(str(exc), param="by") from None
    step = (until - since) / buckets
    edges = [(since + i * step, since + (i + 1) * step) for i in range(buckets)]

    async def one(lo: float, hi: float) -> dict[str, Any]:
        totals_rows, rows = await asyncio.gather(
            store.summary(lo, hi), store.summary(lo, hi, by) if by else asyncio.sleep(0, [])
        )
        totals = totals_rows[0] if totals_rows else {}
        totals = {**_EMPTY_BUCKET, **{k: v for k, v in totals.items() if v is not None}}
        groups: dict[str, float] = {}
        for r in rows:
            key = r.get(by[0])
            groups["(none)" if key is None else str(key)] = float(r["cost"])
        return {
            "start": iso(lo),
            "t": lo,
            "totals": {k: totals.get(k) for k in _TOTAL_FIELDS},
            "groups": groups,
        }

    out = await asyncio.gather(*(one(lo, hi) for lo, hi in edges))
    spend: dict[str, float] = {}
    for b in out:
        for k, v in b["groups"].items():
            spend[k] = spend.get(k, 0.0) + v
    return _json(
        {
            "since": iso(since),
            "until": iso(until),
            "step": step,
            "by": by[0] if by else None,
            "groups": sorted(spend, key=lambda k: (-spend[k], k)),
            "buckets": out,
        }
    )
