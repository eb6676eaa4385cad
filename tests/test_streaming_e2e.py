"""Streamed answers in Slack: the message grows, ends with usage; a cut stream ends clearly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.azure import FakeAzure, Fault
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, context_text, message_text
from fakes.slack_requests import mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, turns, wait_for_turns

WORDS = " ".join(f"word{i}" for i in range(12))


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    proc = BotProcess(
        bot_env(
            fake_azure,
            fake_slack,
            redis_server.url,
            BOT_STREAM_INTERVAL="0.2",
            BOT_ADMIN_USER_IDS="UADMIN",
        )
    ).wait_ready()
    yield proc
    proc.stop()


def test_streamed_answer_grows_then_shows_usage(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """With a slow stream, the answer's message grows (its first text posted under the status
    line), then becomes the final answer."""
    azure.answer = lambda m: WORDS
    azure.token_delay = 0.1
    before = turns(bot)
    event = mention("stream please", channel="CST1")
    bot.send_event(event)
    (reply,) = final_thread(slack, "CST1", event["ts"], timeout=20)
    wait_for_turns(bot, before, ok=1)
    assert message_text(reply) == WORDS
    assert "total " in context_text(reply)
    body = azure.completions[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    texts = [text for _, text in reply["versions"]]
    growing = [t for t in texts[:-1] if t.endswith(" …")]
    assert len(growing) >= 2
    lengths = [len(t) for t in growing]
    assert lengths == sorted(lengths) and WORDS.startswith(growing[0][:-2])


def test_cut_stream_ends_with_partial_text_and_note(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A stream that breaks mid-way leaves what arrived plus a clear note, never the placeholder."""
    azure.answer = lambda m: WORDS
    azure.push(Fault("cut_stream", after_words=4))
    before = turns(bot)
    event = mention("this will break", channel="CST2")
    bot.send_event(event)
    (reply,) = final_thread(slack, "CST2", event["ts"], timeout=20)
    text = message_text(reply)
    assert text.startswith("word0 word1 word2 word3")
    assert "cut off" in text
    assert "incomplete answer, not saved" in context_text(reply)
    assert "Thinking" not in text and not text.endswith(" …")
    wait_for_turns(bot, before, StreamInterrupted=1)


def test_stream_off_per_channel_uses_one_call(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """`/gpt set stream off` makes the channel's turns non-streaming: the answer is posted once,
    never updated."""
    from tests.test_commands_e2e import command

    assert "→ off" in command(bot, "set stream off", user="UADMIN", channel="CST3")
    azure.answer = lambda m: WORDS
    azure.token_delay = 0.05
    before = turns(bot)
    event = mention("no stream", channel="CST3")
    bot.send_event(event)
    (reply,) = final_thread(slack, "CST3", event["ts"], timeout=20)
    wait_for_turns(bot, before, ok=1)
    assert "stream" not in azure.completions[-1].body
    assert message_text(reply) == WORDS
    assert len(reply["versions"]) == 1  # under the status line: no placeholder to replace


def test_api_version_2023_05_15_never_streams(
    fake_azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """2023-05-15 has no usage in streams, so the bot asks for a plain completion and shows usage."""
    fake_azure.clear()
    proc = BotProcess(
        bot_env(fake_azure, slack, redis_url, AZURE_OPENAI_API_VERSION="2023-05-15")
    ).wait_ready()
    try:
        event = mention("old version", channel="CST4")
        proc.send_event(event)
        (reply,) = final_thread(slack, "CST4", event["ts"])
        assert "stream" not in fake_azure.completions[-1].body
        assert fake_azure.completions[-1].query == {"api-version": "2023-05-15"}
        assert "total " in context_text(reply)
    finally:
        proc.stop()
