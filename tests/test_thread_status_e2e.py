"""End to end: Slack's status line as the working signal in channel threads, the placeholder
where a workspace refuses it (remembered per workspace), with `python -m bot serve`, a real
redis-server and the fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from bot.store import Keys
from bot.thread_status import STATUS, refusal_of
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import TEAM, FakeSlack, SlackFault, message_text
from fakes.slack_requests import envelope, mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, turns, wait_for_turns


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    proc = BotProcess(bot_env(fake_azure, fake_slack, redis_server.url)).wait_ready()
    yield proc
    proc.stop()


def ask(bot: BotProcess, channel: str, team: str, text: str = "hello") -> dict[str, str]:
    event = mention(text, channel=channel)
    response = bot.post_raw(json.dumps(envelope(event, team=team)))
    assert response.status_code == 200
    return event


def texts_of(message: dict[str, object]) -> list[str]:
    return [text for _, text in message["versions"]]  # type: ignore[attr-defined]


def test_status_line_replaces_the_placeholder_and_the_answer_clears_it(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A mention shows "is thinking…" under its thread before anything is posted; the thread
    then holds only the answer, and posting it cleared the status line."""
    before = turns(bot)
    event = ask(bot, "CSTAT1", TEAM)
    (reply,) = final_thread(slack, "CSTAT1", event["ts"])
    wait_for_turns(bot, before, ok=1)
    (status,) = slack.calls_to("assistant.threads.setStatus")
    assert status.args["channel_id"] == "CSTAT1"
    assert status.args["thread_ts"] == event["ts"]
    assert status.args["status"] == STATUS
    first_post = slack.calls_to("chat.postMessage")[0]
    assert status.at < first_post.at
    assert not any("Thinking" in text for text in texts_of(reply))
    assert message_text(reply) == "Answer to: Pat: hello"
    assert slack.statuses[("CSTAT1", event["ts"])] == ""


def test_a_refused_status_falls_back_to_placeholders_once_per_workspace(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_server: RedisServer
) -> None:
    """A workspace where Slack refuses setStatus gets the placeholder; the refusal is kept in
    Redis with a TTL, so its next turn makes no setStatus call; other workspaces keep the
    status line."""
    slack.refuse("assistant.threads.setStatus", "missing_scope")
    before = turns(bot)
    first = ask(bot, "CSTAT2", "TREFUSE01")
    (reply,) = final_thread(slack, "CSTAT2", first["ts"])
    assert texts_of(reply)[0] == ":hourglass_flowing_sand: _Thinking…_"
    assert message_text(reply) == "Answer to: Pat: hello"
    second = ask(bot, "CSTAT2", "TREFUSE01", "again")
    (reply,) = final_thread(slack, "CSTAT2", second["ts"])
    assert texts_of(reply)[0] == ":hourglass_flowing_sand: _Thinking…_"
    wait_for_turns(bot, before, ok=2)
    assert len(slack.calls_to("assistant.threads.setStatus")) == 1
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        key = Keys().status_refused("TREFUSE01")
        assert client.get(key) == "missing_scope"
        assert 0 < client.ttl(key) <= 86_400
    finally:
        client.close()

    slack.refusals.clear()
    other = ask(bot, "CSTAT3", "TOTHER001")
    (reply,) = final_thread(slack, "CSTAT3", other["ts"])
    assert not any("Thinking" in text for text in texts_of(reply))
    assert len(slack.calls_to("assistant.threads.setStatus")) == 2


