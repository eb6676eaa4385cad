"""The Azure OpenAI client, against httpx.MockTransport and against the local fake server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from bot import errors
from bot.azure_openai import AzureOpenAIClient, supports_stream_usage
from bot.chat_types import ChatOptions, ChatResult, Message
from bot.retry import RetryPolicy
from fakes.azure import BAD_KEY, FakeAzure, Fault

MESSAGES: list[Message] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(
    azure: FakeAzure,
    transport: httpx.AsyncBaseTransport,
    *,
    version: str = "2024-10-21",
    key: str | None = None,
    key2: str | None = None,
    sleep: Sleeps | None = None,
    deployment: str = "gpt-35-turbo",
    **kw: object,
) -> AzureOpenAIClient:
    return AzureOpenAIClient(
        transport,
        endpoint=azure.endpoint,
        deployment=deployment,
        api_version=version,
        api_key=SecretStr(key or azure.key),
        secondary_key=SecretStr(key2) if key2 else None,
        retry=RetryPolicy(rand=lambda: 0.0),
        sleep=sleep or Sleeps(),
        **kw,
    )  # type: ignore[arg-type]


async def test_client_sends_exact_url_key_version_and_body(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """URL without '//', api-key header, api-version query, only the chosen body fields."""
    client = client_for(azure, transport)
    result = await client.complete(
        MESSAGES, ChatOptions(temperature=0.2, max_tokens=50, user="u-hash")
    )
    req = azure.completions[-1]
    assert req.path == "/openai/deployments/gpt-35-turbo/chat/completions"
    assert "//" not in req.path
    assert req.query == {"api-version": "2024-10-21"}
    assert req.headers["api-key"] == azure.key
    assert "Authorization" not in req.headers
    assert req.body == {
        "messages": MESSAGES,
        "temperature": 0.2,
        "max_tokens": 50,
        "user": "u-hash",
    }
    assert result.content == "Answer to: Hello there"
    assert result.model == "gpt-35-turbo-0613"
    assert result.deployment == "gpt-35-turbo"
    assert result.finish_reason == "stop"
    assert result.usage is not None
    assert (
        result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens > 0
    )
    assert result.request_id


async def test_client_uses_bearer_token_from_provider(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """With a token provider the request carries Authorization: Bearer and no api-key."""

    async def token() -> str:
        return "fake-entra-token"

    client = AzureOpenAIClient(
        transport,
        endpoint=azure.endpoint,
        deployment="gpt-35-turbo",
        api_version="2024-10-21",
        token_provider=token,
    )
    await client.complete(MESSAGES, ChatOptions())
    headers = azure.completions[-1].headers
    assert headers["Authorization"] == "Bearer fake-entra-token"
    assert "api-key" not in headers


async def test_client_falls_back_to_secondary_key_after_401(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """KEY1 regenerated, KEY2 valid: the call succeeds and later calls start with KEY2."""
    client = client_for(azure, transport, key="old-key", key2=azure.key)
    await client.complete(MESSAGES, ChatOptions())
    await client.complete(MESSAGES, ChatOptions())
    keys = [r.headers["api-key"] for r in azure.completions]
    assert keys == ["old-key", azure.key, azure.key]


@pytest.mark.parametrize(
    ("fault_kind", "error", "words"),
    [
        ("content_filter", errors.ContentFiltered, "hate"),
        ("context_length", errors.ContextTooLong, "too long"),
    ],
)
async def test_client_maps_400s(
    azure: FakeAzure,
    transport: httpx.AsyncBaseTransport,
    fault_kind: str,
    error: type[errors.AzureOpenAIError],
    words: str,
) -> None:
    """400 content_filter and context_length_exceeded become their errors, with no retry."""
    azure.push(Fault(fault_kind))
    sleeps = Sleeps()
    with pytest.raises(error) as info:
        await client_for(azure, transport, sleep=sleeps).complete(MESSAGES, ChatOptions())
    assert words in info.value.user_message
    assert sleeps.calls == []
    assert len(azure.completions) == 1


async def test_client_read_timeout_is_enforced_through_the_transport(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """The client sends through the transport, so its timeout must travel in the request: an
    Azure that does not answer ends as AzureUnavailable after the read timeout, not hanging."""
    azure.push(Fault("timeout"))
    client = AzureOpenAIClient(
        transport,
        endpoint=azure.endpoint,
        deployment="gpt-35-turbo",
        api_version="2024-10-21",
        api_key=SecretStr(azure.key),
        retry=RetryPolicy(max_retries=0),
        timeout=httpx.Timeout(0.3),
    )
    started = time.monotonic()
    with pytest.raises(errors.AzureUnavailable, match="timed out"):
        await client.complete(MESSAGES, ChatOptions())
    assert time.monotonic() - started < 5  # the fake holds the request for 10 s


async def test_client_refused_connection_through_the_transport(
    transport: httpx.AsyncBaseTransport,
) -> None:
    """Nothing listening: the transport's direct POST raises an httpx transport error (which
    httpx-aiohttp's mapping calls a ConnectTimeout), which the client retries and then reports
    as AzureUnavailable."""
    client = AzureOpenAIClient(
        transport,
        endpoint="http://127.0.0.1:1",
        deployment="gpt-35-turbo",
        api_version="2024-10-21",
        api_key=SecretStr("k"),
        retry=RetryPolicy(max_retries=1, base_delay=0.01),
    )
    with pytest.raises(errors.AzureUnavailable, match="ConnectTimeout"):
        await client.complete(MESSAGES, ChatOptions())


async def test_client_maps_bad_key(azure: FakeAzure, transport: httpx.AsyncBaseTransport) -> None:
    """A wrong key gives AuthenticationFailed, whose message never contains the key."""
    with pytest.raises(errors.AuthenticationFailed) as info:
        await client_for(azure, transport, key="wrong-key-123").complete(MESSAGES, ChatOptions())
    assert "wrong-key-123" not in str(info.value) + info.value.user_message + repr(info.value)
    assert info.value.status == 401


async def test_client_maps_deployment_not_found(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A model name used as deployment name gets the 'not the model name' advice."""
    with pytest.raises(errors.DeploymentNotFound) as info:
        await client_for(azure, transport, deployment="gpt-4-model-name").complete(
            MESSAGES, ChatOptions()
        )
    assert "not the model name" in info.value.user_message


