"""Keyless auth (AZURE_OPENAI_AUTH=entra): tokens from azure-identity's DefaultAzureCredential,
through its real App Service managed-identity code path against a local fake token endpoint.

Every test that lets DefaultAzureCredential run sets either IDENTITY_ENDPOINT (managed identity
answered by the fake) or AZURE_TOKEN_CREDENTIALS=dev (developer tools only), so azure-identity
never probes the Azure instance metadata address.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from bot import errors
from bot.app import build_azure
from bot.azure_auth import ENTRA_SCOPE, EntraTokens, tried_credentials
from bot.chat_types import ChatOptions, Message
from bot.settings import load_settings
from fakes.azure import FakeAzure
from fakes.identity import FakeIdentity
from fakes.slack import FakeSlack
from tests.slackbot_harness import bot_env
from tests.test_cli_ask import ROOT, run_ask, this_checkout

MESSAGES: list[Message] = [{"role": "user", "content": "Hello there"}]
AZURE_IDENTITY_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
)


@pytest.fixture(scope="module")
def fake_identity() -> Iterator[FakeIdentity]:
    server = FakeIdentity().start()
    yield server
    server.stop()


@pytest.fixture
def identity(fake_identity: FakeIdentity, monkeypatch: pytest.MonkeyPatch) -> FakeIdentity:
    """The fake managed identity, in this process's environment and with no requests yet."""
    for name in AZURE_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_identity.env().items():
        monkeypatch.setenv(name, value)
    fake_identity.requests.clear()
    return fake_identity


