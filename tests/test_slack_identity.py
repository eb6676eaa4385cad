"""`BotIdentity`: the bot's user id from `auth.test` at start, against the fake Slack Web API."""

from __future__ import annotations

import subprocess
import sys

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.slack_identity import BotIdentity
from fakes.azure import FakeAzure
from fakes.server_thread import free_port
from fakes.slack import BOT_ID, BOT_USER, TEAM, FakeSlack
from tests.slackbot_harness import bot_env


async def test_identity_learns_the_bot_user_from_auth_test(slack: FakeSlack) -> None:
    """One `auth.test` call gives the bot's user id, bot id and team."""
    identity = BotIdentity(AsyncWebClient(token=slack.token, base_url=slack.api_url))
    await identity.learn()
    assert (identity.user_id, identity.bot_id, identity.team_id) == (BOT_USER, BOT_ID, TEAM)
    assert await identity.bot_user_id() == BOT_USER
    assert len(slack.calls_to("auth.test")) == 1


async def test_identity_refused_token_is_a_configuration_error(slack: FakeSlack) -> None:
    """A token Slack refuses stops the start with the fix, never echoing the token."""
    identity = BotIdentity(AsyncWebClient(token="xoxb-wrong-9f3e", base_url=slack.api_url))
    with pytest.raises(ConfigError) as caught:
        await identity.learn()
    assert "invalid_auth" in str(caught.value)
    assert "OAuth & Permissions" in str(caught.value)
    assert "xoxb-wrong-9f3e" not in str(caught.value)


async def test_identity_unreachable_slack_is_asked_again_later(slack: FakeSlack) -> None:
    """Slack down at start: no id yet and no crash; once the retry time has passed, the next
    event that needs the id asks again and gets it."""
    now = [0.0]
    dead = AsyncWebClient(token=slack.token, base_url=f"http://127.0.0.1:{free_port()}/api/")
    identity = BotIdentity(dead, retry_seconds=5, clock=lambda: now[0])
    await identity.learn()
    assert identity.user_id is None
    identity._client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
    now[0] = 1.0
    assert await identity.bot_user_id() is None  # too soon: no call
    assert slack.calls_to("auth.test") == []
    now[0] = 6.0
    assert await identity.bot_user_id() == BOT_USER


def test_serve_with_a_refused_token_exits_with_the_fix(azure: FakeAzure, slack: FakeSlack) -> None:
    """`python -m bot serve` with a token Slack refuses exits 2 and says what to do."""
    env = bot_env(azure, slack, None, SLACK_BOT_TOKEN="xoxb-revoked-1a2b")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in done.stderr
    assert "xoxb-revoked-1a2b" not in done.stderr + done.stdout
