"""Errors only pipelines raise; they join polyroute's one error tree.

A step's own failure is not raised from ``FunctionPipeline.run``: it is recorded
on the step's result and ends the run with status "error".  These errors are for
mistakes the caller must fix before anything runs (or, for templates, that make
a step fail with a message saying which name was missing).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from polyroute.errors import PolyrouteError


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


class PipelineError(PolyrouteError):
    """A pipeline was built or called in a way that cannot work."""

    status_code = 400


class UnknownStepError(PipelineError, LookupError):
    """``run_step`` named a step the pipeline does not have."""

    status_code = 404

    def __init__(self, step_name: str, known: list[str]) -> None:
        self.step_name = step_name
        hint = did_you_mean(step_name, known)
        super().__init__(f"no step named {step_name!r}{hint} (steps: {', '.join(known) or 'none'})")


class UnknownPipelineError(PipelineError, LookupError):
    """A pipeline name the router's config does not define."""

    status_code = 404

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        hint = did_you_mean(name, known)
        super().__init__(
            f"no pipeline {name!r} under pipelines in the config{hint} "
            f"(known: {', '.join(known) or 'none'})"
        )


class PromptTemplateError(PipelineError):
    """A prompt template names something the step cannot see."""
