"""Reasoning deployments (o-series, gpt-5 family): learned from Azure's 400s, remembered, sent the
right parameter set, reasoning tokens shown, an all-reasoning empty answer explained."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot import errors
from bot.azure_deployments import DeploymentFacts, InMemoryDeployments, is_reasoning_model
from bot.azure_errors import map_error
from bot.azure_openai import AzureOpenAIClient
from bot.chat_types import ChatOptions, ChatResult, Message, Usage
from bot.formatting import usage_text
from bot.retry import RetryPolicy
from bot.store.deployments import RedisDeployments
from bot.store.keys import Keys
from fakes.azure import FakeAzure, unsupported_max_tokens
from tests.test_cli_ask import run_ask

MESSAGES: list[Message] = [{"role": "user", "content": "Why is the sky blue?"}]


class Sleeps:
    async def __call__(self, seconds: float) -> None:
        pass


def client_for(
    azure: FakeAzure,
    transport: httpx.AsyncBaseTransport,
    *,
    deployment: str = "gpt-5-mini",
    version: str = "2024-12-01-preview",
    memory: object = None,
) -> AzureOpenAIClient:
    return AzureOpenAIClient(
        transport,
        endpoint=azure.endpoint,
        deployment=deployment,
        api_version=version,
        api_key=SecretStr(azure.key),
        retry=RetryPolicy(rand=lambda: 0.0),
        sleep=Sleeps(),
        memory=memory,  # type: ignore[arg-type]
    )


async def test_client_learns_the_reasoning_set_from_azures_refusal(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """max_tokens refused with 400 → sent again at once with max_completion_tokens and no
    temperature/top_p; the next call sends that set first."""
    client = client_for(azure, transport)
    options = ChatOptions(max_tokens=1000, temperature=0.2, top_p=0.9, reasoning_effort="low")
    result = await client.complete(MESSAGES, options)
    second = await client.complete(MESSAGES, options)
    first_try, retry, later = (r.body for r in azure.completions)
    assert first_try["max_tokens"] == 1000 and first_try["temperature"] == 0.2
    assert "reasoning_effort" not in first_try
    for body in (retry, later):
        assert body == {
            "messages": MESSAGES,
            "max_completion_tokens": 1000,
            "reasoning_effort": "low",
        }
    assert result.content == second.content == "Answer to: Why is the sky blue?"
    assert result.model == "gpt-5-mini-2025-08-07"


async def test_client_streams_a_reasoning_answer_after_learning(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """The refusal comes before any stream starts, so a streamed turn learns the same way."""
    client = client_for(azure, transport, version="2024-10-21")
    items = [item async for item in client.stream(MESSAGES, ChatOptions(max_tokens=1000))]
    *texts, final = items
    assert isinstance(final, ChatResult)
    assert "".join(texts) == final.content == "Answer to: Why is the sky blue?"
    assert final.usage is not None and final.usage.reasoning_tokens == 200
    assert [("max_tokens" in r.body, r.body.get("stream")) for r in azure.completions] == [
        (True, True),
        (False, True),
    ]


async def test_client_sends_reasoning_effort_only_where_it_exists(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """reasoning_effort goes to reasoning deployments on versions that define it (v1,
    2024-12-01-preview+), never to a chat deployment, never to GA 2024-10-21."""
    options = ChatOptions(max_tokens=1000, reasoning_effort="high")
    await client_for(azure, transport, deployment="gpt-4o").complete(MESSAGES, options)
    memory = InMemoryDeployments()
    await memory.remember(azure.endpoint.rstrip("/"), "gpt-5-mini", DeploymentFacts(True))
    for version in ("2024-10-21", "2024-12-01-preview", "v1"):
        client = client_for(azure, transport, version=version, memory=memory)
        await client.complete(MESSAGES, options)
    sent = [r.body.get("reasoning_effort") for r in azure.completions]
    assert sent == [None, None, "high", "high"]


async def test_client_picks_the_set_from_the_remembered_model(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A deployment whose answers named an o-series model gets the reasoning set first; the
    model of every answer is remembered."""
    memory = InMemoryDeployments()
    endpoint = azure.endpoint.rstrip("/")
    await memory.remember(endpoint, "o4-mini", DeploymentFacts(model="o4-mini-2025-04-16"))
    await client_for(azure, transport, deployment="o4-mini", memory=memory).complete(
        MESSAGES, ChatOptions(max_tokens=1000)
    )
    await client_for(azure, transport, deployment="gpt-4o", memory=memory).complete(
        MESSAGES, ChatOptions(max_tokens=1000)
    )
    assert [sorted(r.body) for r in azure.completions] == [
        ["max_completion_tokens", "messages"],
        ["max_tokens", "messages"],
    ]
    assert await memory.recall(endpoint, "gpt-4o") == DeploymentFacts(None, "gpt-4o-2024-11-20")


