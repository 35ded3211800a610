"""Response validators: decide whether a candidate's answer is acceptable.

A validator returns PASS, SOFT_FAIL (accepted, with a warning) or HARD_FAIL
(the route falls back).  Built from a route's ``accept`` block (JSON schema,
required fields, minimum length) or given by the caller as a callable that
returns a bool, a ``Verdict`` or a ``Validation``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from polyroute.config.schema import Acceptance
from polyroute.routing.triggers import FallbackTrigger


class Verdict(StrEnum):
    PASS = "pass"
    SOFT_FAIL = "soft_fail"
    HARD_FAIL = "hard_fail"


@dataclass(frozen=True, slots=True)
class Validation:
    verdict: Verdict
    trigger: FallbackTrigger = FallbackTrigger.VALIDATOR_HARD_FAIL
    message: str = ""

    @property
    def hard_fail(self) -> bool:  # seed 001's validator_result.hard_fail
        return self.verdict is Verdict.HARD_FAIL


PASS = Validation(Verdict.PASS)
ValidatorFn = Callable[[str | None], "Validation | Verdict | bool"]
# What a caller may pass as ``validate=``: a function, an acceptance block, or its dict.
Validate = ValidatorFn | Acceptance | Mapping[str, Any] | None
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def normalize(result: Validation | Verdict | bool) -> Validation:
    if isinstance(result, Validation):
        return result
    if isinstance(result, Verdict):
        return Validation(result)
    return PASS if result else Validation(Verdict.HARD_FAIL, message="validator returned False")


def parse_json_content(content: str | None) -> Any:
    """JSON from an answer, tolerating a ```json fence around it."""
    if content is None:
        raise ValueError("no content")
    m = _FENCE.match(content)
    return orjson.loads(m.group(1) if m else content)


def acceptance_validator(accept: Acceptance) -> Callable[[str | None], Validation]:
    schema_validator: Any = None
    if accept.json_schema is not None:
        import jsonschema  # loaded only when a route asks for schema checks

        cls = jsonschema.validators.validator_for(accept.json_schema)
        schema_validator = cls(accept.json_schema)
    needs_json = schema_validator is not None or bool(accept.required_fields)

    def check(content: str | None) -> Validation:
        if accept.min_length is not None and len(content or "") < accept.min_length:
            return Validation(
                Verdict.HARD_FAIL,
                FallbackTrigger.VALIDATOR_HARD_FAIL,
                f"answer shorter than {accept.min_length} characters",
            )
        if not needs_json:
            return PASS
        try:
            data = parse_json_content(content)
        except (ValueError, orjson.JSONDecodeError):
            return Validation(
                Verdict.HARD_FAIL, FallbackTrigger.INVALID_STRUCTURE, "answer is not valid JSON"
            )
        missing = [
            f
            for f in accept.required_fields
            if not isinstance(data, dict) or data.get(f) in (None, "", [], {})
        ]
        if missing:
            return Validation(
                Verdict.HARD_FAIL,
                FallbackTrigger.MISSING_FIELD,
                f"answer lacks required fields: {', '.join(missing)}",
            )
        if schema_validator is not None:
            errs = sorted(schema_validator.iter_errors(data), key=lambda e: list(e.path))
            if errs:
                where = "/".join(str(p) for p in errs[0].path) or "(root)"
                return Validation(
                    Verdict.HARD_FAIL,
                    FallbackTrigger.INVALID_STRUCTURE,
                    f"answer does not match the schema at {where}: {errs[0].message}",
                )
        return PASS

    return check
