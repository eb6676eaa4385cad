"""End to end: 👍/👎 on answers — the buttons, signed `block_actions` clicks over HTTP and Socket
Mode, the votes in Redis, the private acknowledgement, /metrics and `/gpt usage`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.feedback import Click, FeedbackReport, feedback_block, feedback_lines
from bot.store import Keys
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import TEAM, FakeSlack, context_text
from fakes.slack_requests import click_feedback, envelope, interactivity_form, mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, wait_until
from tests.test_commands_e2e import command


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    env = bot_env(
        fake_azure,
        fake_slack,
        redis_server.url,
        BOT_MAX_TOKENS="16000",
        BOT_CONTEXT_WINDOW="128000",
    )
    proc = BotProcess(env).wait_ready()
    yield proc
    proc.stop()


def feedback_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message.get("blocks") or [] if b.get("type") == "context_actions"]


def answered(bot: BotProcess, slack: FakeSlack, channel: str) -> dict[str, Any]:
    event = mention("rate me", channel=channel)
    bot.send_event(event)
    (reply,) = final_thread(slack, channel, event["ts"])
    return reply


def click(bot: BotProcess, payload: dict[str, Any]) -> None:
    response = bot.post_raw(
        interactivity_form(payload), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200, response.text


def votes(redis_url: str, answer: dict[str, Any]) -> dict[str, str]:
    day = dt.datetime.fromtimestamp(float(answer["ts"]), dt.UTC).date()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(Keys().feedback_day(TEAM, day))  # type: ignore[return-value]
    finally:
        client.close()


def test_only_the_last_message_of_an_answer_carries_the_buttons(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """An answer split over two messages: the last one ends with usage, then 👍/👎 whose values
    name the deployment; the first has neither."""
    azure.answer = lambda m: "\n\n".join(f"paragraph {i} " + "x" * 900 for i in range(14))
    event = mention("a long one", channel="CFB1")
    bot.send_event(event)
    first, last = final_thread(slack, "CFB1", event["ts"], count=2)
    assert feedback_blocks(first) == [] and context_text(first) == ""
    (block,) = feedback_blocks(last)
    assert last["blocks"][-1] == block and "total " in context_text(last)
    (buttons,) = block["elements"]
    assert buttons["type"] == "feedback_buttons"
    assert buttons["positive_button"]["value"] == "up:gpt-35-turbo"
    assert buttons["negative_button"]["value"] == "down:gpt-35-turbo"


def test_a_vote_is_recorded_once_per_person_acknowledged_to_them_and_counted(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """👍 then 👎 from one person is one vote (the changed one), the same click twice counts
    once, a second person adds theirs; each click gets an ephemeral reply to its clicker in the
    thread, /metrics counts recorded votes, and `/gpt usage` shows 👍 n · 👎 m."""
    answer = answered(bot, slack, "CFB2")
    metric = bot.counter("slackgpt_feedback_total")
    clicks = [("UVOTER1", True), ("UVOTER1", False), ("UVOTER1", False), ("UVOTER2", True)]
    for n, (user, positive) in enumerate(clicks, start=1):
        click(bot, click_feedback(answer, user=user, positive=positive))
        wait_until(lambda n=n: len(slack.calls_to("chat.postEphemeral")) == n)
    acks = slack.calls_to("chat.postEphemeral")
    assert [(c.args["user"], c.args["channel"], c.args["thread_ts"]) for c in acks] == [
        (user, "CFB2", answer["thread_ts"]) for user, _ in clicks
    ]
    assert [c.args["text"] for c in acks] == [
        "Thanks! Your 👍 on this answer is recorded.",
        "Thanks! Your vote on this answer is now 👎.",
        "Your 👎 on this answer was already recorded.",
        "Thanks! Your 👍 on this answer is recorded.",
    ]
    assert bot.counter("slackgpt_feedback_total") - metric == {"up": 2, "down": 1}
    stored = votes(redis_url, answer)
    assert stored[f"v:CFB2:{answer['ts']}:UVOTER1"] == "down"
    assert stored[f"v:CFB2:{answer['ts']}:UVOTER2"] == "up"
    assert stored["n:CFB2:gpt-35-turbo:up"] == "1"
    assert stored["n:CFB2:gpt-35-turbo:down"] == "1"
    usage = command(bot, "usage", channel="CFB2")
    assert "• feedback here: `gpt-35-turbo` 👍 1 · 👎 1" in usage
    assert "• feedback in the workspace: `gpt-35-turbo` 👍 1 · 👎 1" in usage
    assert slack.thread("CFB2", answer["thread_ts"]) == [answer]  # nothing posted for all to see


def test_a_click_with_a_bad_signature_is_refused_and_not_recorded(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """An unsigned block_actions request gets 401; no vote, no acknowledgement."""
    answer = answered(bot, slack, "CFB3")
    body = interactivity_form(click_feedback(answer, user="UFORGER"))
    response = bot.post_raw(
        body, content_type="application/x-www-form-urlencoded", signature="v0=" + "0" * 64
    )
    assert response.status_code == 401
    click(bot, click_feedback(answer, user="UHONEST"))  # a signed click after it is taken
    wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    (ack,) = slack.calls_to("chat.postEphemeral")
    assert ack.args["user"] == "UHONEST"
    assert not any(":UFORGER" in field for field in votes(redis_url, answer))


def test_a_click_over_socket_mode_is_recorded(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """In Socket Mode the click arrives as an `interactive` envelope: acked, recorded,
    acknowledged to the clicker."""
    env = bot_env(azure, slack, redis_url, SLACK_APP_TOKEN=slack.app_token)
    env.pop("SLACK_SIGNING_SECRET")
    bot = BotProcess(env, args=("socket",))
    try:
        slack.wait_for_socket(timeout=20)
        event = mention("over the socket", channel="CFB4")
        slack.push_envelope(envelope(event))
        (answer,) = final_thread(slack, "CFB4", event["ts"])
        envelope_id = slack.push_envelope(
            click_feedback(answer, user="USOCKET1", positive=False), kind="interactive"
        )
        wait_until(lambda: slack.calls_to("chat.postEphemeral"))
        assert any(ack["envelope_id"] == envelope_id for ack in slack.socket_acks)
        assert votes(redis_url, answer)[f"v:CFB4:{answer['ts']}:USOCKET1"] == "down"
    finally:
        assert bot.stop() == 0


def test_feedback_lines_show_each_deployment_and_skip_empty_ones() -> None:
    """Deployments with votes are listed in name order; no votes at all says so."""
    report = FeedbackReport(
        channel={"gpt-4o": Counter(up=2)},
        workspace={"gpt-4o": Counter(up=2, down=1), "o3": Counter(down=4), "old": Counter()},
    )
    assert feedback_lines(report) == [
        "• feedback here: `gpt-4o` 👍 2 · 👎 0",
        "• feedback in the workspace: `gpt-4o` 👍 2 · 👎 1, `o3` 👍 0 · 👎 4",
    ]
    assert feedback_lines(FeedbackReport()) == ["• feedback on answers: none yet"]


def test_a_click_payload_is_read_or_refused_whole() -> None:
    """A click names the team, channel, answer, thread, voter, vote and deployment; a payload
    without a known vote, a voter or a readable action is not a vote."""
    answer: dict[str, Any] = {"channel": "C1", "ts": "1.000002", "thread_ts": "1.000001"}
    answer["blocks"] = [feedback_block("gpt-4o")]
    good = click_feedback(answer, positive=False)
    assert Click.from_payload(good) == Click(
        TEAM, "C1", "1.000002", "1.000001", "U0000USER", "down", "gpt-4o"
    )
    sideways = {**good, "actions": [{**good["actions"][0], "value": "sideways:gpt-4o"}]}
    anonymous = {**good, "user": {}}
    junk = {**good, "actions": [["not", "an", "action"]]}
    for payload in (sideways, anonymous, junk, {}):
        assert Click.from_payload(payload) is None
