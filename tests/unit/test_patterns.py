"""Seed 003's workflow patterns on a real Router with no keys (every model simulated).

Models answer with simulated text, so where a test needs a particular answer
(a label, PASS/FAIL) it scripts the content of that stage's envelope through
``script``; the call itself, its cost and latency stay real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from polyroute import RouteExhaustedError, Router, UnknownRouteError, Validation, Verdict
from polyroute.patterns import (
    PatternError,
    classify_then_route,
    fan_out_then_combine,
    fill,
    judge,
    parse_label,
    parse_verdict,
    refine_until_valid,
    single_shot,
)
from polyroute.patterns.refine import CheckOutcome

SIM = {"type": "simulator"}
CONFIG: dict[str, Any] = {
    "providers": {
        "flaky": {**SIM, "simulator": {"failure_rate": 1.0, "error_kinds": ["server_error"]}},
        "slow": {**SIM, "simulator": {"latency": 0.2}},
    },
    "policies": {"retry": {"max_attempts": 1}},
    "tiers": {
        "fast": {"models": ["simulator/gpt-4o-mini"], "max_tokens": 256},
        "balanced": {"models": ["simulator/gpt-4o"]},
        "advanced": {"models": ["simulator/claude-sonnet-4-20250514"]},
    },
    "routes": {
        "slow-sections": {"models": ["slow/gpt-4o-mini"]},
        "broken": {"models": ["flaky/gpt-4o"]},
    },
}


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = Router.from_config(CONFIG, environ={})
    yield r
    await r.aclose()


Script = Callable[[str, Any], str | None]


def script(router: Router, monkeypatch: pytest.MonkeyPatch, answer: Script) -> list[dict[str, Any]]:
    """Replace the content of answers with ``answer(stage, messages)`` (None keeps
    the model's); returns every call made, with its stage and route."""
    calls: list[dict[str, Any]] = []
    real = router.complete

    async def complete(route: str, messages: Any, **kw: Any) -> Any:
        stage = (kw.get("labels") or {}).get("stage", "")
        calls.append({"stage": stage, "route": route, "messages": messages, **kw})
        env = await real(route, messages, **kw)
        content = answer(stage, messages)
        if content is not None:
            env.content = content
        return env

    monkeypatch.setattr(router, "complete", complete)
    return calls


# -- parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("song", "song"),
        ("Label: SONG.", "song"),
        ("I'd say **groove** rather than song", "groove"),
        ("song-fill", "song fill"),  # separators ignored; the longer label at one spot wins
        ("songs and grooves", None),  # a label glued to letters is not that label
        ("nothing relevant", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_label_takes_the_first_label_mentioned(
    answer: str | None, expected: str | None
) -> None:
    assert parse_label(answer, ["song", "groove", "song fill"]) == expected


def test_parse_label_refuses_an_empty_label() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_label("x", [" "])


@pytest.mark.parametrize(
    ("answer", "passed", "feedback"),
    [
        ("PASS", True, "PASS"),
        ("FAIL: the kick is missing", False, "the kick is missing"),
        ("**FAIL** - no snare", False, "no snare"),
        ("This would not pass review. FAIL: too short", False, "too short"),
        ("passed", True, "passed"),
        ("looks fine to me", None, "looks fine to me"),
    ],
)
def test_parse_verdict(answer: str, passed: bool | None, feedback: str) -> None:
    assert parse_verdict(answer) == (passed, feedback)


def test_judge_reads_every_validator_return_type() -> None:
    assert judge(True) == (True, "")
    assert judge(False)[0] is False
    assert judge(Verdict.PASS) == (True, "")
    assert judge(Verdict.SOFT_FAIL)[0] is True  # accepted with a note, as the router does
    assert judge(Verdict.HARD_FAIL)[0] is False
    assert judge(Validation(Verdict.HARD_FAIL, message="no kick")) == (False, "no kick")
    assert judge("") == (True, "")  # a list of problems, and it is empty
    assert judge("bar 2 has 15 steps") == (False, "bar 2 has 15 steps")
    assert judge("FAIL: off grid") == (False, "off grid")
    with pytest.raises(TypeError, match="must return"):
        judge(None)  # type: ignore[arg-type]


def test_fill_leaves_other_braces_and_does_not_expand_twice() -> None:
    out = fill('JSON like {"a": 1}; text: {text}', {"text": "{labels}", "labels": "x"})
    assert out == 'JSON like {"a": 1}; text: {labels}'


# -- classify_then_route --------------------------------------------------------------


async def test_classify_then_route_answers_on_the_labels_route(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = script(router, monkeypatch, lambda s, _: "Label: song." if s == "classify" else None)
    labels = {"groove": "tier:balanced", "song": "tier:advanced"}
    r = await classify_then_route(router, "Compose a funk song", labels, system="Be brief")

    assert (r.label, r.matched, r.route) == ("song", True, "tier:advanced")
    assert [(c["stage"], c["route"]) for c in calls] == [
        ("classify", "tier:fast"),
        ("answer", "tier:advanced"),
    ]
    assert "groove, song" in calls[0]["messages"][0]["content"]  # the labels were offered
    assert calls[1]["messages"][0] == {"role": "system", "content": "Be brief"}
    assert r.calls[0].envelope.model == "simulator/gpt-4o-mini"
    assert r.calls[1].envelope.model == "simulator/claude-sonnet-4-20250514"
    assert r.output == r.calls[1].content and r.classifier_answer == "Label: song."
    assert r.total_cost == pytest.approx(sum(c.envelope.cost for c in r.calls))
    assert r.total_cost > 0 and len(r.calls) == 2 and r.total_latency > 0


async def test_classify_then_route_falls_to_the_default_or_fails_without_one(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    script(router, monkeypatch, lambda s, _: "no idea" if s == "classify" else None)
    labels = {"groove": "tier:balanced", "song": "tier:advanced"}
    r = await classify_then_route(router, "hmm", labels, default="groove")
    assert (r.label, r.matched, r.route) == ("groove", False, "tier:balanced")

    with pytest.raises(PatternError, match="names none of the labels") as info:
        await classify_then_route(router, "hmm", labels)
    assert info.value.stage == "classify" and len(info.value.result.calls) == 1
    assert info.value.result.total_cost > 0  # the classification was paid for


async def test_classify_then_route_checks_arguments_before_calling(router: Router) -> None:
    with pytest.raises(ValueError, match="default 'x' is not one of the labels"):
        await classify_then_route(router, "t", {"a": "tier:fast"}, default="x")
    with pytest.raises(ValueError, match="at least one label"):
        await classify_then_route(router, "t", {})
    with pytest.raises(UnknownRouteError):
        await classify_then_route(router, "t", {"a": "tier:nope"})


async def test_custom_prompt_template(router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = script(router, monkeypatch, lambda s, _: "b" if s == "classify" else None)
    tpl = 'Pick {labels} for {text}; JSON {"label": ...}'
    await classify_then_route(router, "req", {"a": "tier:fast", "b": "tier:fast"}, prompt=tpl)
    assert calls[0]["messages"][0]["content"] == 'Pick a, b for req; JSON {"label": ...}'


async def test_single_shot_classifies_fast_then_generates_balanced(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = script(router, monkeypatch, lambda s, _: "funk groove" if s == "classify" else None)
    r = await single_shot(router, "a syncopated 16th-note groove", temperature=0.5)
    assert r.category == "funk groove"
    assert [c.envelope.model for c in r.calls] == ["simulator/gpt-4o-mini", "simulator/gpt-4o"]
    assert "Request type: funk groove" in calls[1]["messages"][0]["content"]
    assert calls[1]["temperature"] == 0.5 and "temperature" not in calls[0]
    assert r.output == r.outputs["generate"]


# -- fan_out_then_combine -------------------------------------------------------------


async def test_sections_run_concurrently_then_combine(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight = peak = 0
    real = router.complete

    async def complete(route: str, messages: Any, **kw: Any) -> Any:
        nonlocal in_flight, peak
        if route != "slow-sections":
            return await real(route, messages, **kw)
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await real(route, messages, **kw)
        finally:
            in_flight -= 1

    monkeypatch.setattr(router, "complete", complete)
    n = 4
    t0 = time.perf_counter()
    r = await fan_out_then_combine(
        router,
        [f"Section {i}: four bars" for i in range(n)],
        section_route="slow-sections",
        combine_route="tier:advanced",
    )
    wall = time.perf_counter() - t0

    assert peak == n  # every section was in flight at once: the structural check
    assert wall < 0.2 * n * 0.6  # and the wall time shows it (sequential would be 0.8 s)
    assert [c.stage for c in r.calls] == [*(f"section[{i}]" for i in range(n)), "combine"]
    assert len(r.sections) == n and all(r.sections)
    assert r.model_time > r.total_latency  # overlapping calls
    assert r.calls[-1].envelope.model == "simulator/claude-sonnet-4-20250514"
    assert r.output == r.outputs["combine"]
    assert r.total_cost == pytest.approx(sum(c.envelope.cost for c in r.calls))


async def test_concurrency_cap_and_combine_prompt(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = script(router, monkeypatch, lambda s, _: f"<{s}>" if s.startswith("section") else None)
    r = await fan_out_then_combine(
        router,
        ["a", "b", "c"],
        section_route="tier:fast",
        combine_prompt="Join {count}:\n{sections}",
        concurrency=1,
    )
    combine = calls[-1]["messages"][0]["content"]
    assert combine.startswith("Join 3:\n## Section 1\n<section[0]>")
    assert combine.index("<section[1]>") < combine.index("<section[2]>")
    assert r.sections == ["<section[0]>", "<section[1]>", "<section[2]>"]


async def test_a_failed_section_raises_with_the_others_accounted(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = router.complete

    async def complete(route: str, messages: Any, **kw: Any) -> Any:
        # the second section goes to the always-failing provider
        failing = kw["labels"]["stage"] == "section[1]"
        return await real("broken" if failing else route, messages, **kw)

    monkeypatch.setattr(router, "complete", complete)
    with pytest.raises(PatternError, match=r"stage 'section\[1\]' failed") as info:
        await fan_out_then_combine(router, ["a", "b", "c"], section_route="tier:fast")
    err = info.value
    assert isinstance(err.__cause__, RouteExhaustedError)
    assert [c.stage for c in err.result.calls] == ["section[0]", "section[2]"]
    assert err.result.total_cost > 0


async def test_fan_out_argument_checks(router: Router) -> None:
    with pytest.raises(TypeError, match="not one string"):
        await fan_out_then_combine(router, "abc")
    with pytest.raises(ValueError, match="at least one section"):
        await fan_out_then_combine(router, [])
    with pytest.raises(ValueError, match="concurrency"):
        await fan_out_then_combine(router, ["a"], concurrency=0)


# -- refine_until_valid ---------------------------------------------------------------


def passes_on(n: int) -> tuple[Callable[[str], bool], list[str]]:
    seen: list[str] = []

    def validate(draft: str) -> bool:
        seen.append(draft)
        return len(seen) >= n

    return validate, seen


async def test_refine_stops_early_on_success(router: Router) -> None:
    validate, seen = passes_on(2)
    r = await refine_until_valid(router, "a 16-step pattern", validate)
    assert (r.rounds, r.converged) == (2, True)
    assert [c.stage for c in r.calls] == ["generate", "fix[1]"]
    assert [h.passed for h in r.history] == [False, True]
    assert r.output == seen[-1] == r.outputs["fix[1]"]
    assert all(c.envelope.model == "simulator/gpt-4o" for c in r.calls)


async def test_refine_stops_at_its_limit(router: Router) -> None:
    validate, seen = passes_on(99)
    r = await refine_until_valid(router, "a 16-step pattern", validate)
    assert (r.rounds, r.converged) == (3, False)  # three drafts by default
    assert [c.stage for c in r.calls] == ["generate", "fix[1]", "fix[2]"]
    assert len(seen) == 3 and r.output == seen[-1]

    validate, seen = passes_on(99)
    r = await refine_until_valid(router, "p", validate, max_rounds=1)
    assert (r.rounds, r.converged, len(r.calls)) == (1, False, 1)


async def test_refine_feeds_the_problems_to_the_fix(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = script(router, monkeypatch, lambda s, _: None)
    answers: Iterator[CheckOutcome] = iter(["bar 2 has 15 steps", Validation(Verdict.PASS)])
    r = await refine_until_valid(router, "Write it", lambda _: next(answers), fix_route="tier:fast")
    assert r.converged and r.history[0].feedback == "bar 2 has 15 steps"
    fix = calls[1]
    assert fix["route"] == "tier:fast" and "bar 2 has 15 steps" in fix["messages"][0]["content"]


async def test_refine_with_a_fast_tier_checker(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts = iter(["FAIL: the hi-hat is missing", "meh", "PASS"])
    calls = script(
        router, monkeypatch, lambda s, _: next(verdicts) if s.startswith("check") else None
    )
    r = await refine_until_valid(router, "Write it", check_route="tier:fast", max_rounds=3)
    assert (r.rounds, r.converged) == (3, True)
    assert [c.stage for c in r.calls] == [
        "generate",
        "check[1]",
        "fix[1]",
        "check[2]",
        "fix[2]",
        "check[3]",
    ]
    assert r.history[0].feedback == "the hi-hat is missing"
    assert "no PASS/FAIL verdict" in r.history[1].feedback  # an unreadable verdict fails
    assert calls[1]["route"] == "tier:fast"
    assert r.calls[1].envelope.model == "simulator/gpt-4o-mini"


async def test_refine_runs_the_free_check_first(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = script(router, monkeypatch, lambda s, _: "PASS" if s.startswith("check") else None)
    validate, _ = passes_on(2)

    async def async_validate(draft: str) -> bool:
        await asyncio.sleep(0)
        return validate(draft)

    r = await refine_until_valid(router, "p", async_validate, check_route="tier:fast")
    # round 1: the callable fails, so the model is not asked; round 2: both pass
    assert [c["stage"] for c in calls] == ["generate", "fix[1]", "check[2]"]
    assert r.converged and r.history[1].checked_by == "validate+tier:fast"


async def test_refine_argument_checks_and_failures(router: Router) -> None:
    with pytest.raises(ValueError, match="validate"):
        await refine_until_valid(router, "p")
    with pytest.raises(ValueError, match="max_rounds"):
        await refine_until_valid(router, "p", bool, max_rounds=0)

    def broken(_: str) -> bool:
        raise RuntimeError("validator bug")

    with pytest.raises(PatternError, match=r"validate\[1\]") as info:
        await refine_until_valid(router, "p", broken)
    assert len(info.value.result.calls) == 1  # the draft it was checking

    with pytest.raises(PatternError, match="'generate' failed") as info:
        await refine_until_valid(router, "p", bool, generate_route="broken")
    assert isinstance(info.value.__cause__, RouteExhaustedError)


async def test_result_to_dict(router: Router) -> None:
    r = await refine_until_valid(router, "p", lambda _: True)
    d = r.to_dict()
    assert d["pattern"] == "refine_until_valid" and d["calls"][0]["stage"] == "generate"
    assert d["total_cost"] == r.total_cost and d["calls"][0]["model"] == "simulator/gpt-4o"
