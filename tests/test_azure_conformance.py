"""Conformance with Azure's official spec (tests/azure_spec/, copied from
Azure/azure-rest-api-specs): every request body the client sends validates against the request
schema of its api-version and uses no field the version does not define; the spec's example
answers and error bodies read as they should."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from bot import errors
from bot.azure_deployments import DeploymentFacts, InMemoryDeployments
from bot.azure_openai import AzureOpenAIClient
from bot.chat_types import ChatOptions, Message
from bot.retry import RetryPolicy
from tests.azure_spec.openapi import ChatSpec

ENDPOINT = "https://res.openai.azure.com"
VERSIONS = ("2023-05-15", "2024-06-01", "2024-10-21", "v1")
SPECS = {version: ChatSpec(version) for version in VERSIONS}
MESSAGES: list[Message] = [
    {"role": "system", "content": "You are a helpful assistant in a Slack workspace."},
    {"role": "user", "content": "Ada: what is a monad?"},
    {"role": "assistant", "content": "A monoid in the category of endofunctors."},
    {"role": "user", "content": "Ada: and in plain words?"},
]
OPTIONS = {
    "defaults": ChatOptions(),
    "temperature": ChatOptions(temperature=0.7),
    "top_p": ChatOptions(top_p=0.5),
    "max_tokens": ChatOptions(max_tokens=800),
    "user": ChatOptions(user="a3f9c2e1d4b5"),
    "reasoning_effort": ChatOptions(reasoning_effort="medium"),
    "all": ChatOptions(
        temperature=0, top_p=1, max_tokens=4000, user="u", reasoning_effort="minimal"
    ),
}
SSE = (
    b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def answering(sent: list[dict[str, object]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        if body.get("stream"):
            return httpx.Response(200, content=SSE, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    return handler


async def sent_body(version: str, options: ChatOptions, *, stream: bool, reasoning: bool) -> dict:  # type: ignore[type-arg]
    """The one body the client sends for this call."""
    sent: list[dict[str, object]] = []
    memory = InMemoryDeployments()
    await memory.remember(ENDPOINT, "dep", DeploymentFacts(reasoning=reasoning))
    client = AzureOpenAIClient(
        httpx.MockTransport(answering(sent)),
        endpoint=ENDPOINT,
        deployment="dep",
        api_version=version,
        api_key=SecretStr("k"),
        memory=memory,
    )

    async def ignore(piece: str) -> None:
        pass

    await client.complete(MESSAGES, options, on_delta=ignore if stream else None)
    (body,) = sent
    return body


CASES = list(itertools.product(VERSIONS, OPTIONS, (False, True), (False, True)))


@pytest.mark.parametrize(("version", "option", "stream", "reasoning"), CASES)
async def test_request_bodies_conform_to_their_api_version(
    version: str, option: str, stream: bool, reasoning: bool
) -> None:
    """Each body validates against its version's request schema and has no undefined field;
    a reasoning body with a budget on a version without max_completion_tokens is refused
    before anything is sent."""
    spec = SPECS[version]
    options = OPTIONS[option]
    too_old = reasoning and options.max_tokens is not None and version < "2024-09-01"
    if too_old:
        with pytest.raises(errors.ApiVersionTooOld):
            await sent_body(version, options, stream=stream, reasoning=reasoning)
        return
    body = await sent_body(version, options, stream=stream, reasoning=reasoning)
    assert spec.request_errors(body) == []
    assert spec.undefined_fields(body) == set()
    if reasoning:
        assert not {"max_tokens", "temperature", "top_p"} & set(body)
    else:
        assert not {"max_completion_tokens", "reasoning_effort"} & set(body)


def test_the_checker_flags_what_a_version_does_not_define() -> None:
    """The check is not vacuous: fields a version lacks, and values out of range, are caught."""
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    assert SPECS["2023-05-15"].undefined_fields(body) == {"stream_options"}
    assert ChatSpec("2024-10-21", yaml_overlay=False).undefined_fields(body) == {"stream_options"}
    assert SPECS["2024-10-21"].undefined_fields(body) == set()
    assert SPECS["2024-10-21"].undefined_fields({**body, "reasoning_effort": "low"}) == {
        "reasoning_effort"
    }
    assert SPECS["2024-06-01"].undefined_fields({"messages": [], "model": "m"}) == {"model"}
    assert SPECS["2024-06-01"].request_errors({"messages": MESSAGES, "temperature": 3})
    assert SPECS["v1"].request_errors({"messages": MESSAGES, "reasoning_effort": "extreme"})


@pytest.mark.parametrize("version", VERSIONS)
async def test_spec_example_answers_read_through_the_client(version: str) -> None:
    """The spec's example 200 body becomes the ChatResult it describes."""
    example = SPECS[version].examples["responses"]["200"]["body"]

    client = AzureOpenAIClient(
        httpx.MockTransport(lambda request: httpx.Response(200, json=example)),
        endpoint=ENDPOINT,
        deployment="dep",
        api_version=version,
        api_key=SecretStr("k"),
    )
    result = await client.complete(MESSAGES, ChatOptions())
    assert result.content == example["choices"][0]["message"]["content"]
    assert result.finish_reason == "stop"
    assert result.model == example.get("model", "")
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        example["usage"]["prompt_tokens"],
        example["usage"]["completion_tokens"],
    )


