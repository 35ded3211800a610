"""Where each provider lives: base URLs checked at load, and seed 001's per-model endpoints.

A catalog entry may carry its own ``base_url`` and ``api_key_env`` (seed 001's
``MODEL_CATALOG``).  Such an entry is served by a provider of its own, made here at
load time, so routing, the client factory and the credential checks see one more
provider and need no special case.  An entry whose URL and key variable are a
preset's own (seed 001's ``base_url: https://api.openai.com/v1``) simply belongs to
that preset: same key, same key page, same ``allowed_providers`` name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from polyroute.config.schema import ModelEntry, ProviderConfig, base_url_problem
from polyroute.providers.presets import ProviderSpec, env_prefix

Problem = tuple[str, str]
SIMULATOR_SCHEME = "simulator://"


def _same_url(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _preset_serving(url: str, specs: Mapping[str, ProviderSpec]) -> ProviderSpec | None:
    for spec in specs.values():
        if spec.wire != "simulator" and _same_url(spec.base_url, url):
            return spec
    return None


def resolve_model_endpoints(
    models: Mapping[str, ModelEntry], specs: Mapping[str, ProviderSpec]
) -> tuple[dict[str, ModelEntry], dict[str, ProviderSpec], list[Problem]]:
    """Give every entry a provider; make one for each entry with an endpoint of its own.

    The made provider is named after the model id (``light-1``) and inherits the
    rest (wire, headers, retry, key page) from the entry's ``provider`` when it names
    one; without one it speaks the OpenAI wire, the seed's "OpenAI-compatible"."""
    out_models = dict(models)
    out_specs = dict(specs)
    problems: list[Problem] = []
    for mid, e in models.items():
        if e.base_url is None and e.api_key_env is None:
            continue
        if e.provider is not None:
            base = specs.get(e.provider)
            if base is None:
                continue  # check_references reports the unknown provider
        else:
            assert e.base_url is not None  # the schema requires provider or base_url
            base = _preset_serving(e.base_url, specs)
        url = e.base_url or (base.base_url if base else None)
        key = e.api_key_env or (base.api_key_env if base else None)
        if base is not None and _same_url(url, base.base_url) and key == base.api_key_env:
            out_models[mid] = e.model_copy(update={"provider": base.name})
            continue
        if mid in out_specs:
            problems.append(
                (
                    f"models.{mid}.base_url",
                    f"a model with its own endpoint is served by a provider named after it, "
                    f"and a provider {mid!r} exists already: rename the model, or declare the "
                    f"endpoint under providers: and set models.{mid}.provider to it",
                )
            )
            continue
        if base is None:
            spec = ProviderSpec(
                name=mid,
                wire="openai",
                base_url=url,
                api_key_env=key or f"{env_prefix(mid)}_API_KEY",
                builtin=False,
            )
        else:
            # Its catalog is this one entry, so it is never judged as a closed catalog.
            spec = replace(
                base,
                name=mid,
                base_url=url,
                api_key_env=key,
                default_models={},
                builtin=False,
                closed_catalog=False,
            )
        out_specs[mid] = spec
        out_models[mid] = e.model_copy(update={"provider": mid})
    return out_models, out_specs, problems


def base_url_problems(
    specs: Mapping[str, ProviderSpec],
    user_providers: Mapping[str, ProviderConfig],
    environ: Mapping[str, str],
) -> list[Problem]:
    """``<PROVIDER>_BASE_URL`` values that are no URL, and simulator:// where no
    simulator listens.  The client factory reads these variables when a provider is
    first used; checked here so a pasted ``api.openai.com/v1`` fails at load, naming
    the variable, not at the first call as a connection error."""
    problems: list[Problem] = []
    for name, pc in user_providers.items():
        spec = specs.get(name)
        url = pc.base_url or ""
        if spec is not None and url.startswith(SIMULATOR_SCHEME) and spec.wire != "simulator":
            problems.append(
                (
                    f"providers.{name}.base_url",
                    f"{SIMULATOR_SCHEME} URLs are only for providers of type simulator; "
                    f"{name!r} speaks the {spec.wire} wire and needs an http(s) URL",
                )
            )
    for spec in specs.values():
        var = spec.base_url_env
        value = environ.get(var)
        if not value:
            continue
        example = spec.base_url if spec.base_url and spec.base_url.startswith("http") else None
        why = base_url_problem(value, example)
        if why is None and value.startswith(SIMULATOR_SCHEME) and spec.wire != "simulator":
            why = f"{SIMULATOR_SCHEME} URLs are only for the simulator; {spec.name!r} needs http(s)"
        if why is not None:
            problems.append((var, f"{why} (it sets the base URL of provider {spec.name!r})"))
    return problems
