"""End to end in Slack: a reasoning deployment (gpt-5-mini) on the v1 API works with no
configuration — the first refusal is never seen, what was learned is shared by replicas through
Redis, `reasoning_effort` is sent, reasoning tokens show, and an all-reasoning answer is
explained rather than posted empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, context_text, message_text
from fakes.slack_requests import mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, stored_thread
from tests.test_commands_e2e import ADMIN, command

TEAM = "T0000TEAM"


@pytest.fixture(scope="module")
def replicas(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[tuple[BotProcess, BotProcess]]:
    env = bot_env(
        fake_azure,
        fake_slack,
        redis_server.url,
        AZURE_OPENAI_API_VERSION="v1",
        AZURE_OPENAI_DEPLOYMENT="gpt-5-mini",
        BOT_ADMIN_USER_IDS=ADMIN,
        BOT_STREAM="false",
    )
    a, b = BotProcess(env).wait_ready(), BotProcess(env).wait_ready()
    yield a, b
    a.stop(), b.stop()


def ask(bot: BotProcess, slack: FakeSlack, text: str, channel: str) -> dict:  # type: ignore[type-arg]
    event = mention(text, channel=channel)
    bot.send_event(event)
    (reply,) = final_thread(slack, channel, event["ts"])
    return reply  # type: ignore[no-any-return]


def test_reasoning_deployment_answers_first_time_and_replicas_know_it(
    replicas: tuple[BotProcess, BotProcess], slack: FakeSlack, azure: FakeAzure
) -> None:
    """The first turn's `max_tokens` refusal is retried at once with `max_completion_tokens`,
    unseen; the usage line shows the reasoning tokens; another replica sends the right set
    first."""
    a, b = replicas
    reply = ask(a, slack, "plan the migration", "CRSN1")
    assert message_text(reply) == "Answer to: Pat: plan the migration"
    usage = context_text(reply)
    assert "(reasoning 200)" in usage and "gpt-5-mini" in usage
    first, second = azure.completions
    assert first.path == second.path == "/openai/v1/chat/completions"
    assert "max_tokens" in first.body and "max_completion_tokens" not in first.body
    assert second.body["max_completion_tokens"] == 1000 and "max_tokens" not in second.body
    assert second.body["model"] == "gpt-5-mini"
    ask(b, slack, "and the rollback?", "CRSN2")
    (third,) = azure.completions[2:]
    assert "max_completion_tokens" in third.body and "max_tokens" not in third.body


def test_reasoning_effort_is_sent_and_temperature_is_not(
    replicas: tuple[BotProcess, BotProcess], slack: FakeSlack, azure: FakeAzure
) -> None:
    """`/gpt set reasoning_effort low` reaches Azure; a channel temperature is left out for a
    reasoning deployment, which would refuse it."""
    a, _ = replicas
    assert command(a, "set reasoning_effort low", channel="CRSN3").startswith("Set")
    assert command(a, "set temperature 0.2", channel="CRSN3").startswith("Set")
    ask(a, slack, "think briefly", "CRSN3")
    body = azure.completions[-1].body
    assert body["reasoning_effort"] == "low"
    assert "temperature" not in body


def test_budget_spent_reasoning_is_explained_and_nothing_saved(
    replicas: tuple[BotProcess, BotProcess],
    slack: FakeSlack,
    azure: FakeAzure,
    redis_server: RedisServer,
) -> None:
    """With max_tokens below what the model spends thinking, the thread says to raise it; no
    empty message, and the question is not saved, so asking again works."""
    a, _ = replicas
    command(a, "set max_tokens 100", channel="CRSN4")
    event = mention("a hard question", channel="CRSN4")
    a.send_event(event)
    (reply,) = final_thread(slack, "CRSN4", event["ts"])
    assert "spent its whole token budget reasoning" in message_text(reply)
    assert "/gpt set max_tokens" in message_text(reply)
    assert stored_thread(redis_server.url, f"{TEAM}:CRSN4:{event['ts']}") == []
