"""Settings: names from the contract, actionable errors, endpoint normalisation, secrets hidden."""

from __future__ import annotations

import re

import pytest

from bot.errors import ConfigError
from bot.settings import DEFAULT_API_VERSION, load_settings

BASE = {"azure_openai_endpoint": "https://res.openai.azure.com/", "azure_openai_key": "k-secret-1"}


def make(**kw: object):  # type: ignore[no-untyped-def]
    return load_settings(_env_file=None, **{**BASE, **kw})


def test_settings_trailing_slash_is_removed() -> None:
    """The quickstart's endpoint ends in '/', which must not produce '//openai'."""
    assert make().azure_openai_endpoint == "https://res.openai.azure.com"


def test_settings_defaults_follow_the_contract() -> None:
    """Defaults: gpt-35-turbo, latest GA api-version, /gpt, Slack's public API."""
    s = make()
    assert s.azure_openai_deployment == "gpt-35-turbo"
    assert s.azure_openai_api_version == DEFAULT_API_VERSION == "2024-10-21"
    assert s.bot_slash_command == "/gpt"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.bot_admin_user_ids == ()


def test_settings_missing_endpoint_says_where_to_find_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing AZURE_OPENAI_ENDPOINT names the portal page that shows it."""
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, azure_openai_key="k")
    assert "AZURE_OPENAI_ENDPOINT" in str(info.value)
    assert "Keys and Endpoint" in str(info.value)


def test_settings_missing_key_says_where_to_find_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing AZURE_OPENAI_KEY names KEY1/KEY2 and the portal page."""
    monkeypatch.delenv("AZURE_OPENAI_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, azure_openai_endpoint="https://res.openai.azure.com")
    assert "AZURE_OPENAI_KEY" in str(info.value)
    assert "KEY1" in str(info.value)


@pytest.mark.parametrize("url", ["http://res.openai.azure.com", "http://10.0.0.5:8080"])
def test_settings_plain_http_is_refused_off_loopback(url: str) -> None:
    """An http:// endpoint would send the key in clear text, so only loopback may use it."""
    with pytest.raises(ConfigError, match="https"):
        make(azure_openai_endpoint=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9999/", "http://localhost:1234"])
def test_settings_plain_http_is_allowed_on_loopback(url: str) -> None:
    """A local fake server may use http."""
    assert make(azure_openai_endpoint=url).azure_openai_endpoint == url.rstrip("/")


def test_settings_endpoint_with_openai_path_is_refused() -> None:
    """Pasting '.../openai/deployments/...' as the endpoint would 404; say so up front."""
    with pytest.raises(ConfigError, match="without '/openai"):
        make(azure_openai_endpoint="https://res.openai.azure.com/openai/deployments/gpt-4o")


def test_settings_admin_ids_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_ADMIN_USER_IDS is a comma-separated list, spaces tolerated."""
    monkeypatch.setenv("BOT_ADMIN_USER_IDS", "U1, U2 ,,U3")
    assert make().bot_admin_user_ids == ("U1", "U2", "U3")


def test_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract's environment names are the ones read."""
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://env.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_KEY", "env-key")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "my-gpt4o")
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2023-05-15")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:1/api")
    s = load_settings(_env_file=None)
    assert s.azure_openai_endpoint == "https://env.openai.azure.com"
    assert s.azure_openai_deployment == "my-gpt4o"
    assert s.azure_openai_api_version == "2023-05-15"
    assert s.slack_api_url == "http://127.0.0.1:1/api/"


def test_settings_secrets_do_not_show_in_repr_or_errors() -> None:
    """Neither repr(settings) nor a validation error echoes a secret."""
    s = make(slack_bot_token="xoxb-very-secret", slack_signing_secret="sign-very-secret")
    text = repr(s) + str(s.model_dump())
    for secret in ("k-secret-1", "xoxb-very-secret", "sign-very-secret"):
        assert secret not in text
    with pytest.raises(ConfigError) as info:
        make(azure_openai_key="k-secret-1", bot_temperature="hot")
    assert "k-secret-1" not in str(info.value)
    assert "BOT_TEMPERATURE" in str(info.value)


def test_settings_require_slack_names_missing_tokens() -> None:
    """HTTP mode needs the bot token and signing secret; Socket Mode the app token."""
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        make(slack="http")
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        make(slack="socket")


def test_settings_reasoning_effort_blank_is_unset() -> None:
    """`BOT_REASONING_EFFORT=` means unset (Azure's default), like the other optional values."""
    assert make().bot_reasoning_effort is None
    assert make(bot_reasoning_effort=" ").bot_reasoning_effort is None
    assert make(bot_reasoning_effort="high").bot_reasoning_effort == "high"


def test_settings_reasoning_effort_names_the_valid_values() -> None:
    """An unknown effort fails at start, naming the variable and the four valid values."""
    with pytest.raises(ConfigError) as info:
        make(bot_reasoning_effort="max")
    assert "BOT_REASONING_EFFORT" in str(info.value)
    assert "'minimal', 'low', 'medium' or 'high'" in str(info.value)


def test_settings_suggested_prompts_are_title_message_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BOT_SUGGESTED_PROMPTS: `;`-separated `title|message` items (a bare item is both); more
    than four is refused with the reason; empty means none; unset gives the defaults."""
    monkeypatch.delenv("BOT_SUGGESTED_PROMPTS", raising=False)
    assert len(make().bot_suggested_prompts) == 3
    monkeypatch.setenv("BOT_SUGGESTED_PROMPTS", "Recap|Recap this channel; Say hi ;")
    assert make().bot_suggested_prompts == (("Recap", "Recap this channel"), ("Say hi", "Say hi"))
    monkeypatch.setenv("BOT_SUGGESTED_PROMPTS", "")
    assert make().bot_suggested_prompts == ()
    monkeypatch.setenv("BOT_SUGGESTED_PROMPTS", "a;b;c;d;e")
    with pytest.raises(ConfigError, match="at most 4"):
        make()


def test_env_example_names_every_setting() -> None:
    """`.env.example` has a line (set or commented out) for every setting the bot reads."""
    from pathlib import Path

    from bot.settings import Settings

    text = (Path(__file__).parent.parent / ".env.example").read_text()
    named = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in named]
    assert missing == []
