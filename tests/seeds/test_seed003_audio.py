"""Seed 003 pattern 3: "expert analyses audio → balanced generates".

Audio input parts go only to models with the ``audio`` capability; the
analysis then drives a cheaper generating model.
"""

from __future__ import annotations

import base64

from polyroute import Router
from polyroute.patterns import analyse_then_generate

AUDIO = {
    "type": "input_audio",
    "input_audio": {"data": base64.b64encode(b"RIFF....WAVEfmt ").decode(), "format": "wav"},
}


async def test_audio_goes_only_to_audio_models_then_generation() -> None:
    router = Router.from_config(
        {"routes": {"listen": {"models": ["simulator/gpt-4o", "simulator/gpt-4o-audio-preview"]}}},
        environ={},
    )
    result = await analyse_then_generate(
        router, "a drum pattern like this recording", [AUDIO], analyse_route="listen"
    )
    analyse = result.calls[0].envelope
    assert [(a.model, a.outcome, a.trigger) for a in analyse.attempts] == [
        ("simulator/gpt-4o", "skipped", "capability:audio"),
        ("simulator/gpt-4o-audio-preview", "success", None),
    ]
    assert result.analysis and result.output
    assert result.calls[1].route == "tier:balanced"
    await router.aclose()