ERROR_BODIES = [
    (400, {"code": "content_filter", "message": "The response was filtered", "param": "prompt",
           "type": "invalid_request_error", "inner_error": {
               "code": "ResponsibleAIPolicyViolation",
               "content_filter_results": {"hate": {"filtered": True, "severity": "high"},
                                          "jailbreak": {"filtered": False, "detected": False}}}},
     errors.ContentFiltered),
    (400, {"code": "context_length_exceeded", "message": "This model's maximum context length is "
           "4096 tokens.", "param": "messages", "type": "invalid_request_error"},
     errors.ContextTooLong),
    (400, {"code": "unsupported_parameter", "message": "Unsupported parameter: 'max_tokens'.",
           "param": "max_tokens", "type": "invalid_request_error"}, errors.UnsupportedParameter),
    (400, {"code": "BadRequest", "message": "Model o3 is enabled only for api versions "
           "2024-12-01-preview and later"}, errors.ApiVersionTooOld),
    (400, {"code": "BadRequest", "message": "API version not supported"},
     errors.ApiVersionUnsupported),
    (401, {"code": "401", "message": "Access denied due to invalid subscription key."},
     errors.AuthenticationFailed),
    (404, {"code": "DeploymentNotFound", "message": "The API deployment for this resource does "
           "not exist."}, errors.DeploymentNotFound),
    (404, {"code": "404", "message": "Resource not found"}, errors.ResourceNotFound),
    (429, {"code": "429", "message": "Rate limit is exceeded. Try again in 50 seconds."},
     errors.RateLimited),
    (500, {"code": "server_error", "message": "The server had an error.", "type": "server_error"},
     errors.AzureUnavailable),
]  # fmt: skip


@pytest.mark.parametrize(("status", "error", "expected"), ERROR_BODIES)
@pytest.mark.parametrize("version", ["2024-06-01", "2024-10-21"])
async def test_spec_shaped_error_bodies_map_to_their_errors(
    version: str, status: int, error: dict[str, object], expected: type[errors.BotError]
) -> None:
    """Error bodies the spec's errorResponse admits (its `inner_error.content_filter_results`
    spelling included) become the right error of the tree."""
    body = {"error": error}
    assert SPECS[version].error_body_errors(body) == []
    client = AzureOpenAIClient(
        httpx.MockTransport(lambda request: httpx.Response(status, json=body)),
        endpoint=ENDPOINT,
        deployment="dep",
        api_version=version,
        api_key=SecretStr("k"),
        retry=RetryPolicy(max_retries=0),
        memory=InMemoryDeployments(),
    )
    with pytest.raises(expected) as info:
        await client.complete(MESSAGES, ChatOptions())
    if isinstance(info.value, errors.ContentFiltered):
        assert info.value.categories == ("hate",)
