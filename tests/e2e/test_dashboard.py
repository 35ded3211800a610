"""The dashboard in headless Chromium against a real gateway on 127.0.0.1.

The gateway runs the built-in simulator defaults plus a provider that always
fails (``flaky``), a named route through it, and a two-step prompt pipeline.
Tests run in file order and share the gateway: the compare and pipeline runs
fill the usage store and the run list that later pages show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import PHONE, WIDE, Console, chromium_path

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install playwright; no browser "
    "download needed: the tests drive Debian's chromium)",
)
if chromium_path() is None:
    pytest.skip(
        "no Chromium binary at /usr/bin/chromium (apt-get install chromium, or set "
        "POLYROUTE_CHROMIUM): the dashboard's browser tests need one",
        allow_module_level=True,
    )

from polyroute.config.schema import PipelineConfig as FilePipelineConfig  # noqa: E402
from polyroute.pipelines import PipelineConfig  # noqa: E402
from tests.e2e.kit import DashboardServer, e2e_config  # noqa: E402

expect = sync_api.expect
PAGES = ("compare", "routes", "pipelines", "usage", "runs")
THREE = ["simulator/gpt-4o", "simulator/claude-sonnet-4-20250514", "simulator/gpt-4o-mini"]
TIMEOUT = 15_000


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    db = tmp_path_factory.mktemp("e2e") / "usage.db"
    with DashboardServer(e2e_config(f"sqlite:///{db}"), {}) as server:
        yield server


class Tab:
    """One browser page on the gateway, with its console errors collected."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, base_url=base)
        self.context.set_default_timeout(TIMEOUT)
        self.page = self.context.new_page()
        self.console = Console()
        self.console.attach(self.page)

    def open(self, page: str) -> Any:
        self.page.goto(f"/#/{page}")
        expect(self.page.locator(f'.page[data-page="{page.split("/")[0]}"] h1')).to_be_visible()
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, gw: DashboardServer) -> Iterator[Tab]:
    t = Tab(browser, gw.url, WIDE)
    yield t
    t.close()


def select_only(page: Any, models: list[str]) -> None:
    """Clear the model picker's selection, then add ``models`` by name."""
    chips = page.locator("#selected-models .chip button")
    while chips.count():
        chips.first.click()
    box = page.get_by_label("Add a model or route by name")
    for m in models:
        box.fill(m)
        box.press("Enter")
    expect(page.locator("#selected-models .chip")).to_have_count(len(models))


def test_compare_three_models_renders_three_cards(tab: Tab) -> None:
    page = tab.open("compare")
    select_only(page, THREE)
    page.locator("#compare-run").click()
    cards = page.locator('.result-card[data-status="ok"]')
    expect(cards).to_have_count(3)
    for model in THREE:
        card = page.locator(f'.result-card[data-model="{model}"]')
        expect(card.locator('[data-figure="tokens"] .value')).to_have_text(
            re.compile(r"^\d+ → \d+$")
        )
        expect(card.locator('[data-figure="latency"] .value')).to_have_text(
            re.compile(r"\d+ (ms|s)$")
        )
        expect(card.locator('[data-figure="cost"] .value')).to_have_text(re.compile(r"^\$0\.\d+$"))
        expect(card.locator('[data-figure="retries"] .value')).to_have_text("0")
        expect(card.locator("[data-output]")).to_contain_text("[simulated")
    expect(page.locator("#compare-summary")).to_contain_text("3 of 3 answered")
    # The diff of two outputs, side by side.
    expect(page.locator('[data-diff-side="left"]')).not_to_be_empty()
    expect(page.locator('[data-diff-side="right"]')).not_to_be_empty()
    # Copy as config: a snippet that is YAML naming the model.
    first = page.locator(f'.result-card[data-model="{THREE[0]}"]')
    first.locator('[data-action="copy-config"]').click()
    snippet = first.locator(".config-snippet")
    expect(snippet).to_be_visible()
    assert yaml.safe_load(snippet.inner_text()) == {"tasks": {"text": {"models": [THREE[0]]}}}
    assert tab.console.take() == []


