"""Seed 003's workflow patterns as composable functions over a Router.

Each takes the router and route names (tiers by default) and returns a result
with the final ``output``, every call's envelope under a stage name
(``calls``), ``total_cost``, ``total_tokens`` and ``total_latency`` (wall
clock)::

    r = await classify_then_route(router, "play a funk groove",
                                  {"groove": "tier:balanced", "song": "tier:advanced"})
    song = await fan_out_then_combine(router, ["intro", "verse", "chorus"])
    fixed = await refine_until_valid(router, "16-step pattern", check_route="tier:fast")
    one = await single_shot(router, "a half-time shuffle")
    heard = await analyse_then_generate(router, "a pattern like this", [audio_part])

A stage that fails after others ran raises ``PatternError`` with the partial
result (its cost included) and the router's error as ``__cause__``; a route
name nothing resolves fails before any call, as the router's own error.
"""

from polyroute.patterns.analyse import AnalyseResult, analyse_then_generate
from polyroute.patterns.classify import (
    ClassifyResult,
    SingleShotResult,
    classify_then_route,
    single_shot,
)
from polyroute.patterns.combine import CombineResult, fan_out_then_combine
from polyroute.patterns.refine import RefineResult, RefineRound, judge, refine_until_valid
from polyroute.patterns.result import PatternCall, PatternError, PatternResult
from polyroute.patterns.text import fill, parse_label, parse_verdict

__all__ = [
    "AnalyseResult",
    "ClassifyResult",
    "CombineResult",
    "PatternCall",
    "PatternError",
    "PatternResult",
    "RefineResult",
    "RefineRound",
    "SingleShotResult",
    "analyse_then_generate",
    "classify_then_route",
    "fan_out_then_combine",
    "fill",
    "judge",
    "parse_label",
    "parse_verdict",
    "refine_until_valid",
    "single_shot",
]
