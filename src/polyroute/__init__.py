"""polyroute: send every piece of LLM work to the right model, and keep it running.

The public API is what ``__all__`` lists; everything else is internal.
"""

from polyroute._version import __version__
from polyroute.agents import (
    BaseAgent,
    ClassifierAgent,
    ExpanderAgent,
    StyleRefinerAgent,
    ValidatorAgent,
    WriterAgent,
)
from polyroute.clock import Clock, ManualClock, SystemClock
from polyroute.config.load import Settings, load_settings
from polyroute.config.schema import Config
from polyroute.errors import (
    AllCoolingDownError,
    AuthError,
    BadRequestError,
    BudgetExceededError,
    ConfigError,
    ContentFilterError,
    ContextWindowExceededError,
    InvalidResponseError,
    MissingCredentialsError,
    ModelExhaustedError,
    ModelNotFoundError,
    OverloadedError,
    PolyrouteError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotAllowedError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseRejectedError,
    RouteExhaustedError,
    ServerError,
    UnknownRouteError,
)
from polyroute.facades import (
    ModelClientFactory,
    ModelPoolManager,
    ModelRole,
    should_fallback,
)
from polyroute.providers.base import StreamChunk
from polyroute.router import Router
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.streaming import RouterStream
from polyroute.routing.triggers import FallbackTrigger
from polyroute.routing.validators import Validation, Verdict
from polyroute.types import Attempt, CallRecord, Envelope, FanOutResult, Usage

__all__ = [
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
