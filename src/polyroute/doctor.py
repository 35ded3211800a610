"""``polyroute doctor``: is the config valid, and can every provider in use be called?

Exit status: 0 all good, 1 a provider in use lacks credentials or failed its
ping, 2 the configuration is invalid.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from polyroute.config.schema import Budget, usd
from polyroute.config.validate import is_route_ref, pools, ref_of
from polyroute.errors import ConfigError, PolyrouteError
from polyroute.router import Router


@dataclass(slots=True)
class ProviderUse:
    provider: str
    models: list[str]


def providers_in_use(router: Router) -> dict[str, ProviderUse]:
    """Providers that some pool of the config names, with the models it uses."""
    out: dict[str, ProviderUse] = {}
    for _path, items, _ in pools(router.config):
        for item in items:
            ref = ref_of(item)
            if is_route_ref(router.config, ref):
                continue
            info = router.catalog.lookup(ref)
            use = out.setdefault(info.provider, ProviderUse(info.provider, []))
            if info.id not in use.models:
                use.models.append(info.id)
    return out


def budget_summary(budget: Budget) -> str:
    """The budget limits in force, with enough digits for sub-cent per-request limits."""
    parts = []
    if budget.max_cost_per_request is not None:
        parts.append(f"max_cost_per_request {usd(budget.max_cost_per_request)}")
    if budget.monthly is not None:
        parts.append(f"monthly {usd(budget.monthly)} ({budget.on_monthly_exceeded} when reached)")
    if budget.per_key_monthly is not None:
        parts.append(f"per_key_monthly {usd(budget.per_key_monthly)}")
    if budget.max_tier is not None:
        parts.append(f"max_tier {budget.max_tier}")
    return ", ".join(parts)


async def _ping(router: Router, model: str) -> str:
    try:
        env = await router.complete(model, "ping", max_tokens=1, timeout=15)
    except PolyrouteError as exc:
        return f"[red]failed[/red]: {escape(str(exc))}"
    return f"[green]ok[/green] {env.latency * 1000:.0f} ms" + (
        " (simulated)" if env.simulated else ""
    )


async def _ping_all(router: Router, models: dict[str, str]) -> dict[str, str]:
    """Ping every provider's first model at once (provider -> model), on one event loop."""
    async with router:
        results = await asyncio.gather(*(_ping(router, m) for m in models.values()))
    return dict(zip(models, results, strict=True))


def run_doctor(config: Path | None, ping: bool, con: Console) -> int:
    try:
        router = Router.from_config(config)
    except ConfigError as exc:
        # escape: paths like models[0] and quoted values are text, not rich markup
        con.print(f"[red]configuration invalid[/red]\n{escape(str(exc))}", soft_wrap=True)
        return 2
    path = router.settings.path
    con.print(
        f"config: {path if path else 'built-in defaults (no file found)'} [green]valid[/green]"
    )
    for p, var in sorted(router.settings.env_sources.items()):
        con.print(f"  {p} set by environment variable {var}")
    limits = budget_summary(router.config.budget)
    if limits:
        con.print(f"budget: {limits}")
    # Loaded, but probably not what was meant (e.g. a model the provider does not list).
    for p, msg in router.settings.warnings:
        con.print(f"[yellow]warning[/yellow] {escape(p)}: {escape(msg)}", soft_wrap=True)
    used = providers_in_use(router)
    t = Table(title="providers in use")
    for col in (
        "provider",
        "key variable",
        "status",
        "base URL",
        "models",
        *(("ping",) if ping else ()),
    ):
        t.add_column(col)
    pings: dict[str, str] = {}
    if ping:
        usable = {n: u.models[0] for n, u in used.items() if router.registry.status(n).usable}
        pings = asyncio.run(_ping_all(router, usable))
    bad = 0
    missing: list[tuple[str, str, str | None]] = []
    for name in sorted(used):
        st = router.registry.status(name)
        if st.present:
            status = "[green]key set[/green]"
        elif not st.required:
            status = "[green]no key needed[/green]"
        else:
            bad += 1
            status = f"[red]missing[/red]: set {st.env_var}"
            missing.append((name, st.env_var or "", st.key_page))
        models = ", ".join(used[name].models[:4]) + (" …" if len(used[name].models) > 4 else "")
        row = [name, st.env_var or "-", status, st.base_url or "-", models]
        if ping:
            result = pings.get(name, "skipped (no key)")
            bad += "failed" in result
            row.append(result)
        t.add_row(*row)
    con.print(t)
    for name, var, page in missing:
        # Outside the table, so a narrow terminal never cuts the variable or the link.
        con.print(
            f"[red]{name}[/red]: set {var}" + (f" (get a key at {page})" if page else ""),
            soft_wrap=True,
        )
    if bad:
        con.print(
            f"[red]{bad} problem(s)[/red]: calls to those providers will fail over to the "
            "next model in their pools, or fail if none is left."
        )
        return 1
    con.print("[green]all providers in use are ready[/green]")
    return 0
