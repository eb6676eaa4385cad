"""End to end: the App Home tab — opened by `app_home_opened`, published with `views.publish` —
with the viewer's usage and quota, the workspace defaults, and the top channels for admins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.app_home import reasoning_text
from bot.azure_deployments import DeploymentFacts
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import BOT_USER, FakeSlack
from fakes.slack_requests import app_home_opened, mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, wait_until
from tests.test_commands_e2e import command

ADMIN = "UADMIN001"


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    env = bot_env(fake_azure, fake_slack, redis_server.url, BOT_ADMIN_USER_IDS=ADMIN)
    proc = BotProcess(env).wait_ready()
    yield proc
    proc.stop()


def home_of(bot: BotProcess, slack: FakeSlack, user: str) -> str:
    """Open `user`'s Home tab and return its text once published."""
    slack.homes.pop(user, None)
    assert bot.send_event(app_home_opened(user)).status_code == 200
    view: dict[str, Any] = wait_until(lambda: slack.homes.get(user))
    assert view["type"] == "home"
    texts = [str((b.get("text") or {}).get("text", "")) for b in view["blocks"]]
    return "\n".join(texts)


def answer(bot: BotProcess, slack: FakeSlack, channel: str, user: str) -> None:
    event = mention("count this", channel=channel, user=user)
    bot.send_event(event)
    final_thread(slack, channel, event["ts"])


def test_home_shows_usage_quota_and_the_reasoning_default(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """A user's Home: how to use the bot, their tokens today and over 7 days with the quota left,
    and the workspace's default deployment, known as a reasoning one once it has answered."""
    assert "→ 50000" in command(bot, "set-default quota 50000", channel="CHOME1")
    assert "→ gpt-5-mini" in command(bot, "set-default deployment gpt-5-mini", channel="CHOME1")
    text = home_of(bot, slack, "UHOME0001")
    assert f"mention me, e.g. <@{BOT_USER}>" in text and "/gpt help" in text
    assert "• today: 0 tokens" in text
    assert "reasoning or not: not known yet" in text
    answer(bot, slack, "CHOME1", "UHOME0001")
    used = azure.completions[-1]
    assert used.body.get("max_completion_tokens")  # sent as to a reasoning deployment
    text = home_of(bot, slack, "UHOME0001")
    tokens = int(text.split("• today: ")[1].split(" tokens")[0].replace(",", ""))
    assert tokens > 0
    assert f"• last 7 days: {tokens:,} tokens" in text
    assert f"{50_000 - tokens:,} of 50,000 tokens left today" in text
    assert "deployment `gpt-5-mini`: a reasoning model (gpt-5-mini-2025-08-07)" in text
    assert "Top channels" not in text


def test_admins_see_the_top_channels_by_tokens(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """An admin's Home lists the channels by tokens over 7 days, most first; the no-quota
    workspace says so."""
    answer(bot, slack, "CBUSY", "UHOME0002")
    answer(bot, slack, "CBUSY", "UHOME0002")
    answer(bot, slack, "CQUIET", "UHOME0002")
    text = home_of(bot, slack, ADMIN)
    top = text.split("*Top channels, last 7 days* (admins only)\n")[1].splitlines()
    assert [line.split(">")[0] for line in top] == ["• <#CBUSY", "• <#CQUIET"]
    assert "quota: no daily quota" in text


def test_the_messages_tab_publishes_nothing(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Opening the Messages tab publishes no Home view; opening Home afterwards does."""
    bot.send_event(app_home_opened("UHOME0003", tab="messages"))
    home_of(bot, slack, "UHOME0004")
    assert [c.args["user_id"] for c in slack.calls_to("views.publish")] == ["UHOME0004"]


def test_reasoning_text_says_what_is_known_of_a_deployment() -> None:
    """Unknown until Azure answered or refused; then reasoning or chat, with the model."""
    assert "not known yet" in reasoning_text(DeploymentFacts())
    assert reasoning_text(DeploymentFacts(model="gpt-4o-2024-11-20")) == (
        "a chat model (not reasoning) (gpt-4o-2024-11-20)"
    )
    assert reasoning_text(DeploymentFacts(reasoning=True)) == "a reasoning model"
    assert reasoning_text(DeploymentFacts(reasoning=False, model="o3")) == (
        "a chat model (not reasoning) (o3)"
    )
