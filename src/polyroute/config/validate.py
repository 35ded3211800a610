"""Second-step checks across the parsed config: every reference resolves.

Unknown models, providers and routes, empty pools, route cycles, providers
outside ``server.allowed_providers``: each problem is reported with its dotted
path and what would be allowed, all at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from polyroute.config.catalog import Catalog
from polyroute.config.schema import TIERS, Config, PoolItem

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
        if pipe.default_model:
            yield f"pipelines.{pname}.default_model", [pipe.default_model], False
        for sname, step in pipe.steps.items():
            if step.model:
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
