"""A fake LLM provider speaking the real OpenAI and Anthropic wire formats over HTTP.

Quick use::

    fake = await start_fake_provider()            # or FakeProviderThread().start()
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test")
    fake.script("gpt-4o", [{"kind": "status", "status": 429, "retry_after": "2"}])
    ...
    fake.requests[-1].body["model"]
    await fake.close()

Fault kinds and their parameters: see :mod:`tests.fakeprovider.faults`.
"""

from .anthropic_wire import count_input_tokens
from .common import count_tokens, default_reply_text
from .faults import ANY_MODEL, FAULT_KINDS, Fault, FaultError, ToolCall
from .server import FakeProvider, FakeProviderAPI, build_app, start_fake_provider
from .state import RecordedRequest
from .thread import FakeProviderThread

__all__ = [
    "ANY_MODEL",
    "FAULT_KINDS",
    "FakeProvider",
    "FakeProviderAPI",
    "FakeProviderThread",
    "Fault",
    "FaultError",
    "RecordedRequest",
    "ToolCall",
    "build_app",
    "count_input_tokens",
    "count_tokens",
    "default_reply_text",
    "start_fake_provider",
]