def test_a_transient_status_error_is_not_remembered(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Slack's own failure on setStatus costs that turn a placeholder, not the workspace its
    status line: the next turn shows the status again."""
    slack.fail("assistant.threads.setStatus", SlackFault(error="internal_error"))
    first = ask(bot, "CSTAT4", "TBLIP0001")
    (reply,) = final_thread(slack, "CSTAT4", first["ts"])
    assert texts_of(reply)[0] == ":hourglass_flowing_sand: _Thinking…_"
    second = ask(bot, "CSTAT4", "TBLIP0001", "again")
    (reply,) = final_thread(slack, "CSTAT4", second["ts"])
    assert not any("Thinking" in text for text in texts_of(reply))
    assert len(slack.calls_to("assistant.threads.setStatus")) == 2


def _error(error: str, status: int = 200) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/assistant.threads.setStatus",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=status,
    )
    return SlackApiError("refused", response)


def test_refusal_of_remembers_only_what_is_about_the_workspace() -> None:
    """Scope and token-type refusals are remembered; rate limits, Slack's failures and errors
    about one channel or token are not."""
    assert refusal_of(_error("missing_scope")) == "missing_scope"
    assert refusal_of(_error("not_allowed_token_type")) == "not_allowed_token_type"
    for passing in ("ratelimited", "internal_error", "channel_not_found", "invalid_auth"):
        assert refusal_of(_error(passing)) is None, passing
    assert refusal_of(_error("ratelimited", 429)) is None
    assert refusal_of(_error("", 503)) is None


@pytest.fixture(scope="module")
def unstreamed_bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    """A bot whose answers are not streamed (a streamed answer's first text needs to know
    whether a placeholder was posted, so it waits for the working signal)."""
    env = bot_env(fake_azure, fake_slack, redis_server.url, BOT_STREAM="false")
    proc = BotProcess(env).wait_ready()
    yield proc
    proc.stop()


def ask_while_the_status_is_slow(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, channel: str, team: str, text: str
) -> tuple[Any, Any, list[Any]]:
    """A first turn makes the status trusted in `team`; then setStatus takes 1 s and `text` is
    asked. Returns Azure's call for it, the status call and the thread's chat.postMessage calls."""
    warm = ask(bot, channel, team, "first")
    final_thread(slack, channel, warm["ts"])
    slack.delay("assistant.threads.setStatus", 1.0)
    event = ask(bot, channel, team, text)
    (reply,) = final_thread(slack, channel, event["ts"])
    assert message_text(reply) == f"Answer to: Pat: {text}"
    status = slack.calls_to("assistant.threads.setStatus")[-1]
    assert status.args["thread_ts"] == event["ts"]
    (call,) = [c for c in azure.completions if text in json.dumps(c.body)]
    posts = [c for c in slack.calls_to("chat.postMessage") if c.args["thread_ts"] == event["ts"]]
    return call, status, posts


def test_where_the_status_works_azure_is_asked_while_it_is_set(
    unstreamed_bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Once the status line worked in a workspace, a turn asks Azure without waiting for
    Slack's answer to setStatus (a round trip less before the model starts), and still posts
    the answer only after the status is up."""
    call, status, posts = ask_while_the_status_is_slow(
        unstreamed_bot, slack, azure, "CSTAT5", "TOVERLAP1", "second"
    )
    assert call.started < status.at + 0.9  # asked while Slack was still setting the status
    assert posts[0].at >= status.at + 1.0  # answered once the status was up


def test_an_answer_that_cannot_be_shown_is_abandoned_and_not_saved(
    unstreamed_bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_server: RedisServer
) -> None:
    """Asked while the status is set, then Slack refuses the status and the placeholder: the
    Azure call is abandoned at once (no waiting for an answer nobody can see) and the turn
    saves nothing."""
    bot = unstreamed_bot
    warm = ask(bot, "CSTAT6", "TOVERLAP2", "first")
    final_thread(slack, "CSTAT6", warm["ts"])
    before = turns(bot)
    azure.first_token_delay = 5.0
    slack.delay("assistant.threads.setStatus", 0.3)
    slack.fail("assistant.threads.setStatus", SlackFault(error="channel_not_found"))
    slack.fail("chat.postMessage", SlackFault(error="channel_not_found"))
    event = ask(bot, "CSTAT6", "TOVERLAP2", "lost")
    wait_for_turns(bot, before, slack_error=1, timeout=3.0)
    assert any("lost" in json.dumps(c.body) for c in azure.completions)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        thread = f"TOVERLAP2:CSTAT6:{event['ts']}"
        assert client.hlen(Keys().messages(thread)) == 0
    finally:
        client.close()


def test_a_streamed_answer_asked_while_the_status_is_set_shows_its_text_after_it(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Streaming, in a workspace where the status worked: Azure is asked at once, and the
    first streamed text (a reply of its own) is posted only once the status is up."""
    call, status, posts = ask_while_the_status_is_slow(
        bot, slack, azure, "CSTAT7", "TOVERLAP3", "streamed"
    )
    assert call.body.get("stream") is True
    assert call.started < status.at + 0.9
    assert len(posts) == 1 and posts[0].at >= status.at + 1.0
