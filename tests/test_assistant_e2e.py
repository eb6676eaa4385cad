"""End to end: the assistant pane — greeting and suggested prompts, questions answered as thread
turns with the status line and a title, and the channel the user looks at read on request — with
`python -m bot serve`, a real redis-server and the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from slack_sdk.web.async_client import AsyncWebClient

from bot.assistant import channel_asked_about, title_of
from bot.channel_digest import ChannelDigest
from bot.conversation import estimate_tokens
from bot.slack_people import People
from bot.store import Keys
from bot.thread_status import STATUS
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import TEAM, FakeSlack, context_text, message_text
from fakes.slack_requests import assistant_thread, message, new_ts
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    turns,
    wait_for_turns,
    wait_until,
)

PROMPTS = "Summarize|Summarize this channel, please; Plan my day|What should I do first today?"
PEOPLE = {"U1": "Alice", "U2": "Bob"}


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    env = bot_env(fake_azure, fake_slack, redis_server.url, BOT_SUGGESTED_PROMPTS=PROMPTS)
    proc = BotProcess(env).wait_ready()
    yield proc
    proc.stop()


@pytest.fixture
def people(slack: FakeSlack) -> FakeSlack:
    for user, name in PEOPLE.items():
        slack.users[user] = {"id": user, "name": name.lower(), "profile": {"display_name": name}}
    return slack


def open_pane(
    bot: BotProcess, slack: FakeSlack, dm: str, looking_at: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The user opens the pane: Slack sends assistant_thread_started; returns the pane's
    thread_ts and its greeting once posted."""
    thread_ts = new_ts()
    event = assistant_thread(
        "assistant_thread_started", channel=dm, thread_ts=thread_ts, looking_at=looking_at
    )
    assert bot.send_event(event).status_code == 200
    (greeting,) = final_thread(slack, dm, thread_ts)
    return thread_ts, greeting


def ask_in_pane(
    bot: BotProcess, slack: FakeSlack, dm: str, thread_ts: str, text: str, count: int
) -> list[dict[str, Any]]:
    """The user writes in the pane (a message.im reply in its thread); returns the bot's
    messages in the thread once `count` are final."""
    ts = slack.post_as("U0000USER", dm, text, thread_ts=thread_ts)
    event = message(text, channel=dm, ts=ts, thread_ts=thread_ts, channel_type="im")
    assert bot.send_event(event).status_code == 200
    return final_thread(slack, dm, thread_ts, count=count)


def system_prompt(azure: FakeAzure) -> str:
    return str(azure.completions[-1].body["messages"][0]["content"])