def test_forced_failure_is_an_error_card_and_cooldown_in_routes(
    tab: Tab, screenshots: Path
) -> None:
    page = tab.open("compare")
    select_only(page, ["flaky/gpt-4o", "simulator/gpt-4o-mini"])
    page.locator("#compare-run").click()
    bad = page.locator('.result-card[data-model="flaky/gpt-4o"]')
    expect(bad).to_have_attribute("data-status", "error")
    expect(bad).to_have_class(re.compile(r"\berror\b"))
    expect(bad.locator(".error-text")).to_contain_text("simulated server error")
    expect(bad.locator(".attempts")).to_contain_text("server_error")
    expect(page.locator('.result-card[data-model="simulator/gpt-4o-mini"]')).to_have_attribute(
        "data-status", "ok"
    )
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / "compare-failure-1280.png"), full_page=True)

    page = tab.open("routes")
    # A provider in use without its key: a banner naming the variable, linking its key page.
    banner = page.locator("#key-banners .banner")
    expect(banner).to_contain_text("OPENAI_API_KEY")
    expect(banner.get_by_role("link", name="Get a key")).to_have_attribute(
        "href", "https://platform.openai.com/api-keys"
    )
    expect(page.locator('#config-messages li[data-level="warning"]')).to_contain_text(
        "OPENAI_API_KEY"
    )
    row = page.locator('.route-card[data-route="flaky-route"] tr[data-model="flaky/gpt-4o"]')
    expect(row).to_have_attribute("data-state", "cooling")
    expect(row).to_contain_text("cooling down")
    expect(row).to_contain_text("simulated server error")
    expect(page.locator("#cooling-summary")).to_contain_text("flaky/gpt-4o")
    healthy = page.locator(
        '.route-card[data-route="flaky-route"] tr[data-model="simulator/gpt-4o-mini"]'
    )
    expect(healthy).to_have_attribute("data-state", "healthy")
    page.locator('.route-card[data-route="flaky-route"]').scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "routes-cooldown-1280.png"))
    assert tab.console.take() == []


