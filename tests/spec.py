"""Validate JSON instances against components of the published OpenAI OpenAPI spec.

    from tests.spec import validate_against_spec
    validate_against_spec(response_json, "CreateChatCompletionResponse")
    validate_against_spec(request_body, "CreateChatCompletionRequest")

The YAML (about 3 MB) is parsed once per process and validators are cached per component.
``#/components/schemas/...`` references are resolved inside the spec document through a
``referencing.Registry``; nothing is fetched over the network.

The spec declares ``openapi: 3.1.x`` but still carries some OAS 3.0 keywords that a 3.1
(JSON Schema 2020-12) validator would silently ignore or misread; they are rewritten into
their 3.1 equivalents before validation (see :func:`_upgrade_oas30_keywords`):

* ``nullable: true``  ->  ``anyOf: [<schema>, {type: "null"}]`` (e.g. ``finish_reason`` and
  ``usage`` of ``CreateChatCompletionStreamResponse``, which are ``null`` in most chunks);
* boolean ``exclusiveMinimum`` / ``exclusiveMaximum``  ->  the numeric 2020-12 form.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, cast

import yaml
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30Validator, OAS31Validator, OAS32Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

#: Override with the ``OPENAI_OPENAPI_SPEC`` environment variable.
DEFAULT_SPEC_PATH = Path(
    os.environ.get("OPENAI_OPENAPI_SPEC", "/work/shared/specs/openai-openapi.yaml")
)
_SPEC_URI = "urn:polyroute-tests:openapi-spec"

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecValidationError(AssertionError):
    """An instance does not match a spec component; ``errors`` has every violation."""

    def __init__(self, component: str, errors: list[ValidationError]) -> None:
        self.component = component
        self.errors = errors
        lines = [f"{len(errors)} violation(s) of {component}:"]
        lines += [f"  at {e.json_path}: {e.message}" for e in errors[:20]]
        if len(errors) > 20:
            lines.append(f"  ... and {len(errors) - 20} more")
        super().__init__("\n".join(lines))


@functools.cache
def load_spec(path: Path = DEFAULT_SPEC_PATH) -> dict[str, Any]:
    """The parsed spec document, as published (cached)."""
    with open(path, "rb") as fh:
        document = yaml.load(fh, Loader=_Loader)
    if not isinstance(document, dict) or "openapi" not in document:
        raise ValueError(f"{path} is not an OpenAPI document")
    return document


def openapi_version(path: Path = DEFAULT_SPEC_PATH) -> tuple[int, int]:
    major, minor, *_ = str(load_spec(path)["openapi"]).split(".")
    return int(major), int(minor)


def component_names(path: Path = DEFAULT_SPEC_PATH) -> list[str]:
    return sorted(load_spec(path).get("components", {}).get("schemas", {}))


@functools.cache
def _prepared(path: Path) -> tuple[type[Validator], Registry[Any]]:
    document = load_spec(path)
    version = openapi_version(path)
    if version >= (3, 1):
        validator_cls: type[Validator] = OAS32Validator if version >= (3, 2) else OAS31Validator
        document = _upgrade_oas30_keywords(document)
        specification = DRAFT202012
    else:
        validator_cls = OAS30Validator
        specification = DRAFT4
    resource: Resource[Any] = specification.create_resource(document)
    return validator_cls, Registry().with_resource(_SPEC_URI, resource)


@functools.cache
def _validator(component: str, path: Path) -> Validator:
    if component not in load_spec(path).get("components", {}).get("schemas", {}):
        raise KeyError(f"no component schema {component!r} in {path}")
    validator_cls, registry = _prepared(path)
    schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{component}"}
    return validator_cls(schema, registry=registry, format_checker=validator_cls.FORMAT_CHECKER)


def spec_errors(
    instance: object, component: str, *, path: Path = DEFAULT_SPEC_PATH
) -> list[ValidationError]:
    """Every violation of ``#/components/schemas/<component>`` by ``instance``."""
    errors = _validator(component, path).iter_errors(cast(Any, instance))
    return sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message))


def validate_against_spec(
    instance: object, component: str, *, path: Path = DEFAULT_SPEC_PATH
) -> None:
    """Raise :class:`SpecValidationError` unless ``instance`` matches the component."""
    errors = spec_errors(instance, component, path=path)
    if errors:
        raise SpecValidationError(component, errors)


def _upgrade_oas30_keywords(node: Any) -> Any:
    """A copy of ``node`` with OAS 3.0-only keywords rewritten for a 3.1 validator."""
    if isinstance(node, list):
        return [_upgrade_oas30_keywords(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _upgrade_oas30_keywords(value) for key, value in node.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):
            del out[bound]
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if out.get("nullable") is True:
        del out["nullable"]
        return {"anyOf": [out, {"type": "null"}]}
    if isinstance(out.get("nullable"), bool):  # nullable: false is a no-op
        del out["nullable"]
    return out
