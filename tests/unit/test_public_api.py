"""The public surface: ``polyroute.__all__`` is pinned, and importing the package
stays light (no web framework, database, CLI rendering or vendor SDK)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import polyroute

PUBLIC_NAMES = [
    "AllCoolingDownError",
    "Attempt",
    "AuthError",
    "BadRequestError",
    "BaseAgent",
    "BudgetExceededError",
    "CallRecord",
    "Candidate",
    "ClassifierAgent",
    "Clock",
    "Config",
    "ConfigError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "Envelope",
    "ExpanderAgent",
    "FallbackTrigger",
    "FanOutResult",
    "InvalidResponseError",
    "ManualClock",
    "MissingCredentialsError",
    "ModelClientFactory",
    "ModelExhaustedError",
    "ModelNotFoundError",
    "ModelPoolManager",
    "ModelRole",
    "OverloadedError",
    "PolyrouteError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotAllowedError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseRejectedError",
    "Route",
    "RouteExhaustedError",
    "Router",
    "RouterStream",
    "ServerError",
    "Settings",
    "StreamChunk",
    "StyleRefinerAgent",
    "SystemClock",
    "UnknownRouteError",
    "Usage",
    "Validation",
    "ValidatorAgent",
    "Verdict",
    "WriterAgent",
    "__version__",
    "load_settings",
    "should_fallback",
]

HEAVY_MODULES = [
    "fastapi",
    "sqlalchemy",
    "redis",
    "rich",
    "openai",
    "anthropic",
    "jsonschema",
    "tiktoken",
]


def test_all_is_pinned_and_sorted() -> None:
    assert sorted(PUBLIC_NAMES) == PUBLIC_NAMES
    assert list(polyroute.__all__) == PUBLIC_NAMES


def test_all_has_no_duplicates() -> None:
    assert len(set(polyroute.__all__)) == len(polyroute.__all__)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_each_name_is_importable(name: str) -> None:
    module = importlib.import_module("polyroute")
    assert getattr(module, name) is not None


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from polyroute import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == PUBLIC_NAMES


def test_error_tree() -> None:
    p = polyroute
    for name in PUBLIC_NAMES:
        obj = getattr(p, name)
        if name.endswith("Error"):
            assert issubclass(obj, p.PolyrouteError), name
    assert p.ModelExhaustedError is p.RouteExhaustedError
    assert issubclass(p.AllCoolingDownError, p.RouteExhaustedError)
    for name in (
        "RateLimitError",
        "OverloadedError",
        "ServerError",
        "ProviderTimeoutError",
        "ProviderConnectionError",
        "ContextWindowExceededError",
        "ContentFilterError",
        "AuthError",
        "ModelNotFoundError",
        "BadRequestError",
        "InvalidResponseError",
    ):
        assert issubclass(getattr(p, name), p.ProviderError), name


def test_version_is_a_string() -> None:
    assert isinstance(polyroute.__version__, str)
    assert polyroute.__version__.count(".") >= 1


def _modules_loaded_by(code: str) -> dict[str, bool]:
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY_MODULES!r}}}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, bool] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_import_polyroute_stays_light() -> None:
    loaded = _modules_loaded_by("import polyroute")
    assert [m for m, yes in loaded.items() if yes] == []


def test_probe_detects_a_heavy_import() -> None:
    # The check above can fail: importing the CLI's table renderer shows up.
    loaded = _modules_loaded_by("import polyroute, rich.table")
    assert loaded["rich"] is True


def test_importing_the_cli_module_stays_light() -> None:
    # Rich and the router load only when a command runs.
    loaded = _modules_loaded_by("import polyroute.cli")
    assert [m for m, yes in loaded.items() if yes] == []