def test_pipeline_step_edit_validates_previews_and_saves_yaml(
    tab: Tab, gw: DashboardServer
) -> None:
    page = tab.open("pipelines/article")
    step = page.locator('.step-card[data-step="outline"]')
    step.locator('[data-action="edit-models"]').click()
    editor = step.locator('[data-step-editor="outline"]')
    rows = editor.locator(".model-row")
    expect(rows).to_have_count(1)
    expect(rows.nth(0).locator('[data-field="model"]')).to_have_value("simulator/gpt-4o-mini")

    # A second model, parallel, with its own temperature.
    editor.locator('[data-action="add-model"]').click()
    expect(rows).to_have_count(2)
    rows.nth(1).locator('[data-field="model"]').fill("simulator/gpt-4o")
    rows.nth(1).locator('[data-param="temperature"]').fill("0.4")
    editor.get_by_label("Parallel (every model)").check()
    expect(page.locator("#validation-state")).to_contain_text("valid")

    # A duplicate is an error on its row, and blocks saving.
    editor.locator('[data-action="add-model"]').click()
    rows.nth(2).locator('[data-field="model"]').fill("simulator/gpt-4o")
    expect(rows.nth(2).locator(".problem.error")).to_contain_text("duplicate")
    expect(page.locator("#save-yaml")).to_be_disabled()
    # A model whose provider has no key is a warning naming the variable.
    rows.nth(2).locator('[data-field="model"]').fill("gpt-4.1")
    expect(rows.nth(2).locator(".problem.warning")).to_contain_text("OPENAI_API_KEY")
    expect(rows.nth(2).locator(".problem.warning a")).to_have_attribute(
        "href", re.compile(r"^https://")
    )
    rows.nth(2).get_by_label("Remove model").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#validation-state")).not_to_contain_text("error")
    expect(page.locator("#save-yaml")).to_be_enabled()

    # Preview the edited step: a card with the model and its cost.
    step.locator('[data-action="preview-step"]').click()
    result = step.locator('.step-result[data-step="outline"]')
    expect(result).to_have_attribute("data-status", "ok")
    expect(result.locator('[data-figure="model"] .value')).to_contain_text("simulator/")
    expect(result.locator('[data-figure="cost"] .value')).to_have_text(re.compile(r"^\$0\.\d+$"))
    expect(result.get_by_text("Every model's answer (2)")).to_be_visible()

    # Save as YAML: parses, and PipelineConfig.parse accepts it.
    page.locator("#save-yaml").click()
    text = page.locator("#pipeline-yaml").inner_text()
    data = yaml.safe_load(text)
    cfg = PipelineConfig.parse(data, gw.gateway.router)
    outline = cfg.step_configs["outline"]
    assert outline.routing == "parallel"
    assert [m.ref for m in outline.models or []] == ["simulator/gpt-4o-mini", "simulator/gpt-4o"]
    assert (outline.models or [])[1].parameters == {"temperature": 0.4}
    assert cfg.step_configs["draft"].models is not None  # the untouched step is kept

    # The polyroute.yaml form carries the prompts too.
    page.locator("#yaml-format").select_option("config")
    page.locator("#save-yaml").click()
    expect(page.locator("#pipeline-yaml")).to_have_attribute("data-format", "config")
    section = yaml.safe_load(page.locator("#pipeline-yaml").inner_text())
    article = FilePipelineConfig.model_validate(section["pipelines"]["article"])
    assert article.steps["outline"].models == ["simulator/gpt-4o-mini", "simulator/gpt-4o"]
    assert article.steps["draft"].prompt and "{outputs[outline]}" in article.steps["draft"].prompt
    assert tab.console.take() == []


def test_whole_pipeline_run_shows_in_runs(tab: Tab) -> None:
    page = tab.open("pipelines/article")
    page.locator("#pipeline-input").fill("hand drums")
    page.locator("#run-pipeline").click()
    run = page.locator("#pipeline-run-result")
    expect(run.locator('.step-result[data-status="ok"]')).to_have_count(2)
    run_id = run.get_attribute("data-run-id")
    assert run_id

    page = tab.open("runs")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_contain_text("article")
    expect(row).to_contain_text("ok")
    row.locator("a").click()
    expect(page.locator("h1")).to_contain_text(f"Run {run_id[:12]}")
    for name in ("outline", "draft"):
        step = page.locator(f'#run-steps tr[data-step="{name}"]')
        expect(step).to_contain_text("simulator/")
        expect(step).to_contain_text("$0.")
        expect(step).to_contain_text(re.compile(r"\d+ → \d+"))
    assert tab.console.take() == []


def test_usage_page_shows_charts_alerts_and_calls(tab: Tab) -> None:
    page = tab.open("usage")
    charts = page.locator("#usage-charts svg")
    expect(charts).to_have_count(4)
    expect(page.locator("#usage-stats .stat").first).to_contain_text(re.compile(r"Requests\d+"))
    assert page.locator("#usage-charts rect[fill]").count() > 0  # cost bars were drawn
    assert page.locator("#usage-charts circle").count() > 0  # latency points too
    expect(page.locator("#alerts, .banner.ok").first).to_be_visible()
    calls = page.locator("#usage-calls tr[data-call]")
    assert calls.count() > 0
    # The forced failure is among the calls, with its attempts one click away.
    failed = calls.filter(has_text="flaky/gpt-4o").first
    expect(failed).to_contain_text("server_error")
    failed.click()
    expect(page.locator("#usage-calls tr.detail-row:not([hidden]) table").first).to_contain_text(
        "simulated server error"
    )
    page.locator("#usage-by").select_option("step")
    expect(page.locator("#usage-groups th").first).to_have_text("step")
    expect(page.locator("#usage-groups")).to_contain_text("outline")
    assert tab.console.take() == []


