"""Azure's v1 API: `{endpoint}/openai/v1/chat/completions`, no api-version, the deployment in the
body's `model`; an endpoint pasted with `/openai/v1` works; `ask` and `doctor` work on it."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from pydantic import SecretStr

from bot.azure_openai import AzureOpenAIClient
from bot.chat_types import ChatOptions, ChatResult, Message
from bot.settings import load_settings
from fakes.azure import FakeAzure
from fakes.slack import FakeSlack
from tests.slackbot_harness import bot_env
from tests.test_cli_ask import ROOT, run_ask, this_checkout

MESSAGES: list[Message] = [{"role": "user", "content": "Hello there"}]


def v1_client(transport: httpx.AsyncBaseTransport, endpoint: str, key: str) -> AzureOpenAIClient:
    return AzureOpenAIClient(
        transport,
        endpoint=endpoint,
        deployment="gpt-4o",
        api_version="v1",
        api_key=SecretStr(key),
    )


async def test_client_v1_url_has_no_api_version_and_body_names_the_deployment() -> None:
    """POST {endpoint}/openai/v1/chat/completions, no query, `model` = the deployment name."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    client = v1_client(httpx.MockTransport(handler), "https://res.openai.azure.com/", "k")
    await client.complete(MESSAGES, ChatOptions(deployment="my dep", max_tokens=5))
    (request,) = seen
    assert str(request.url) == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert request.content == (
        b'{"messages":[{"role":"user","content":"Hello there"}],"model":"my dep","max_tokens":5}'
    )


async def test_client_v1_streams_with_usage(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport
) -> None:
    """v1 accepts stream_options, so a streamed answer ends with its usage."""
    client = v1_client(transport, azure.endpoint, azure.key)
    items = [item async for item in client.stream(MESSAGES, ChatOptions())]
    *texts, final = items
    assert isinstance(final, ChatResult)
    assert "".join(texts) == final.content == "Answer to: Hello there"
    assert final.usage is not None and final.usage.total_tokens > 0
    request = azure.completions[-1]
    assert request.path == "/openai/v1/chat/completions" and request.query == {}
    assert request.body["model"] == "gpt-4o"
    assert request.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("suffix", ["", "/", "/openai/v1", "/openai/v1/"])
def test_settings_accept_an_endpoint_pasted_with_openai_v1(suffix: str) -> None:
    """`.../openai/v1` (Azure's v1 base URL) is accepted, normalised, and selects v1."""
    settings = load_settings(
        _env_file=None,
        azure_openai_endpoint="https://res.openai.azure.com" + suffix,
        azure_openai_key="k",
    )
    assert settings.azure_openai_endpoint == "https://res.openai.azure.com"
    assert settings.azure_openai_api_version == ("v1" if "v1" in suffix else "2024-10-21")


def test_settings_explicit_api_version_wins_over_a_v1_endpoint() -> None:
    """A dated AZURE_OPENAI_API_VERSION with a pasted v1 endpoint keeps the deployment API."""
    settings = load_settings(
        _env_file=None,
        azure_openai_endpoint="https://res.openai.azure.com/openai/v1/",
        azure_openai_key="k",
        azure_openai_api_version="2023-05-15",
    )
    assert settings.azure_openai_endpoint == "https://res.openai.azure.com"
    assert settings.azure_openai_api_version == "2023-05-15"


def test_ask_on_v1_with_a_pasted_v1_endpoint(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ask --stream` against `.../openai/v1/`: one v1 request, streamed, with a usage line."""
    env = {"AZURE_OPENAI_ENDPOINT": azure.endpoint + "openai/v1/"}
    out = run_ask(azure, "hi", "--stream", env=env, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "Answer to: hi"
    assert out.stdout.splitlines()[-1].startswith("prompt ")
    (request,) = azure.completions
    assert request.path == "/openai/v1/chat/completions"
    assert request.body["model"] == "gpt-35-turbo" and request.body["stream"] is True


def test_doctor_names_the_v1_surface(azure: FakeAzure, slack: FakeSlack) -> None:
    """doctor's azure line says it tested the v1 API, and passes."""
    env = this_checkout(bot_env(azure, slack, None, AZURE_OPENAI_API_VERSION="v1"))
    done = subprocess.run(
        [sys.executable, "-m", "bot", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("✓ azure:"))
    assert "v1 API (POST http://127.0.0.1:" in line and "/openai/v1/chat/completions)" in line
    assert azure.completions[-1].body["model"] == "gpt-35-turbo"