async def test_client_maps_unsupported_api_version(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A made-up api-version gets ApiVersionUnsupported."""
    with pytest.raises(errors.ApiVersionUnsupported):
        await client_for(azure, transport, version="2025-13-01").complete(MESSAGES, ChatOptions())


async def test_client_maps_resource_not_found(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A version without the chat route answers 404 Resource not found."""
    with pytest.raises(errors.ResourceNotFound):
        await client_for(azure, transport, version="2022-12-01").complete(MESSAGES, ChatOptions())


async def test_client_retries_429_honouring_retry_after_ms(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """Two 429s then success: the answer arrives after sleeping exactly retry-after-ms."""
    azure.push(Fault("rate_limit", retry_after_ms=250), Fault("rate_limit", retry_after_ms=1200))
    sleeps = Sleeps()
    result = await client_for(azure, transport, sleep=sleeps).complete(MESSAGES, ChatOptions())
    assert result.content.startswith("Answer to")
    assert sleeps.calls == [0.25, 1.2]
    assert len(azure.completions) == 3


async def test_client_gives_up_on_500_after_bounded_retries(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """500 on every attempt: backoff 0.5, 1, 2 s, then AzureUnavailable."""
    azure.push(*[Fault("server_error")] * 10)
    sleeps = Sleeps()
    with pytest.raises(errors.AzureUnavailable):
        await client_for(azure, transport, sleep=sleeps).complete(MESSAGES, ChatOptions())
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert len(azure.completions) == 4


async def test_client_rate_limited_after_retries(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """429 on every attempt ends in RateLimited, not in an endless wait."""
    azure.push(*[Fault("rate_limit", retry_after_ms=100)] * 10)
    with pytest.raises(errors.RateLimited):
        await client_for(azure, transport).complete(MESSAGES, ChatOptions())


async def test_client_completion_filter_raises_with_categories(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """200 with finish_reason content_filter and no content names the filtered category."""
    azure.push(Fault("completion_filter"))
    with pytest.raises(errors.ContentFiltered) as info:
        await client_for(azure, transport).complete(MESSAGES, ChatOptions())
    assert info.value.categories == ("violence",)
    assert "the answer" in info.value.user_message


async def test_client_2023_05_15_body_has_no_new_fields(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """The oldest GA version rejects unknown arguments, so streaming sends no stream_options."""
    client = client_for(azure, transport, version="2023-05-15")
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    result = await client.complete(MESSAGES, ChatOptions(), on_delta=collect)
    assert "stream_options" not in azure.completions[-1].body
    assert "".join(pieces) == result.content == "Answer to: Hello there"
    assert result.usage is None


async def test_client_stream_collects_text_and_usage(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """Streaming tolerates the annotation chunk and reports the final usage chunk."""
    client = client_for(azure, transport)
    items = [item async for item in client.stream(MESSAGES, ChatOptions())]
    *texts, final = items
    assert isinstance(final, ChatResult)
    assert "".join(texts) == final.content == "Answer to: Hello there"
    assert azure.completions[-1].body["stream_options"] == {"include_usage": True}
    assert final.usage is not None and final.usage.total_tokens > 0
    assert final.finish_reason == "stop"


async def test_client_cut_stream_raises_with_partial_text(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A stream that closes before [DONE] raises StreamInterrupted carrying what arrived."""
    azure.answer = lambda m: "one two three four five"
    azure.push(Fault("cut_stream", after_words=2))
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    with pytest.raises(errors.StreamInterrupted) as info:
        await client_for(azure, transport).complete(MESSAGES, ChatOptions(), on_delta=collect)
    assert info.value.partial == "one two" == "".join(pieces)


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], **kw: object
) -> AzureOpenAIClient:
    transport = httpx.MockTransport(handler)
    return AzureOpenAIClient(
        transport,
        endpoint="https://res.openai.azure.com/",
        deployment="my dep",
        api_version="2024-06-01",
        api_key=SecretStr("k"),
        sleep=Sleeps(),
        retry=RetryPolicy(rand=lambda: 0.0),
        **kw,
    )  # type: ignore[arg-type]


async def test_client_quotes_deployment_and_strips_trailing_slash() -> None:
    """The deployment is URL-quoted; the endpoint's trailing slash never doubles."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"choices": [], "model": "m", "unknown": {"x": 1}})

    result = await mock_client(handler).complete(MESSAGES, ChatOptions())
    assert seen == [
        "https://res.openai.azure.com/openai/deployments/my%20dep/chat/completions"
        "?api-version=2024-06-01"
    ]
    assert result.content == "" and result.finish_reason is None and result.usage is None


@pytest.mark.parametrize(
    "body",
    [
        {"choices": [{"message": {"role": "assistant"}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]},
        {"choices": [{"message": None}]},
    ],
)
async def test_client_tolerates_missing_content(body: dict[str, object]) -> None:
    """Missing or null content parses as empty text, never a crash."""
    result = await mock_client(lambda r: httpx.Response(200, json=body)).complete(
        MESSAGES, ChatOptions()
    )
    assert result.content == ""


async def test_client_gateway_401_without_error_wrapper() -> None:
    """Entra gateway 401s have {statusCode, message} only; still AuthenticationFailed."""
    body = {"statusCode": 401, "message": "Unauthorized. Access token is missing"}
    with pytest.raises(errors.AuthenticationFailed):
        await mock_client(lambda r: httpx.Response(401, json=body)).complete(
            MESSAGES, ChatOptions()
        )


async def test_client_non_json_error_body() -> None:
    """An HTML 502 from a proxy is retried, then reported as AzureUnavailable."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with pytest.raises(errors.AzureUnavailable):
        await mock_client(handler).complete(MESSAGES, ChatOptions())
    assert len(calls) == 4


async def test_client_retries_connection_errors() -> None:
    """A refused connection is retried, then succeeds."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    assert (await mock_client(handler).complete(MESSAGES, ChatOptions())).content == "ok"


async def test_client_never_retries_plain_400() -> None:
    """An unknown-parameter 400 is an InvalidRequest, sent once."""
    calls = []
    body = {"error": {"message": "Unknown parameter: 'x'.", "code": "unknown_parameter"}}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(400, json=body)

    with pytest.raises(errors.InvalidRequest, match="Unknown parameter"):
        await mock_client(handler).complete(MESSAGES, ChatOptions())
    assert len(calls) == 1


def test_client_bad_key_body_is_the_reference_one() -> None:
    """The fake's 401 body is Azure's exact text (guards the fake itself)."""
    assert BAD_KEY["error"]["message"].startswith("Access denied due to invalid subscription key")


@pytest.mark.parametrize(
    ("version", "usage"),
    [
        ("2023-05-15", False),
        ("2024-06-01", False),
        ("2024-08-01-preview", False),
        ("2024-09-01-preview", True),
        ("2024-10-21", True),
        ("2025-04-01-preview", True),
    ],
)
def test_stream_usage_support_by_version(version: str, usage: bool) -> None:
    """stream_options.include_usage only where the api-version accepts it."""
    assert supports_stream_usage(version) is usage
