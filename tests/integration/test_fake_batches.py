"""The fake provider's batch APIs: OpenAI Files + Batch and Anthropic Message Batches.

Over real HTTP with the official SDKs: every batched request is answered as the fake's own
synchronous endpoint would (default reply, usage, per-model fault queue), a batch ends
on its ``batch_polls``-th GET, and the batch endpoints are recorded and authenticated like
the others.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, Final

import anthropic
import httpx
import openai
import pytest

from tests.fakeprovider import FakeProviderThread, default_reply_text
from tests.spec import validate_against_spec

GPT = "gpt-4o"
CLAUDE = "claude-3-5-haiku-latest"
CHAT: Final = "/v1/chat/completions"


def chat_line(custom_id: str, text: str, model: str = GPT) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def reply(model: str, text: str) -> str:
    return default_reply_text(model, [{"role": "user", "content": text}])


def message_request(custom_id: str, text: str, model: str = CLAUDE) -> dict[str, Any]:
    params = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "params": params}


def non_null(obj: dict[str, Any]) -> dict[str, Any]:
    """The spec types optional batch fields as plain strings/ints: drop the nulls."""
    return {k: v for k, v in obj.items() if v is not None}


@pytest.fixture
def oai(fake: FakeProviderThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
def claude(fake: FakeProviderThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    return client.files.create(file=("in.jsonl", io.BytesIO(jsonl(lines))), purpose="batch").id


def output_lines(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


# --- OpenAI -------------------------------------------------------------------------------


def test_openai_file_upload(fake: FakeProviderThread, oai: openai.OpenAI) -> None:
    content = jsonl([chat_line("a", "hello")])
    created = oai.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    assert created.id.startswith("file-fake")
    assert (created.object, created.purpose, created.filename) == ("file", "batch", "in.jsonl")
    assert created.bytes == len(content)
    assert created.created_at > 0
    validate_against_spec(non_null(created.model_dump()), "OpenAIFile")
    assert oai.files.retrieve(created.id) == created
    assert oai.files.content(created.id).content == content

    (recorded,) = fake.requests_to("/v1/files")
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.headers["content-type"].startswith("multipart/form-data")


def test_openai_batch_answers_like_chat_completions_with_a_failed_item(
    fake: FakeProviderThread, oai: openai.OpenAI
) -> None:
    file_id = upload(oai, [chat_line("a", "first"), chat_line("b", "second"), chat_line("c", "3")])
    fake.script(
        GPT, [{"kind": "content", "content": "scripted"}, {"kind": "status", "status": 500}]
    )
    fake.batch_polls = 2

    batch = oai.batches.create(
        input_file_id=file_id,
        endpoint=CHAT,
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.id.startswith("batch_fake")
    assert (batch.object, batch.endpoint, batch.input_file_id) == ("batch", CHAT, file_id)
    assert batch.status == "validating"
    assert batch.output_file_id is None and batch.error_file_id is None
    assert batch.metadata == {"job": "nightly"}
    assert batch.request_counts is not None and batch.request_counts.total == 3
    # Nothing is processed before the batch ends: the faults are still queued.
    assert len(fake.pending_faults()[GPT]) == 2

    assert oai.batches.retrieve(batch.id).status == "in_progress"  # GET 1 of 2
    done = oai.batches.retrieve(batch.id)  # GET 2
    assert done.status == "completed"
    assert done.completed_at is not None and done.output_file_id is not None
    assert done.error_file_id is None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (3, 2)
    assert done.request_counts.failed == 1
    assert fake.pending_faults() == {}
    validate_against_spec(non_null(done.model_dump()), "Batch")
    assert oai.batches.retrieve(batch.id) == done  # stays completed, processed once

    first, second, third = output_lines(oai, done.output_file_id)
    assert [line["custom_id"] for line in (first, second, third)] == ["a", "b", "c"]
    for line in (first, second, third):
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["request_id"].startswith("req_")
    assert first["response"]["status_code"] == 200
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "scripted"
    assert second["response"]["status_code"] == 500
    assert second["response"]["body"]["error"]["type"] == "server_error"
    assert third["response"]["status_code"] == 200
    body = third["response"]["body"]
    validate_against_spec(body, "CreateChatCompletionResponse")
    assert body["object"] == "chat.completion" and body["model"] == GPT
    assert body["choices"][0]["message"]["content"] == reply(GPT, "3")
    assert body["usage"]["prompt_tokens"] == 1
    assert body["usage"]["completion_tokens"] == len(reply(GPT, "3").split())

    output = oai.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output"

    assert len(fake.requests_to("/v1/batches")) == 1
    assert fake.requests_to("/v1/batches")[0].body["metadata"] == {"job": "nightly"}
    assert len(fake.requests_to(f"/v1/batches/{batch.id}")) == 3
    assert fake.requests_to(CHAT) == []  # batched items are not separate requests


def test_openai_batch_polls_knob(fake: FakeProviderThread, oai: openai.OpenAI) -> None:
    file_id = upload(oai, [chat_line("a", "hello")])

    fake.batch_polls = 0
    batch = oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert batch.status == "completed" and batch.output_file_id is not None

    fake.batch_polls = 3
    batch = oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    fake.batch_polls = 0  # taken at creation: does not affect this batch
    statuses = [oai.batches.retrieve(batch.id).status for _ in range(4)]
    assert statuses == ["in_progress", "in_progress", "completed", "completed"]

    fake.batch_polls = 1  # the default: the create response is unfinished, GET 1 finished
    batch = oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert batch.status == "validating"
    assert oai.batches.retrieve(batch.id).status == "completed"
    (line,) = output_lines(oai, oai.batches.retrieve(batch.id).output_file_id or "")
    assert line["response"]["body"]["choices"][0]["message"]["content"] == reply(GPT, "hello")

    with pytest.raises(ValueError):
        fake.batch_polls = -1
    fake.reset()
    assert fake.batch_polls == 1


def test_openai_batch_of_embeddings(fake: FakeProviderThread, oai: openai.OpenAI) -> None:
    fake.batch_polls = 0
    line = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": "hello", "dimensions": 4},
    }
    batch = oai.batches.create(
        input_file_id=upload(oai, [line]), endpoint="/v1/embeddings", completion_window="24h"
    )
    (out,) = output_lines(oai, batch.output_file_id or "")
    assert out["response"]["status_code"] == 200
    assert len(out["response"]["body"]["data"][0]["embedding"]) == 4


def test_openai_invalid_input_fails_the_batch(oai: openai.OpenAI) -> None:
    wrong_url = {**chat_line("b", "x"), "url": "/v1/embeddings"}
    file_id = upload(oai, [chat_line("a", "x"), wrong_url, chat_line("a", "dup")])
    batch = oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("mismatched_endpoint", 2),
        ("duplicate_custom_id", 3),
    ]
    assert oai.batches.retrieve(batch.id).status == "failed"


def test_openai_unknown_ids_and_bad_requests(fake: FakeProviderThread, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as batch_err:
        oai.batches.retrieve("batch_nope")
    assert batch_err.value.body == {
        "message": "No batch found with id 'batch_nope'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        oai.files.content("file-nope")
    with pytest.raises(openai.NotFoundError):
        oai.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    file_id = upload(oai, [chat_line("a", "x")])
    with pytest.raises(openai.BadRequestError):
        oai.batches.create(
            input_file_id=file_id,
            endpoint="/v1/images/generations",
            completion_window="24h",
        )

    response = httpx.get(f"{fake.openai_base_url}/batches/batch_nope")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["x-request-id"].startswith("req_")


def test_batch_polls_over_config_endpoint(fake: FakeProviderThread) -> None:
    response = httpx.post(f"{fake.base_url}/__batches", json={"batch_polls": 2})
    assert response.json() == {"batch_polls": 2}
    assert fake.batch_polls == 2
    assert httpx.get(f"{fake.base_url}/__batches").json() == {"batch_polls": 2}
    bad = httpx.post(f"{fake.base_url}/__batches", json={"batch_polls": -1})
    assert bad.status_code == 400
    assert httpx.post(f"{fake.base_url}/__reset").status_code == 204
    assert fake.batch_polls == 1


# --- Anthropic ----------------------------------------------------------------------------


def test_anthropic_batch_with_an_errored_item(
    fake: FakeProviderThread, claude: anthropic.Anthropic
) -> None:
    fake.script(CLAUDE, [{"kind": "status", "status": 500}])
    fake.batch_polls = 2
    batch = claude.messages.batches.create(
        requests=[message_request("x", "fails"), message_request("y", "works")]  # type: ignore[list-item]
    )
    assert batch.id.startswith("msgbatch_fake")
    assert (batch.type, batch.processing_status, batch.results_url) == (
        "message_batch",
        "in_progress",
        None,
    )
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (2, 0, 0)
    assert (counts.canceled, counts.expired) == (0, 0)
    assert batch.created_at < batch.expires_at

    first = claude.messages.batches.retrieve(batch.id)  # GET 1 of 2
    assert first.processing_status == "in_progress" and first.results_url is None
    early = httpx.get(
        f"{fake.base_url}/v1/messages/batches/{batch.id}/results",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert early.status_code == 400  # not ended yet
    assert early.json()["error"]["type"] == "invalid_request_error"
    ended = claude.messages.batches.retrieve(batch.id)  # GET 2
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert ended.results_url == f"{fake.base_url}/v1/messages/batches/{batch.id}/results"
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 1, 1)

    results = list(claude.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["x", "y"]
    errored, succeeded = results[0].result, results[1].result
    assert errored.type == "errored"
    assert errored.error.type == "error"
    assert errored.error.error.type == "api_error"
    assert errored.error.error.message == "Internal server error"
    assert succeeded.type == "succeeded"
    message = succeeded.message
    assert message.model == CLAUDE and message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == reply(CLAUDE, "works")
    assert message.usage.output_tokens == len(reply(CLAUDE, "works").split())

    assert len(fake.requests_to("/v1/messages/batches")) == 1
    assert fake.requests_to("/v1/messages/batches")[0].headers["authorization"] == (
        "Bearer sk-ant-test"
    )
    assert len(fake.requests_to(f"/v1/messages/batches/{batch.id}/results")) == 2
    assert fake.requests_to("/v1/messages") == []


def test_anthropic_batch_polls(fake: FakeProviderThread, claude: anthropic.Anthropic) -> None:
    fake.batch_polls = 0
    batch = claude.messages.batches.create(requests=[message_request("a", "hi")])  # type: ignore[list-item]
    assert batch.processing_status == "ended" and batch.results_url is not None
    (result,) = claude.messages.batches.results(batch.id)
    assert result.result.type == "succeeded"

    fake.batch_polls = 2
    batch = claude.messages.batches.create(requests=[message_request("a", "hi")])  # type: ignore[list-item]
    statuses = [claude.messages.batches.retrieve(batch.id).processing_status for _ in range(3)]
    assert statuses == ["in_progress", "ended", "ended"]

    fake.batch_polls = 1  # the default: the first GET sees it ended
    batch = claude.messages.batches.create(requests=[message_request("a", "hi")])  # type: ignore[list-item]
    assert batch.processing_status == "in_progress"
    assert claude.messages.batches.retrieve(batch.id).processing_status == "ended"


def test_anthropic_unknown_ids_and_auth(
    fake: FakeProviderThread, claude: anthropic.Anthropic, oai: openai.OpenAI
) -> None:
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.batches.retrieve("msgbatch_nope")
    assert err.value.body == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "No message batch found with id 'msgbatch_nope'",
        },
    }
    # An OpenAI batch id is not an Anthropic one (and vice versa).
    fake.batch_polls = 0
    batch = claude.messages.batches.create(requests=[message_request("a", "hi")])  # type: ignore[list-item]
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve(batch.id)
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.create(requests=[])
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.create(
            requests=[message_request("a", "1"), message_request("a", "2")]  # type: ignore[list-item]
        )

    response = httpx.get(
        f"{fake.base_url}/v1/messages/batches/{batch.id}", headers={"anthropic-version": "x"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
