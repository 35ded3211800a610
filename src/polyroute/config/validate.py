"""Second-step checks across the parsed config: every reference resolves.

Unknown models, providers and routes, malformed model names, empty pools, route
cycles, providers outside ``server.allowed_providers``, models that cannot do what
their pool needs (``check_models``): each problem is reported with its dotted path
and what would be allowed, all at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from polyroute.config.catalog import Catalog, ModelInfo
from polyroute.config.schema import TIERS, Config, PoolItem, model_name_problem

Problem = tuple[str, str]

ROUTE_PREFIXES = ("tier:", "task:", "role:", "step:")
ALWAYS_ALLOWED = frozenset({"simulator"})  # local, nothing leaves the process


def ref_of(item: PoolItem) -> str:
    return item if isinstance(item, str) else item.model


def route_exists(cfg: Config, ref: str) -> bool:
    kind, _, name = ref.partition(":")
    if kind == "tier":
        return name in cfg.tiers
    if kind == "task":
        return name in cfg.tasks
    if kind == "role":
        return name.split("@", 1)[0] in cfg.roles
    if kind == "step":
        pipe = name.partition("/")[0]
        # A step the config does not list runs on the pipeline's default (seed 000).
        return pipe in cfg.pipelines
    return ref in cfg.routes


def is_route_ref(cfg: Config, ref: str) -> bool:
    return ref.startswith(ROUTE_PREFIXES) or ref in cfg.routes


def pools(cfg: Config) -> Iterator[tuple[str, list[PoolItem], bool]]:
    """(path, items, must_be_nonempty) for every pool in the config."""
    for section, table in (("tiers", cfg.tiers), ("tasks", cfg.tasks), ("routes", cfg.routes)):
        for name, pool in table.items():
            yield f"{section}.{name}.models", pool.models, True
            for i, sched in enumerate(pool.schedules):
                yield f"{section}.{name}.schedules[{i}].models", sched.models, True
    for name, role in cfg.roles.items():
        yield f"roles.{name}.models", role.models, True
        for product, items in role.by_product.items():
            yield f"roles.{name}.by_product.{product}", items, True
    for pname, pipe in cfg.pipelines.items():
        # `is not None`: an empty name is a malformed one, not an absent one
        if pipe.default_model is not None:
            yield f"pipelines.{pname}.default_model", [pipe.default_model], False
        for sname, step in pipe.steps.items():
            if step.model is not None:
                yield f"pipelines.{pname}.steps.{sname}.model", [step.model], False
            if step.models is not None:
                yield f"pipelines.{pname}.steps.{sname}.models", step.models, True
    yield "defaults.model", [cfg.defaults.model], False


def _unknown(cfg: Config, catalog: Catalog, ref: str) -> str:
    names = [m.id for m in catalog] + list(cfg.routes)
    close = difflib.get_close_matches(ref, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown model or route {ref!r}{hint} (allowed: a catalog id from `polyroute models`, "
        f"provider/model with a known provider, tier:/task:/role:/step: routes, or a name "
        f"under routes)"
    )


def check_references(cfg: Config, catalog: Catalog) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for tier in cfg.tiers:
        if tier not in TIERS:
            problems.append((f"tiers.{tier}", f"unknown tier; allowed: {', '.join(TIERS)}"))
    allowed = cfg.server.allowed_providers
    known = ", ".join(sorted(catalog.providers))
    for mid, entry in cfg.models.items():
        bad_id = model_name_problem(mid)
        if bad_id:  # an id no pool could name: say so where it is defined
            problems.append((f"models.{mid}", bad_id))
        if entry.provider not in catalog.providers:
            problems.append(
                (
                    f"models.{mid}.provider",
                    f"unknown provider {entry.provider!r}; known: {known}",
                )
            )
    if allowed is not None:
        for p in allowed:
            if p not in catalog.providers:
                problems.append(
                    (
                        "server.allowed_providers",
                        f"unknown provider {p!r}; known: {', '.join(sorted(catalog.providers))}",
                    )
                )
    for path, items, nonempty in pools(cfg):
        if nonempty and not items:
            problems.append((path, "empty pool: list at least one model"))
        for i, item in enumerate(items):
            ref = ref_of(item)
            where = path if len(items) == 1 and not nonempty else f"{path}[{i}]"
            if is_route_ref(cfg, ref):
                if not route_exists(cfg, ref):
                    problems.append((where, f"unknown route {ref!r}"))
                continue
            bad_name = model_name_problem(ref)
            if bad_name:  # a malformed name: its shape is the problem, not its spelling
                problems.append((where, bad_name))
                continue
            if not catalog.is_model_ref(ref):
                problems.append((where, _unknown(cfg, catalog, ref)))
                continue
            provider = catalog.lookup(ref).provider
            if allowed is not None and provider not in allowed and provider not in ALWAYS_ALLOWED:
                problems.append(
                    (
                        where,
                        f"provider {provider!r} of {ref!r} is not in "
                        f"server.allowed_providers ({', '.join(allowed)})",
                    )
                )
    problems.extend(_cycles(cfg))
    return problems


# What a pool's models must be able to do, by the section holding it (seed 000's
# "model compatibility with step requirements").  Named routes (routes.*) and tasks
# no seed defines may hold any kind of model, so they are not judged.
TASK_NEEDS: dict[str, str] = {
    "text": "text",
    "agent": "text",
    "video-slides": "text",
    "image": "image_generation",
    "embedding": "embedding",
}
_TEXT_SECTIONS = ("tiers", "roles", "pipelines", "defaults")
_CAN = {"text": "serve text", "image_generation": "generate images", "embedding": "embed"}
_KIND = {"text": "text", "image_generation": "image generation", "embedding": "embedding"}


def pool_needs(path: str) -> str | None:
    """The capability every model of the pool at ``path`` needs, or None."""
    section, _, rest = path.partition(".")
    if section in _TEXT_SECTIONS:
        return "text"
    if section == "tasks":
        return TASK_NEEDS.get(rest.split(".", 1)[0].split("[", 1)[0])
    return None


def own_model(catalog: Catalog, ref: str) -> ModelInfo | None:
    """The catalog entry ``ref`` names: a catalog id, or provider/model where the
    model is one that provider serves in the catalog (by id or provider name)."""
    info = catalog.get(ref)
    if info is not None:
        return info
    split = catalog.split_provider_ref(ref)
    if split is None:
        return None
    provider, name = split
    for m in catalog.models_of(provider):
        if name in (m.id, m.name):
            return m
    return None


def _closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    # cutoff 0: always the n nearest, so a name far from all of them still gets a list
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.0)


def _providers_that_can(catalog: Catalog, need: str) -> str:
    first: dict[str, str] = {}
    for m in catalog:
        if m.has(need):
            first.setdefault(m.provider, m.id)
    return ", ".join(f"{p} ({mid})" for p, mid in sorted(first.items())) or "none"


def check_models(
    cfg: Config, catalog: Catalog, closed: frozenset[str] = frozenset()
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) about what the models in each pool are and can do.

    Errors: a model whose catalog facts say it cannot do what its pool needs (an
    image model on a text tier, a text model on tasks.image), or a provider with a
    ``closed`` catalog that has no model able to do it at all (anthropic images).
    Warnings: ``provider/model`` naming a model a closed-catalog provider does not
    list, with that provider's closest names.  Uncatalogued refs of open providers
    (ollama/llama3) have no facts and are not judged."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for path, items, nonempty in pools(cfg):
        need = pool_needs(path)
        for i, item in enumerate(items):
            ref = ref_of(item)
            where = path if len(items) == 1 and not nonempty else f"{path}[{i}]"
            if is_route_ref(cfg, ref) or model_name_problem(ref) or not catalog.is_model_ref(ref):
                continue  # check_references reports these
            info = catalog.lookup(ref)
            own = own_model(catalog, ref)
            if own is None and info.provider in closed:
                warnings.append((where, _unlisted(catalog, info, need)))
            if need is not None:
                # A closed provider's facts are its own entry's; an open provider's
                # ref borrows a same-named entry's facts (simulator/dall-e-3), if any.
                is_closed = info.provider in closed
                facts = own if is_closed else (info if info.facts_known else None)
                why = _cannot(catalog, ref, info.provider, facts, need, is_closed)
                if why:
                    errors.append((where, why))
    return errors, warnings


def _unlisted(catalog: Catalog, info: ModelInfo, need: str | None) -> str:
    """The warning for provider/model naming what a closed-catalog provider does not list."""
    provider, name = info.provider, info.name
    other = catalog.get(name)
    if other is not None and other.provider != provider:
        what = f"{name!r} is {other.provider}'s model, not one {provider} serves"
    else:
        what = f"the catalog lists no {provider} model {name!r}"
    pick = [m.id for m in catalog.models_of(provider) if need is None or m.has(need)]
    near = f"; closest {provider} models: {', '.join(_closest(name, pick))}" if pick else ""
    return (
        f"{what}{near} (if {provider} has released it since, add it under models: with "
        f"provider: {provider})"
    )


def _cannot(
    catalog: Catalog,
    ref: str,
    provider: str,
    facts: ModelInfo | None,
    need: str,
    closed: bool,
) -> str | None:
    """Why ``ref`` cannot serve a pool that needs ``need``, or None when it can (or
    when nothing is known about it)."""
    able = [m.id for m in catalog.models_of(provider) if m.has(need)]
    if facts is not None and not facts.has(need):
        caps = ", ".join(sorted(facts.capabilities)) or "none"
        if able:
            hint = f"{provider} models that can: {', '.join(_closest(facts.name, able))}"
        else:
            hint = f"models that can, by provider: {_providers_that_can(catalog, need)}"
        return (
            f"{ref!r} cannot {_CAN[need]} (its capabilities: {caps}); models here need "
            f"capability {need!r}; {hint}"
        )
    if closed and not able:
        return f"{ref!r}: {no_model_reason(catalog, provider, need)}"
    return None


def no_model_reason(catalog: Catalog, provider: str, need: str) -> str:
    """What to say when ``provider`` (a closed catalog) has no model that can ``need``."""
    return (
        f"provider {provider!r} has no {_KIND[need]} model in the catalog; models that can, "
        f"by provider: {_providers_that_can(catalog, need)}"
    )


def _cycles(cfg: Config) -> list[tuple[str, str]]:
    """Routes may name other routes; a loop among them can never resolve."""
    graph: dict[str, list[str]] = {}
    for section, table in (("tier", cfg.tiers), ("task", cfg.tasks)):
        for name, pool in table.items():
            graph[f"{section}:{name}"] = [r for r in pool.model_ids() if is_route_ref(cfg, r)]
    for name, role in cfg.roles.items():
        refs = [ref_of(i) for i in role.models]
        for items in role.by_product.values():
            refs += [ref_of(i) for i in items]
        graph[f"role:{name}"] = [r for r in refs if is_route_ref(cfg, r)]
    for name, pool in cfg.routes.items():
        graph[name] = [r for r in pool.model_ids() if is_route_ref(cfg, r)]
    problems: list[tuple[str, str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            nxt_key = nxt.split("@", 1)[0]
            if state.get(nxt_key) == 1:
                loop = (
                    [*trail[trail.index(nxt_key) :], nxt_key]
                    if nxt_key in trail
                    else [node, nxt_key]
                )
                problems.append((_path_of(node), "route cycle: " + " -> ".join(loop)))
            elif state.get(nxt_key) is None:
                visit(nxt_key, [*trail, nxt_key])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    return problems


_SECTION = {"tier": "tiers", "task": "tasks", "role": "roles"}


def _path_of(node: str) -> str:
    kind, sep, name = node.partition(":")
    if sep:
        return f"{_SECTION[kind]}.{name}.models"
    return f"routes.{node}.models"


def route_names(cfg: Config) -> list[str]:
    """Every route name the config defines, in the order `polyroute routes` shows."""
    names = [f"tier:{t}" for t in cfg.tiers] + [f"task:{t}" for t in cfg.tasks]
    for role, rc in cfg.roles.items():
        names.append(f"role:{role}")
        names += [f"role:{role}@{p}" for p in rc.by_product]
    for pipe, pc in cfg.pipelines.items():
        names += [f"step:{pipe}/{s}" for s in pc.steps]
    return names + list(cfg.routes)
