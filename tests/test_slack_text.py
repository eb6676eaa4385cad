"""Slack markup made readable for the model (`bot.slack_text`)."""

from __future__ import annotations

from bot.slack_text import addressed_to, mentioned_users, readable

NAMES = {"U1": "Alice Smith", "U2": "Bob"}


def test_readable_turns_mentions_channels_and_links_into_what_people_see() -> None:
    """User and channel tokens, broadcasts, user groups, links and escapes read as in Slack."""
    text = (
        "<@U1> and <@U2|bob> see <#C9|incidents> &amp; <https://x.io/a?b=1|the doc> or "
        "<https://y.io> <mailto:ops@x.io|ops@x.io> <!here> <!subteam^S1|@sre> 1 &lt; 2 &gt; 0"
    )
    assert readable(text, NAMES) == (
        "@Alice Smith and @Bob see #incidents & the doc (https://x.io/a?b=1) or "
        "https://y.io ops@x.io @here @sre 1 < 2 > 0"
    )


def test_readable_keeps_unknown_people_as_ids() -> None:
    """A person whose name is unknown stays recognisable by id, or by the token's own label."""
    assert readable("<@U7> and <@U8|carol>", NAMES) == "@U7 and @carol"


def test_mentions_and_addressee_are_found() -> None:
    """Mentioned ids are collected; a message is addressed to the person it starts with."""
    assert mentioned_users("hi <@U1>, <@U2|b> and <@W3>") == {"U1", "U2", "W3"}
    assert addressed_to("  <@U2> can you check?") == "U2"
    assert addressed_to("thanks <@U2>") is None


def test_the_bots_own_long_answer_is_read_back_whole() -> None:
    """Read back from Slack, an answer of the bot's is its markdown block's whole text, not the
    3,000-character `text` fallback; its placeholder is no message at all."""
    from bot.formatting import notice, render_answer
    from bot.thread_reader import from_slack

    long = "word " * 1200
    (posted,) = render_answer(long, None, "gpt-4o")
    message = {
        "ts": "100.000002",
        "user": "UBOT",
        "text": posted.text,
        "blocks": posted.blocks,
        "metadata": {"event_type": posted.kind, "event_payload": {}},
    }
    assert len(posted.text) < len(long)
    record = from_slack(message, "UBOT")
    assert record is not None
    assert record["role"] == "assistant" and record["content"] == long
    thinking = notice("Thinking…")
    placeholder = {**message, "text": thinking.text, "blocks": thinking.blocks}
    placeholder["metadata"] = {"event_type": thinking.kind, "event_payload": {}}
    assert from_slack(placeholder, "UBOT") is None
