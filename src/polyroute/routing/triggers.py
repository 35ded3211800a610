"""Why a candidate was given up: the fallback triggers, and which errors are not.

A bad request (the caller's fault) does not fall back: the next model would
refuse it too.  Everything that is the candidate's fault does.
"""

from __future__ import annotations

from enum import StrEnum

from polyroute import errors as E


class FallbackTrigger(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    CLIENT_ERROR = "client_error"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    CONTEXT_WINDOW_EXCEEDED = "context_window_exceeded"
    CONTENT_FILTERED = "content_filtered"
    VALIDATOR_HARD_FAIL = "validator_hard_fail"
    MISSING_FIELD = "missing_field"
    INVALID_STRUCTURE = "invalid_structure"
    INVALID_RESPONSE = "invalid_response"
    AUTH_ERROR = "auth_error"
    MODEL_NOT_FOUND = "model_not_found"
    MISSING_CREDENTIALS = "missing_credentials"


_BY_TYPE: tuple[tuple[type[BaseException], FallbackTrigger], ...] = (
    (E.RateLimitError, FallbackTrigger.RATE_LIMIT),
    (E.OverloadedError, FallbackTrigger.OVERLOADED),
    (E.ProviderTimeoutError, FallbackTrigger.TIMEOUT),
    (E.ProviderConnectionError, FallbackTrigger.CONNECTION_ERROR),
    (E.ProviderClientError, FallbackTrigger.CLIENT_ERROR),
    (E.ContextWindowExceededError, FallbackTrigger.CONTEXT_WINDOW_EXCEEDED),
    (E.ContentFilterError, FallbackTrigger.CONTENT_FILTERED),
    (E.InvalidResponseError, FallbackTrigger.INVALID_RESPONSE),
    (E.ServerError, FallbackTrigger.SERVER_ERROR),
    (E.AuthError, FallbackTrigger.AUTH_ERROR),
    (E.ModelNotFoundError, FallbackTrigger.MODEL_NOT_FOUND),
    (E.MissingCredentialsError, FallbackTrigger.MISSING_CREDENTIALS),
    # Plain Python errors, for callers of should_fallback with their own exceptions.
    (TimeoutError, FallbackTrigger.TIMEOUT),
    (ConnectionError, FallbackTrigger.CONNECTION_ERROR),
)


def trigger_for(error: BaseException) -> FallbackTrigger | None:
    """The trigger an error fires, or None when falling back cannot help."""
    if isinstance(error, E.ResponseRejectedError):
        return FallbackTrigger(error.trigger)
    for cls, trig in _BY_TYPE:
        if isinstance(error, cls):
            return trig
    return None
