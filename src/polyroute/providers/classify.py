"""Turn an upstream failure into the right ``ProviderError`` by kind, not just status.

Providers say "the prompt is too long" in different words and codes; those
wordings are data here (``CONTEXT_WINDOW_MARKERS``), so adding a provider's
phrasing is one line.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from polyroute import errors as E
from polyroute.providers.base import Endpoint

if TYPE_CHECKING:
    import aiohttp

# Lower-cased fragments that mean "context window exceeded", from each provider's real errors.
CONTEXT_WINDOW_MARKERS: tuple[str, ...] = (
    "context_length_exceeded",  # OpenAI code
    "maximum context length",  # OpenAI, vLLM, Together, DeepSeek
    "prompt is too long",  # Anthropic
    "exceeds the maximum number of tokens",  # Gemini
    "input token count",  # Gemini
    "reduce the length of the messages",  # OpenAI, Groq
    "context window",  # Mistral, Groq ("exceeds the context window")
    "too many tokens",  # Cohere
    "string_above_max_length",
)
CONTENT_FILTER_MARKERS: tuple[str, ...] = (
    "content_filter",
    "content_policy_violation",
    "content management policy",
    "safety system",
)
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "anthropic-request-id", "cf-ray")
MAX_RETRY_AFTER_HEADER = 3600.0  # ignore absurd values rather than sleep for hours


def request_id_from(headers: Mapping[str, str]) -> str | None:
    for h in REQUEST_ID_HEADERS:
        v = headers.get(h)
        if v:
            return v
    return None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the provider asked us to wait: ``retry-after-ms``, then
    ``retry-after`` as seconds or an HTTP date.  ``now`` is wall-clock time."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            v = float(ms) / 1000.0
            if 0 <= v <= MAX_RETRY_AFTER_HEADER:
                return v
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        v = float(ra)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError, IndexError):
            return None
        v = dt.timestamp() - now
    if v < 0:
        return 0.0
    return v if v <= MAX_RETRY_AFTER_HEADER else None


def _error_fields(body: bytes) -> tuple[str, str, str]:
    """(message, type, code) from an OpenAI- or Anthropic-shaped error body."""
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        text = body[:300].decode("utf-8", "replace").strip()
        return text or "no error body", "", ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        msg = str(err.get("message") or "")
        typ = str(err.get("type") or "")
        code = str(err.get("code") or "")
        return msg or typ or "error", typ, code
    if isinstance(err, str):
        return err, "", ""
    if isinstance(data, dict) and "message" in data:
        return str(data["message"]), str(data.get("type") or ""), str(data.get("code") or "")
    return body[:300].decode("utf-8", "replace"), "", ""


def classify_http_error(
    *,
    provider: str,
    model: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
) -> E.ProviderError:
    message, typ, code = _error_fields(body)
    lowered = f"{message} {typ} {code}".lower()
    kw: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status": status,
        "request_id": request_id_from(headers),
        "code": code or typ or None,
        "retry_after": parse_retry_after(headers, now),
    }
    if any(m in lowered for m in CONTEXT_WINDOW_MARKERS):
        return E.ContextWindowExceededError(message, **kw)
    if status == 429:
        return E.RateLimitError(message, **kw)
    if status == 529 or "overloaded" in lowered:
        return E.OverloadedError(message, **kw)
    if any(m in lowered for m in CONTENT_FILTER_MARKERS):
        return E.ContentFilterError(message, **kw)
    if status in (401, 403):
        return E.AuthError(message, **kw)
    if status == 404:
        return E.ModelNotFoundError(message, **kw)
    if status in (408, 409):
        return E.ServerError(message, retryable=True, **kw)
    if status >= 500:
        return E.ServerError(message, **kw)
    return E.BadRequestError(message, **kw)


def redact(body: bytes, endpoint: Endpoint) -> bytes:
    """Error text is built from the provider's words; a provider that echoes the key it
    was sent would leak it into logs and answers, so the key is cut out first."""
    if endpoint.api_key is not None and endpoint.api_key.get():
        return body.replace(endpoint.api_key.get().encode(), b"[redacted]")
    return body


def endpoint_error(
    endpoint: Endpoint, model: str, status: int, body: bytes, headers: Mapping[str, str]
) -> E.ProviderError:
    return classify_http_error(
        provider=endpoint.provider,
        model=model,
        status=status,
        body=redact(body, endpoint),
        headers=headers,
        now=time.time(),
    )


def malformed(endpoint: Endpoint, model: str, why: str, rid: str | None) -> E.ProviderError:
    """A 2xx answer the wire protocol cannot read."""
    return E.InvalidResponseError(why, provider=endpoint.provider, model=model, request_id=rid)


async def raise_for_status(resp: aiohttp.ClientResponse, endpoint: Endpoint, model: str) -> None:
    if resp.status >= 400:
        raise endpoint_error(endpoint, model, resp.status, await resp.read(), resp.headers)
