"""OAuth distribution mode's settings: when it is on, what it requires, the redirect URL, the
manifest and the doctor's checks."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.manifest import bot_scopes, build_manifest
from bot.oauth import install_scopes, redirect_uri
from bot.oauth_checks import check_oauth
from bot.settings import Settings, load_settings

BASE = {"azure_openai_endpoint": "https://res.openai.azure.com/", "azure_openai_key": "k-1"}
OAUTH = {
    "slack_client_id": "1111.2222",
    "slack_client_secret": "s3cret-value",
    "slack_signing_secret": "sig",
    "redis_url": "redis://r:6379/0",
}


def make(**kw: object) -> Settings:
    return load_settings(_env_file=None, **{**BASE, **kw})


def test_oauth_mode_needs_client_id_and_secret_and_no_bot_token() -> None:
    """OAuth mode is on with the client id and secret and without SLACK_BOT_TOKEN; a bot token
    keeps the single-workspace mode, and one half of the credentials is not enough."""
    assert make(**OAUTH).oauth_mode is True
    assert make(**OAUTH, slack_bot_token="xoxb-1").oauth_mode is False
    assert make(**{**OAUTH, "slack_client_secret": ""}).oauth_mode is False
    assert make().oauth_mode is False


def test_oauth_mode_serves_without_a_bot_token_but_socket_mode_does_not() -> None:
    """`serve` in OAuth mode needs no SLACK_BOT_TOKEN; Socket Mode always serves one workspace,
    and a missing token names both ways out, listed with the other problems at first run."""
    assert load_settings(_env_file=None, slack="http", **BASE, **OAUTH).oauth_mode
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        load_settings(_env_file=None, slack="socket", slack_app_token="xapp-1", **BASE, **OAUTH)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, slack="http", slack_client_id="1.2", **BASE)
    assert "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET" in str(info.value)
    assert "SLACK_SIGNING_SECRET" in str(info.value)


def test_redirect_url_follows_the_public_url_unless_given() -> None:
    """The redirect URL is SLACK_REDIRECT_URI, else BOT_PUBLIC_URL + /slack/oauth_redirect,
    else the manifest's --url; a public URL must be https (http on loopback only)."""
    public = make(**OAUTH, bot_public_url="https://bot.example.com/")
    assert redirect_uri(public) == "https://bot.example.com/slack/oauth_redirect"
    assert redirect_uri(public, "https://x") == "https://bot.example.com/slack/oauth_redirect"
    explicit = make(**OAUTH, bot_public_url="https://a.example", slack_redirect_uri="https://b/cb")
    assert redirect_uri(explicit) == "https://b/cb"
    assert (
        redirect_uri(make(**OAUTH), "https://x.example") == "https://x.example/slack/oauth_redirect"
    )
    assert redirect_uri(make(**OAUTH)) is None
    with pytest.raises(ConfigError, match="BOT_PUBLIC_URL"):
        make(**OAUTH, bot_public_url="http://bot.example.com")
    assert make(**OAUTH, bot_public_url="http://127.0.0.1:3000").bot_public_url


def test_scopes_default_to_the_manifests() -> None:
    """Without SLACK_SCOPES the install asks for the manifest's bot scopes; SLACK_SCOPES is a
    comma-separated list."""
    assert install_scopes(make(**OAUTH)) == bot_scopes()
    assert install_scopes(make(**OAUTH, slack_scopes="chat:write, commands")) == [
        "chat:write",
        "commands",
    ]


def test_manifest_lists_redirect_url_only_for_http_oauth() -> None:
    """The manifest carries `redirect_urls` when given one (OAuth, HTTP), never in Socket Mode,
    and always the uninstall events and the forget shortcut."""
    doc = build_manifest(
        command="/gpt", url="https://h", socket_mode=False, redirect_url="https://h/cb"
    )
    assert doc["oauth_config"]["redirect_urls"] == ["https://h/cb"]
    events = doc["settings"]["event_subscriptions"]["bot_events"]
    assert "app_uninstalled" in events and "tokens_revoked" in events
    assert doc["features"]["shortcuts"][0]["callback_id"] == "forget_thread"
    socket = build_manifest(command="/gpt", url=None, socket_mode=True, redirect_url="https://h/cb")
    assert "redirect_urls" not in socket["oauth_config"]


def test_doctor_checks_oauth_settings_and_says_how_to_fix_them() -> None:
    """A working OAuth setup is all ✓; a malformed client id, no public URL, missing scopes and
    no REDIS_URL each give a ✗ with the fix."""
    good = check_oauth(make(**OAUTH, bot_public_url="https://bot.example.com"))
    assert all(c.ok for c in good), [c.line() for c in good]
    assert any("https://bot.example.com/slack/oauth_redirect" in c.detail for c in good)
    bad = check_oauth(
        make(**{**OAUTH, "slack_client_id": "abc", "redis_url": ""}, slack_scopes="chat:write")
    )
    lines = "\n".join(c.line() for c in bad)
    assert [c.name for c in bad if not c.ok] == [
        "slack oauth",
        "oauth redirect",
        "oauth scopes",
        "oauth store",
    ]
    assert "Client ID" in lines and "BOT_PUBLIC_URL" in lines and "REDIS_URL" in lines
    assert "app_mentions:read" in lines
    assert "s3cret-value" not in lines