def test_opening_the_pane_greets_once_and_offers_the_configured_prompts(
    bot: BotProcess, slack: FakeSlack
) -> None:
    """assistant_thread_started → a greeting in the pane's thread and BOT_SUGGESTED_PROMPTS as
    its suggested prompts; Slack's redelivery of the event greets no one twice."""
    thread_ts = new_ts()
    event = assistant_thread(
        "assistant_thread_started", channel="DPANE1", thread_ts=thread_ts, looking_at="CGEN"
    )
    assert bot.send_event(event, event_id="EvPANE0001").status_code == 200
    (greeting,) = final_thread(slack, "DPANE1", thread_ts)
    assert "Hi <@U0000USER>" in message_text(greeting)
    assert greeting["metadata"]["event_type"] == "slackgpt_notice"
    # The prompts are set right after the greeting is posted: wait for them, do not race them.
    assert wait_until(lambda: slack.suggested.get(("DPANE1", thread_ts))) == [
        {"title": "Summarize", "message": "Summarize this channel, please"},
        {"title": "Plan my day", "message": "What should I do first today?"},
    ]
    skipped = bot.counter("slackgpt_dedup_hits_total")["event"]
    retry = bot.send_event(event, event_id="EvPANE0001", retry=(1, "http_timeout"))
    assert retry.status_code == 200
    wait_until(lambda: bot.counter("slackgpt_dedup_hits_total")["event"] == skipped + 1)
    assert len(slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1


def pane_record(redis_url: str, dm: str, thread_ts: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(Keys().assistant_thread(f"{TEAM}:{dm}:{thread_ts}"))  # type: ignore[return-value]
    finally:
        client.close()


def test_questions_in_the_pane_are_thread_turns_with_status_title_and_usage(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """The pane's first question: status line while Azure works, the thread titled after it,
    an answer with usage and 👍/👎; the second sees the first turn and leaves the title alone."""
    thread_ts, _ = open_pane(bot, slack, "DPANE2")
    before = turns(bot)
    msgs = ask_in_pane(bot, slack, "DPANE2", thread_ts, "How do I rotate a key?", count=2)
    answer = msgs[-1]
    assert message_text(answer) == "Answer to: Pat: How do I rotate a key?"
    assert "total " in context_text(answer)
    assert any(b["type"] == "context_actions" for b in answer["blocks"])
    (status,) = slack.calls_to("assistant.threads.setStatus")
    assert (status.args["channel_id"], status.args["thread_ts"]) == ("DPANE2", thread_ts)
    assert status.args["status"] == STATUS
    assert slack.statuses[("DPANE2", thread_ts)] == ""
    assert slack.titles[("DPANE2", thread_ts)] == "How do I rotate a key?"
    ask_in_pane(bot, slack, "DPANE2", thread_ts, "And the second key?", count=3)
    wait_for_turns(bot, before, ok=2)
    sent = [m["content"] for m in azure.completions[-1].body["messages"][1:]]
    assert sent == [
        "Pat: How do I rotate a key?",
        "Answer to: Pat: How do I rotate a key?",
        "Pat: And the second key?",
    ]
    assert len(slack.calls_to("assistant.threads.setTitle")) == 1


def test_summarize_this_channel_reads_the_channel_the_user_looks_at(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """After the user moves from one channel to another with the pane open, "summarize this
    channel" reads the second one's recent messages (with names) into the prompt, not the
    first's, and the usage line says what was read."""
    slack = people
    slack.members |= {"CLOOK1", "CLOOK2"}
    slack.post_as("U1", "CLOOK1", "old channel chatter")
    slack.post_as("U1", "CLOOK2", "the deploy is at 3pm")
    slack.post_as("U2", "CLOOK2", "I'll write the release notes")
    thread_ts, _ = open_pane(bot, slack, "DPANE3", looking_at="CLOOK1")
    moved = assistant_thread(
        "assistant_thread_context_changed",
        channel="DPANE3",
        thread_ts=thread_ts,
        looking_at="CLOOK2",
    )
    assert bot.send_event(moved).status_code == 200
    wait_until(lambda: pane_record(redis_url, "DPANE3", thread_ts)["looking_at"] == "CLOOK2")
    msgs = ask_in_pane(bot, slack, "DPANE3", thread_ts, "Summarize this channel", count=2)
    system = system_prompt(azure)
    assert "Alice: the deploy is at 3pm\nBob: I'll write the release notes" in system
    assert "old channel chatter" not in system
    (read,) = slack.calls_to("conversations.history")
    assert read.args["channel"] == "CLOOK2"
    assert "read 2 recent messages of <#CLOOK2>" in context_text(msgs[-1])


def test_a_channel_the_bot_is_not_in_is_not_read(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Asking about a channel the bot is not a member of: Slack refuses the read, the prompt
    says so (so the model can suggest /invite), and the answer still comes."""
    slack.post_as("U1", "CSECRET", "private plans")
    thread_ts, _ = open_pane(bot, slack, "DPANE4", looking_at="CSECRET")
    msgs = ask_in_pane(bot, slack, "DPANE4", thread_ts, "what is this channel about?", count=2)
    system = system_prompt(azure)
    assert "cannot read (you are not a member of it)" in system and "/invite" in system
    assert "private plans" not in system
    assert "<#CSECRET> not read (Slack: not_in_channel)" in context_text(msgs[-1])


def test_a_linked_channel_is_read_only_while_the_user_has_it_open(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """A question linking a channel other than the one the user looks at (maybe a private one
    the bot is in and they are not) reads nothing of it; the prompt says to open it first."""
    slack = people
    slack.members |= {"CHIDDEN", "CLOOK5"}
    slack.post_as("U1", "CHIDDEN", "salary review notes")
    thread_ts, _ = open_pane(bot, slack, "DPANE6", looking_at="CLOOK5")
    msgs = ask_in_pane(bot, slack, "DPANE6", thread_ts, "summarize <#CHIDDEN|hr>", count=2)
    system = system_prompt(azure)
    assert "salary review" not in system
    assert "they should open that channel" in system
    assert slack.calls_to("conversations.history") == []
    assert "<#CHIDDEN> not read (not open)" in context_text(msgs[-1])


def test_a_plain_question_in_the_pane_reads_no_channel(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A question that is not about the channel costs no conversations.history call."""
    slack.members.add("CLOOK5")
    thread_ts, _ = open_pane(bot, slack, "DPANE5", looking_at="CLOOK5")
    ask_in_pane(bot, slack, "DPANE5", thread_ts, "what is a monad?", count=2)
    assert slack.calls_to("conversations.history") == []
    assert "Slack channel" not in system_prompt(azure)


async def test_channel_digest_keeps_the_newest_messages_within_its_budget(
    fake_slack: FakeSlack, real_redis: Any
) -> None:
    """With a budget for about three messages of forty, the newest three are kept, oldest first."""
    slack = fake_slack
    slack.clear()
    slack.members.add("CBIG")
    for i in range(40):
        slack.post_as("U0000USER", "CBIG", f"message {i:02d} " + "word " * 20)
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
    one = estimate_tokens("Pat: message 00 " + "word " * 20)
    digest = await ChannelDigest(People(real_redis, Keys())).read(
        client, TEAM, "CBIG", "UBOT00001", budget=3 * one + one // 2
    )
    assert [line.split()[2] for line in digest.lines] == ["37", "38", "39"]
    assert all(line.startswith("Pat: message") for line in digest.lines)


def test_channel_asked_about_and_the_title_of_a_question() -> None:
    """A linked channel wins; "this channel" means the one looked at; titles are one short line."""
    assert channel_asked_about("summarize <#C123|general>", "C999") == "C123"
    assert channel_asked_about("Summarize THIS channel", "C999") == "C999"
    assert channel_asked_about("summarize this channel", None) is None
    assert channel_asked_about("what is a channel in Go?", "C999") is None
    assert title_of("  How do I rotate keys?\nmore details") == "How do I rotate keys?"
    assert title_of("x" * 200) == "x" * 79 + "…"
