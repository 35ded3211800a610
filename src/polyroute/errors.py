"""The errors polyroute raises, as one tree.

::

    PolyrouteError
    ├── ConfigError                      bad configuration; names the dotted path
    ├── UnknownRouteError                a route / model name nothing resolves
    ├── ProviderNotAllowedError          the route needs a provider not allowed here
    ├── BudgetExceededError              refused before the call (estimate > limit)
    ├── MissingCredentialsError          names the variable to set and the key page
    ├── ResponseRejectedError            a validator refused a candidate's output
    ├── RouteExhaustedError              every candidate failed (alias ModelExhaustedError)
    │   └── AllCoolingDownError          every candidate is cooling down past the timeout
    └── ProviderError                    an upstream call failed
        ├── RateLimitError               429 (retry_after set when the provider said)
        ├── OverloadedError              Anthropic 529
        ├── ServerError                  other 5xx
        ├── ProviderTimeoutError         no answer within the timeout
        ├── ProviderConnectionError      refused, reset, DNS
        ├── ProviderClientError          the HTTP client failed otherwise (bad URL, protocol)
        ├── ContextWindowExceededError   the prompt does not fit
        ├── ContentFilterError           refused by the provider's safety filter
        ├── AuthError                    401 / 403
        ├── ModelNotFoundError           404 for the model
        ├── BadRequestError              other 4xx
        └── InvalidResponseError         a body or stream that breaks the wire format

Every ``ProviderError`` keeps ``provider``, ``model``, ``status``, ``retryable``,
``retry_after`` (seconds) and the provider's ``request_id``.  Messages never
contain an API key: adapters build them from status, code and provider text only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from polyroute.types import Attempt


class PolyrouteError(Exception):
    """Base of every error polyroute raises.  ``status_code`` is the HTTP status
    the gateway answers with when this error reaches a client."""

    status_code: ClassVar[int] = 500


class ConfigError(PolyrouteError, ValueError):
    """Invalid configuration.  ``problems`` holds ``(dotted_path, message)`` pairs."""

    status_code = 400

    def __init__(self, problems: Sequence[tuple[str, str]] | str, path: str = "") -> None:
        if isinstance(problems, str):
            problems = [(path, problems)]
        self.problems: list[tuple[str, str]] = list(problems)
        lines = [f"{p}: {m}" if p else m for p, m in self.problems]
        head = "invalid configuration" if len(lines) > 1 else ""
        super().__init__((head + ":\n  " + "\n  ".join(lines)) if head else lines[0])

    @property
    def path(self) -> str:
        return self.problems[0][0] if self.problems else ""


class UnknownRouteError(PolyrouteError, LookupError):
    status_code = 404

    def __init__(self, name: str, hint: str = "") -> None:
        self.name = name
        msg = f"unknown route or model {name!r}"
        super().__init__(f"{msg}; {hint}" if hint else msg)


class ProviderNotAllowedError(PolyrouteError):
    """The route needs a provider outside ``server.allowed_providers``."""

    status_code = 403


class BudgetExceededError(PolyrouteError):
    status_code = 402


class MissingCredentialsError(PolyrouteError):
    status_code = 401

    def __init__(self, provider: str, env_var: str, key_page: str | None = None) -> None:
        self.provider = provider
        self.env_var = env_var
        self.key_page = key_page
        msg = f"no API key for provider {provider!r}: set the environment variable {env_var}"
        if key_page:
            msg += f" (create a key at {key_page})"
        super().__init__(msg)


class ResponseRejectedError(PolyrouteError):
    """A response validator refused the output.  ``trigger`` is one of the
    FallbackTrigger values validator_hard_fail, missing_field, invalid_structure."""

    status_code = 502

    def __init__(self, message: str, trigger: str, model: str = "") -> None:
        self.trigger = trigger
        self.model = model
        super().__init__(message)


class RouteExhaustedError(PolyrouteError):
    """Every candidate of a route failed.  ``attempts`` lists each one; the last
    provider exception is chained as ``__cause__``; ``errors`` holds them all."""

    status_code = 502

    def __init__(
        self,
        route: str,
        attempts: Sequence[Attempt],
        errors: Sequence[BaseException] = (),
        reason: str = "every candidate failed",
        retry_after: float | None = None,
    ) -> None:
        self.route = route
        self.attempts = list(attempts)
        self.errors = list(errors)
        # Seconds after which trying again may work (cooldowns, the providers' own hints).
        self.retry_after = retry_after
        if retry_after is None:
            hints = [e.retry_after for e in self.errors if isinstance(e, ProviderError)]
            known = [h for h in hints if h is not None]
            self.retry_after = min(known) if known else None
        parts = [a.describe() for a in self.attempts]
        detail = "; ".join(parts) if parts else "no candidate could be tried"
        super().__init__(f"route {route!r}: {reason}: {detail}")

    @property
    def all_rate_limited(self) -> bool:
        return self._all_tried("rate_limit")

    @property
    def all_overloaded(self) -> bool:
        """Every candidate tried was overloaded (or also rate limited): capacity, not a
        fault; clients should back off and retry."""
        tried = [a for a in self.attempts if a.outcome == "error"]
        return (
            bool(tried)
            and all(a.trigger in ("overloaded", "rate_limit") for a in tried)
            and any(a.trigger == "overloaded" for a in tried)
        )

    def _all_tried(self, trigger: str) -> bool:
        tried = [a for a in self.attempts if a.outcome == "error"]
        return bool(tried) and all(a.trigger == trigger for a in tried)


ModelExhaustedError = RouteExhaustedError


class AllCoolingDownError(RouteExhaustedError):
    status_code = 503


class ProviderError(PolyrouteError):
    """An upstream call failed.  Subclasses pin the kind; ``retryable`` says
    whether the same candidate may be tried again."""

    status_code = 502
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.request_id = request_id
        self.code = code
        where = "/".join(x for x in (provider, model) if x)
        prefix = f"{where}: " if where else ""
        st = f"HTTP {status}: " if status else ""
        super().__init__(f"{prefix}{st}{message}")
        self.message = message


class RateLimitError(ProviderError):
    status_code = 429
    default_retryable = True


class OverloadedError(ProviderError):
    status_code = 503
    default_retryable = True


class ServerError(ProviderError):
    status_code = 502
    default_retryable = True


class ProviderTimeoutError(ProviderError, TimeoutError):
    status_code = 504
    default_retryable = True


class ProviderConnectionError(ProviderError, ConnectionError):
    status_code = 502
    default_retryable = True


class ProviderClientError(ProviderError):
    """The HTTP client failed before or without a provider answer (an invalid URL, a
    protocol error): the candidate's problem, so the route falls back."""

    status_code = 502


class ContextWindowExceededError(ProviderError):
    status_code = 400


class ContentFilterError(ProviderError):
    status_code = 400


class AuthError(ProviderError):
    status_code = 401


class ModelNotFoundError(ProviderError):
    status_code = 404


class BadRequestError(ProviderError):
    status_code = 400


class InvalidResponseError(ProviderError):
    """A malformed body, or a stream that ended without its terminal event."""

    status_code = 502
    default_retryable = True


__all__ = [
    "AllCoolingDownError",
    "AuthError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "InvalidResponseError",
    "MissingCredentialsError",
    "ModelExhaustedError",
    "ModelNotFoundError",
    "OverloadedError",
    "PolyrouteError",
    "ProviderClientError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotAllowedError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseRejectedError",
    "RouteExhaustedError",
    "ServerError",
    "UnknownRouteError",
]