def test_usage_page_without_a_store_says_so(browser: Any, tmp_path: Path) -> None:
    data = e2e_config(f"sqlite:///{tmp_path / 'usage.db'}", usage=False)
    with DashboardServer(data, {}) as server:
        t = Tab(browser, server.url, WIDE)
        try:
            page = t.open("usage")
            expect(page.locator("#usage-disabled")).to_contain_text("Usage store not enabled")
            assert t.console.take() == []
        finally:
            t.close()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
@pytest.mark.parametrize("name", PAGES)
def test_page_loads_without_console_errors(
    browser: Any, gw: DashboardServer, screenshots: Path, name: str, viewport: dict[str, int]
) -> None:
    t = Tab(browser, gw.url, viewport)
    try:
        page = t.open(name)
        if name == "compare":  # a page with answers is the one worth looking at
            page.locator("#compare-run").click()
            expect(page.locator('.result-card[data-status="pending"]')).to_have_count(0)
        ready = {
            "routes": "#route-cards .route-card",
            "pipelines": ".step-card",
            "usage": "#usage-charts, #usage-disabled",
            "runs": "#runs-table tr[data-run-id]",
            "compare": ".result-card",
        }[name]
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_load_state("networkidle")
        # Nothing wider than the screen: the page reflows instead of scrolling sideways.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {viewport['width']} px overflows by {overflow} px"
        nav_toggle = page.locator("#nav-toggle")
        if viewport is PHONE:
            expect(nav_toggle).to_be_visible()
            expect(page.locator("#nav")).to_be_hidden()
            nav_toggle.click()
            expect(page.locator("#nav")).to_be_visible()
            nav_toggle.click()
        else:
            expect(nav_toggle).to_be_hidden()
            expect(page.locator(f'#nav a[data-page="{name}"]')).to_have_class("active")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshots / f"{name}-{viewport['width']}.png"), full_page=True)
        assert t.console.take() == []
    finally:
        t.close()


def test_keys_are_asked_for_and_admin_actions_refused_clearly(
    browser: Any, tmp_path: Path, screenshots: Path
) -> None:
    environ = {"POLYROUTE_API_KEYS": "user-key", "POLYROUTE_ADMIN_KEYS": "admin-key"}
    data = e2e_config(f"sqlite:///{tmp_path / 'usage.db'}")
    with DashboardServer(data, environ) as server:
        t = Tab(browser, server.url, WIDE)
        try:
            page = t.page
            page.goto("/#/compare")
            dialog = page.locator("#key-dialog")
            expect(dialog).to_be_visible()
            page.screenshot(path=str(screenshots / "key-prompt-1280.png"))
            page.locator("#key-input").fill("wrong")
            page.locator("#key-submit").click()
            expect(page.locator("#key-error")).to_contain_text("did not accept")
            page.locator("#key-input").fill("user-key")
            page.locator("#key-submit").click()
            expect(dialog).to_be_hidden()
            expect(page.locator("#auth")).to_contain_text("API key")
            select_only(page, ["simulator/gpt-4o-mini"])
            page.locator("#compare-run").click()
            card = page.locator('.result-card[data-status="ok"]')
            expect(card).to_have_count(1)
            # Applying a model to a task changes the running config: admin only.
            card.get_by_role("button", name="Apply to").click()
            expect(card.locator(".banner.err")).to_contain_text("admin key")
            # The key lives in the tab's session: a reload does not ask again.
            page.reload()
            expect(page.locator(".page h1")).to_have_text("Compare")
            expect(dialog).to_be_hidden()
        finally:
            t.close()
