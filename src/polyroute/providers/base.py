"""The adapter interface: one wire protocol each.

An adapter turns a ``ChatRequest`` (OpenAI-style messages and parameters) into
its provider's wire format, sends it over the shared aiohttp session, and
returns a ``ChatResponse`` whose ``raw`` is always in OpenAI's
chat.completion shape.  Retry, fallback, cooldown and cost are not the
adapter's business: the router composes those around it.

``Endpoint`` is the provider side: where to send and with which key.  Keys
are held in ``Secret`` so that no ``repr``, log line or error can show them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from polyroute.types import Message, Usage

if TYPE_CHECKING:  # aiohttp loads when the first call is made, not at import
    import aiohttp

Wire = Literal["openai", "anthropic", "simulator"]


class Secret:
    """A string that never shows itself in repr/str/format."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(slots=True, frozen=True)
class Endpoint:
    """A resolved provider connection: name, wire format, URL and credential."""

    provider: str
    wire: Wire
    base_url: str
    api_key: Secret | None = None
    headers: tuple[tuple[str, str], ...] = ()
    # Simulator knobs (latency seconds, failure rate, error kinds, seed); ignored by real wires.
    simulator: tuple[tuple[str, Any], ...] = ()
    responses_api: bool = False  # serves OpenAI's Responses API (/responses)

    def sim_setting(self, name: str, default: Any) -> Any:
        for k, v in self.simulator:
            if k == name:
                return v
        return default


@dataclass(slots=True)
class ChatRequest:
    model: str  # the provider's model name
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)  # OpenAI parameter names
    timeout: float | None = None
    catalog_id: str = ""  # for error messages and the simulator's pricing
    first_chunk_timeout: float | None = None  # plain calls: request sent -> headers
    # A request in a provider's own format, forwarded as sent (model replaced) by the
    # adapter that speaks it: an Anthropic Messages body ("anthropic") with its
    # anthropic-* headers, or an OpenAI Responses body ("responses").
    native: dict[str, Any] | None = None
    native_headers: tuple[tuple[str, str], ...] = ()
    native_wire: str | None = None


@dataclass(slots=True)
class ChatResponse:
    content: str | None
    usage: Usage
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    request_id: str | None = None
    raw: dict[str, Any] | None = None  # OpenAI chat.completion shape
    simulated: bool = False
    native: dict[str, Any] | None = None  # the upstream's answer as sent (native requests)


@dataclass(slots=True)
class StreamChunk:
    """One piece of a streamed answer, already in OpenAI chunk shape (``raw``).

    ``delta`` is the text it adds; the last chunk carries ``finish_reason``
    and, when known, ``usage``.  An adapter's stream raises
    ``InvalidResponseError`` if the upstream ends without its terminal event.
    """

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    raw: dict[str, Any] | None = None
    skipped_events: int = 0  # malformed events skipped just before this chunk
    native: bytes | None = None  # the upstream's SSE event as sent (native requests)


@dataclass(slots=True)
class ImageRequest:
    model: str
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)  # n, size, quality, response_format
    timeout: float | None = None
    catalog_id: str = ""


@dataclass(slots=True)
class ImageResponse:
    images: list[dict[str, Any]]  # each {"url": ...} or {"b64_json": ...}, maybe revised_prompt
    request_id: str | None = None
    raw: dict[str, Any] | None = None
    simulated: bool = False


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str]
    params: dict[str, Any] = field(default_factory=dict)  # dimensions, encoding_format, user
    timeout: float | None = None
    catalog_id: str = ""


@dataclass(slots=True)
class EmbeddingResponse:
    embeddings: list[list[float]]  # one vector per input, in input order
    usage: Usage
    request_id: str | None = None
    raw: dict[str, Any] | None = None  # OpenAI embeddings shape
    simulated: bool = False


class Adapter(Protocol):
    """One wire protocol.  Implementations are stateless; the session is shared."""

    async def chat(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> ChatResponse: ...

    def stream(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncIterator[StreamChunk]: ...

    async def image(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ImageRequest
    ) -> ImageResponse: ...

    async def embed(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: EmbeddingRequest
    ) -> EmbeddingResponse: ...