async def test_client_relearns_a_deployment_redeployed_with_another_model(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A deployment remembered as o4-mini that now answers as gpt-4o gets the classic set (and
    its temperature) from the next call on."""
    memory = InMemoryDeployments()
    endpoint = azure.endpoint.rstrip("/")
    await memory.remember(endpoint, "gpt-4o", DeploymentFacts(True, "o4-mini-2025-04-16"))
    client = client_for(azure, transport, deployment="gpt-4o", memory=memory)
    options = ChatOptions(max_tokens=500, temperature=0.3)
    await client.complete(MESSAGES, options)
    await client.complete(MESSAGES, options)
    assert [sorted(r.body) for r in azure.completions] == [
        ["max_completion_tokens", "messages"],
        ["max_tokens", "messages", "temperature"],
    ]
    assert await memory.recall(endpoint, "gpt-4o") == DeploymentFacts(None, "gpt-4o-2024-11-20")


async def test_client_shares_findings_through_redis(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport, real_redis: Redis
) -> None:
    """What one replica learned, another sends first; the finding expires after days."""
    keys = Keys("bot:")
    first = client_for(azure, transport, memory=RedisDeployments(real_redis, keys))
    await first.complete(MESSAGES, ChatOptions(max_tokens=1000))
    other = client_for(azure, transport, memory=RedisDeployments(real_redis, keys))
    await other.complete(MESSAGES, ChatOptions(max_tokens=1000))
    assert ["max_tokens" in r.body for r in azure.completions] == [True, False, False]
    key = keys.deployment(azure.endpoint.rstrip("/"), "gpt-5-mini")
    assert await real_redis.hgetall(key) == {"reasoning": "1", "model": "gpt-5-mini-2025-08-07"}  # type: ignore[misc]
    assert 6 * 86_400 < await real_redis.ttl(key) <= 7 * 86_400


async def test_client_answers_when_the_memory_is_down(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """A Redis that cannot be reached never fails a turn: the refusal is learned again."""
    dead = Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=1)
    try:
        client = client_for(azure, transport, memory=RedisDeployments(dead, Keys()))
        result = await client.complete(MESSAGES, ChatOptions(max_tokens=1000))
    finally:
        await dead.aclose()
    assert result.content and len(azure.completions) == 2


async def test_client_keeps_other_refusals() -> None:
    """A 400 unsupported_parameter for a field outside the classic set is raised, sent once."""
    calls: list[dict[str, object]] = []
    body = {"error": {"message": "Unsupported parameter: 'stop'.", "type": "invalid_request_error",
                      "param": "stop", "code": "unsupported_parameter"}}  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(400, json=body)

    client = AzureOpenAIClient(
        httpx.MockTransport(handler),
        endpoint="https://res.openai.azure.com",
        deployment="d",
        api_version="v1",
        api_key=SecretStr("k"),
    )
    with pytest.raises(errors.UnsupportedParameter, match="'stop'"):
        await client.complete(MESSAGES, ChatOptions(max_tokens=10))
    assert len(calls) == 1


async def test_client_names_the_version_a_reasoning_deployment_needs(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """Before 2024-09-01-preview there is no max_completion_tokens: one sentence naming v1 or
    2024-10-21 replaces Azure's raw refusal."""
    client = client_for(azure, transport, version="2024-06-01")
    with pytest.raises(errors.ApiVersionTooOld) as info:
        await client.complete(MESSAGES, ChatOptions(max_tokens=1000))
    assert info.value.user_message == (
        "This deployment needs a newer api-version (it is 2024-06-01): an administrator should "
        "set AZURE_OPENAI_API_VERSION=v1, or 2024-10-21 or later."
    )
    assert len(azure.completions) == 1


async def test_client_names_the_version_azure_names(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """ "Model X is enabled only for api versions Y and later" becomes the same sentence with Y."""
    azure.min_versions = {"o4-mini": "2024-12-01-preview"}
    client = client_for(azure, transport, deployment="o4-mini", version="2024-10-21")
    with pytest.raises(errors.ApiVersionTooOld) as info:
        await client.complete(MESSAGES, ChatOptions(max_tokens=1000))
    assert "AZURE_OPENAI_API_VERSION=v1, or 2024-12-01-preview or later" in (
        info.value.user_message
    )
    assert "(it is 2024-10-21)" in info.value.user_message


@pytest.mark.parametrize("stream", [False, True])
async def test_client_explains_an_answer_spent_on_reasoning(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport, stream: bool
) -> None:
    """finish_reason length with no text raises ReasoningBudgetExhausted, whose message says to
    raise max_tokens, instead of returning an empty answer."""
    client = client_for(azure, transport)
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    with pytest.raises(errors.ReasoningBudgetExhausted) as info:
        await client.complete(
            MESSAGES, ChatOptions(max_tokens=150), on_delta=collect if stream else None
        )
    assert "spent its whole token budget reasoning" in info.value.user_message
    assert "/gpt set max_tokens" in info.value.user_message
    assert info.value.reasoning_tokens == 150 and pieces == []


async def test_client_reports_reasoning_tokens(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """completion_tokens_details.reasoning_tokens lands in Usage, inside completion_tokens."""
    result = await client_for(azure, transport).complete(MESSAGES, ChatOptions(max_tokens=1000))
    assert result.usage is not None
    assert result.usage.reasoning_tokens == 200
    assert result.usage.completion_tokens > 200
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_usage_text_shows_reasoning_tokens() -> None:
    """The usage line names the reasoning part of the completion, and only when there is one."""
    assert usage_text(Usage(58, 268, 326, 200), "gpt-5-mini") == (
        "prompt 58 · completion 268 (reasoning 200) · total 326 tokens · gpt-5-mini"
    )
    assert (
        usage_text(Usage(5, 7, 12), "gpt-4o")
        == "prompt 5 · completion 7 · total 12 tokens · gpt-4o"
    )
    assert (Usage(1, 2, 3, 1) + Usage(1, 2, 3, 2)).reasoning_tokens == 3


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("o1-2024-12-17", True),
        ("o3-mini-2025-01-31", True),
        ("o4-mini-2025-04-16", True),
        ("gpt-5-2025-08-07", True),
        ("gpt-5-nano-2025-08-07", True),
        ("gpt-5-chat-2025-08-07", False),
        ("gpt-4o-2024-11-20", False),
        ("gpt-35-turbo-0613", False),
        ("", False),
    ],
)
def test_is_reasoning_model_by_family(model: str, reasoning: bool) -> None:
    """o-series and gpt-5 models take the reasoning set; gpt-5-chat and older chat models do not."""
    assert is_reasoning_model(model) is reasoning


def test_map_error_reads_the_refused_parameter() -> None:
    """Azure's exact max_tokens refusal maps to UnsupportedParameter with its param."""
    error = map_error(400, json.dumps(unsupported_max_tokens()).encode(), httpx.Headers())
    assert isinstance(error, errors.UnsupportedParameter) and error.param == "max_tokens"


def test_ask_reasoning_deployment_prints_reasoning_usage(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ask` against a gpt-5-mini deployment answers, never shows the refusal, and its usage
    line carries the reasoning tokens."""
    env = {"AZURE_OPENAI_DEPLOYMENT": "gpt-5-mini", "BOT_TEMPERATURE": "0.3"}
    out = run_ask(azure, "hi", env=env, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "Answer to: hi"
    assert "(reasoning 200)" in out.stdout.splitlines()[-1]
    assert out.stdout.strip().endswith("tokens · gpt-5-mini")
    assert "max_tokens" not in out.stderr


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"BOT_MAX_TOKENS": "100"}, "spent its whole token budget reasoning"),
        ({"AZURE_OPENAI_API_VERSION": "2024-06-01"}, "AZURE_OPENAI_API_VERSION=v1"),
    ],
)
def test_ask_reasoning_failures_exit_1_with_one_sentence(
    azure: FakeAzure,
    tmp_path,  # type: ignore[no-untyped-def]
    env: dict[str, str],
    words: str,
) -> None:
    """A budget spent on reasoning and a too-old api-version each print their sentence."""
    out = run_ask(
        azure, "hi", env={"AZURE_OPENAI_DEPLOYMENT": "gpt-5-mini", **env}, cwd=str(tmp_path)
    )
    assert out.returncode == 1
    assert words in out.stderr
    assert "Traceback" not in out.stderr and "Unsupported parameter" not in out.stderr