class CountingCredential:
    """An azure-identity-shaped credential that counts token requests and closes."""

    def __init__(self, clock: list[float], lifetime: int = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.requests = 0
        self.open = 0
        self.fail = False

    def __call__(self) -> CountingCredential:
        self.open += 1
        return self

    async def get_token(self, *scopes: str) -> AccessToken:
        assert scopes == (ENTRA_SCOPE,)
        self.requests += 1
        await asyncio.sleep(0)
        if self.fail:
            raise ClientAuthenticationError("ManagedIdentityCredential: timed out")
        return AccessToken(f"token-{self.requests}", int(self.clock[0]) + self.lifetime)

    async def close(self) -> None:
        self.open -= 1


async def test_entra_tokens_are_cached_until_five_minutes_before_expiry() -> None:
    """Many turns, one token request; a new one only when the token nears its expiry; every
    credential used is closed at once."""
    clock = [1_000_000.0]
    credential = CountingCredential(clock)
    tokens = EntraTokens(credential, clock=lambda: clock[0])
    assert {await tokens() for _ in range(50)} == {"token-1"}
    clock[0] += 3600 - 301
    assert await tokens() == "token-1"
    clock[0] += 2
    assert await tokens() == "token-2"
    assert credential.requests == 2 and credential.open == 0


async def test_entra_tokens_one_request_for_concurrent_turns() -> None:
    """Turns that start together wait for one token request, not one each."""
    clock = [0.0]
    credential = CountingCredential(clock)
    tokens = EntraTokens(credential, clock=lambda: clock[0])
    assert set(await asyncio.gather(*(tokens() for _ in range(20)))) == {"token-1"}
    assert credential.requests == 1


async def test_entra_tokens_keep_a_valid_token_when_a_refresh_fails() -> None:
    """A failed early refresh is not felt by the turn, and is not retried on every turn."""
    clock = [0.0]
    credential = CountingCredential(clock)
    tokens = EntraTokens(credential, clock=lambda: clock[0])
    await tokens()
    credential.fail = True
    clock[0] += 3600 - 200
    assert [await tokens() for _ in range(5)] == ["token-1"] * 5
    assert credential.requests == 2
    clock[0] += 200
    with pytest.raises(errors.EntraTokenUnavailable, match="no Entra ID token"):
        await tokens()


def test_tried_credentials_condenses_azure_identitys_message() -> None:
    """The chain's multi-line failure becomes `Name (why), ...`."""
    message = (
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n"
        "\tEnvironmentCredential: EnvironmentCredential authentication unavailable. Environment "
        "variables are not fully configured.\nVisit https://aka.ms/x to troubleshoot this issue.\n"
        "\tAzureCliCredential: Azure CLI not found on path\n"
        "To mitigate this issue, please refer to the troubleshooting guidelines."
    )
    assert tried_credentials(message) == (
        "EnvironmentCredential (authentication unavailable), "
        "AzureCliCredential (Azure CLI not found on path)"
    )


def entra_settings(azure: FakeAzure, **extra: object):  # type: ignore[no-untyped-def]
    return load_settings(
        _env_file=None,
        azure_openai_endpoint=azure.endpoint,
        azure_openai_auth="entra",
        azure_openai_key=None,
        **extra,
    )


async def test_client_entra_uses_the_managed_identity_once(
    azure: FakeAzure, identity: FakeIdentity, transport: httpx.AsyncBaseTransport
) -> None:
    """DefaultAzureCredential finds the App Service identity; three calls, one token request;
    Bearer sent, no api-key."""
    client = build_azure(entra_settings(azure), transport)
    for _ in range(3):
        await client.complete(MESSAGES, ChatOptions())
    (token_request,) = identity.requests
    assert token_request.query == {
        "api-version": "2019-08-01",
        "resource": "https://cognitiveservices.azure.com",
    }
    assert token_request.headers["X-IDENTITY-HEADER"] == identity.secret
    for request in azure.completions:
        assert request.headers["Authorization"] == f"Bearer {identity.token}"
        assert "api-key" not in request.headers


async def test_client_entra_refused_token_names_the_role(
    azure: FakeAzure, identity: FakeIdentity, transport: httpx.AsyncBaseTransport
) -> None:
    """Azure's 401 to the identity's token says which role the identity needs."""
    identity.token = "token-of-another-audience"
    try:
        client = build_azure(entra_settings(azure), transport)
        with pytest.raises(errors.EntraAccessDenied) as info:
            await client.complete(MESSAGES, ChatOptions())
    finally:
        identity.token = "fake-entra-token"
    assert "Cognitive Services OpenAI User" in info.value.user_message
    assert "token-of-another-audience" not in str(info.value) + info.value.user_message


async def test_client_entra_without_any_credential_lists_what_was_tried(
    azure: FakeAzure, transport: httpx.AsyncBaseTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No identity, no service principal, no `az login`: one message naming each credential
    azure-identity tried and why it could not, and no request to Azure."""
    for name in AZURE_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "dev")
    client = build_azure(entra_settings(azure), transport)
    with pytest.raises(errors.EntraTokenUnavailable) as info:
        await client.complete(MESSAGES, ChatOptions())
    message = info.value.user_message
    assert message.startswith("The bot could not get an Entra ID token for Azure OpenAI")
    assert "AzureCliCredential (Azure CLI not found on path)" in message
    assert "az login" in message and "\n" not in message
    assert azure.completions == []


def test_settings_entra_needs_no_key() -> None:
    """With AZURE_OPENAI_AUTH=entra no key is required; without it, the missing key names both
    ways to fix it."""
    settings = load_settings(
        _env_file=None,
        azure_openai_endpoint="https://r.openai.azure.com",
        azure_openai_auth="Entra",
    )
    assert settings.azure_openai_auth == "entra" and settings.azure_openai_key is None
    with pytest.raises(errors.ConfigError, match="AZURE_OPENAI_AUTH=entra"):
        load_settings(
            _env_file=None,
            azure_openai_endpoint="https://r.openai.azure.com",
            azure_openai_key=None,
        )


def identity_env(identity: FakeIdentity) -> dict[str, str]:
    return {"AZURE_OPENAI_AUTH": "entra", "AZURE_OPENAI_KEY": "", **identity.env()}


def test_ask_with_entra_managed_identity(
    azure: FakeAzure, fake_identity: FakeIdentity, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """`ask` with AZURE_OPENAI_AUTH=entra and no key answers with the identity's token."""
    fake_identity.requests.clear()
    out = run_ask(azure, "hi", env=identity_env(fake_identity), cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "Answer to: hi"
    assert azure.completions[-1].headers["Authorization"] == f"Bearer {fake_identity.token}"
    assert len(fake_identity.requests) == 1
    assert "Unclosed" not in out.stderr


def test_ask_with_entra_and_no_credential_prints_one_message(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No credential anywhere: exit 1 with one error line listing what was tried."""
    env = {"AZURE_OPENAI_AUTH": "entra", "AZURE_OPENAI_KEY": "", "AZURE_TOKEN_CREDENTIALS": "dev"}
    out = run_ask(azure, "hi", env=env, cwd=str(tmp_path))
    assert out.returncode == 1
    errors_printed = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors_printed) == 1 and "Tried: " in errors_printed[0]
    assert "AzureCliCredential" in errors_printed[0]
    others = [ln for ln in out.stderr.splitlines() if ln not in errors_printed]
    assert all("REDIS_URL is not set" in ln for ln in others), out.stderr


def test_doctor_checks_the_entra_token(
    azure: FakeAzure, slack: FakeSlack, fake_identity: FakeIdentity
) -> None:
    """doctor's azure line passes with the identity's token, and says so."""
    env = this_checkout(bot_env(azure, slack, None, **identity_env(fake_identity)))
    done = subprocess.run(
        [sys.executable, "-m", "bot", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Entra ID token: deployment 'gpt-35-turbo' answers" in done.stdout
