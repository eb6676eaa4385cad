"""What each Slack message event means for the bot (`bot.message_events.classify`)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.incoming import Incoming
from bot.message_events import Delivery, Observed, Recorder, classify
from bot.metrics import Metrics

BOT = "UBOT"
DELIVERY = Delivery(bot_user_id=BOT, team_id="T1")
BODY = {"team_id": "T1", "event_id": "Ev1"}
FILE = {
    "id": "F1",
    "name": "app.log",
    "mimetype": "text/plain",
    "filetype": "text",
    "size": 120,
    "url_private_download": "https://files.slack.com/F1/app.log",
}


def reply(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "user": "U1",
        "text": text,
        "ts": "100.000002",
        "thread_ts": "100.000001",
        "channel": "C1",
        "channel_type": "channel",
        **extra,
    }


def test_thread_reply_is_a_followup_to_answer_with_its_files() -> None:
    """A person's reply in a thread is a follow-up, its files referenced."""
    meant = classify(reply("and then?", files=[FILE]), BODY, DELIVERY)
    assert isinstance(meant, Incoming)
    assert (meant.kind, meant.thread_id, meant.text) == (
        "followup",
        "T1:C1:100.000001",
        "and then?",
    )
    assert [f["name"] for f in meant.files] == ["app.log"]
    assert meant.bot_user == BOT


def test_reply_addressed_to_someone_else_is_only_recorded() -> None:
    """A reply that starts by mentioning another person is theirs: recorded, not answered."""
    meant = classify(reply("<@U2> can you look?"), BODY, DELIVERY)
    assert isinstance(meant, Observed)
    assert (meant.action, meant.thread) == ("record", "T1:C1:100.000001")
    assert meant.message == {
        "id": "100.000002",
        "role": "user",
        "content": "<@U2> can you look?",
        "user": "U1",
    }


def test_other_bots_thread_posts_are_recorded_as_bot_context() -> None:
    """Another app's post in a thread is kept, marked as a bot's, with its name."""
    post = reply("deploy 42 failed", bot_id="B9", bot_profile={"name": "CI"})
    meant = classify(post, BODY, DELIVERY)
    assert isinstance(meant, Observed)
    assert meant.message["bot"] is True and meant.message["name"] == "CI"
    legacy = reply("build ok", subtype="bot_message", username="jenkins", bot_id="B8")
    legacy.pop("user")
    observed = classify(legacy, BODY, DELIVERY)
    assert isinstance(observed, Observed) and observed.message["name"] == "jenkins"


def test_own_posts_chatter_and_mentions_are_not_the_message_paths() -> None:
    """The bot's own posts, top-level chatter, joins and mentions (the app_mention event answers
    those) mean nothing on the message path."""
    assert classify(reply("answer", user=BOT), BODY, DELIVERY) is None
    assert classify(reply("hi", thread_ts=None), BODY, DELIVERY) is None
    assert classify(reply("joined", subtype="channel_join"), BODY, DELIVERY) is None
    assert classify(reply(f"<@{BOT}> hi"), BODY, DELIVERY) is None


def test_edits_and_deletions_change_the_stored_message() -> None:
    """message_changed edits the message (not the bot's own edits); message_deleted deletes."""
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "ts": "200.0",
        "message": {
            "user": "U1",
            "text": "fixed text",
            "ts": "100.000002",
            "thread_ts": "100.000001",
        },
    }
    meant = classify(changed, BODY, DELIVERY)
    assert isinstance(meant, Observed)
    assert (meant.action, meant.thread, meant.message["content"]) == (
        "edit",
        "T1:C1:100.000001",
        "fixed text",
    )
    own = {**changed, "message": {**changed["message"], "user": BOT}}
    assert classify(own, BODY, DELIVERY) is None
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "channel": "C1",
        "deleted_ts": "100.000002",
        "previous_message": {"ts": "100.000002", "thread_ts": "100.000001", "text": "oops"},
    }
    gone = classify(deleted, BODY, DELIVERY)
    assert isinstance(gone, Observed)
    assert (gone.action, gone.thread, gone.message["id"]) == (
        "delete",
        "T1:C1:100.000001",
        "100.000002",
    )


def test_mentions_with_files_are_answered_and_edited_mentions_are_not() -> None:
    """An app_mention carries its files; the re-fired app_mention of an edit is ignored."""
    mention = {**reply(f"<@{BOT}> what is in this?", files=[FILE]), "type": "app_mention"}
    meant = classify(mention, BODY, DELIVERY)
    assert isinstance(meant, Incoming)
    assert (meant.kind, meant.text, len(meant.files)) == ("mention", "what is in this?", 1)
    edited = {**mention, "edited": {"user": "U1", "ts": "300.0"}}
    assert classify(edited, BODY, DELIVERY) is None


def test_every_dm_message_is_for_the_bot_in_or_out_of_a_thread() -> None:
    """In a DM (the assistant pane is a DM thread) a thread reply needs neither a mention nor
    an earlier answer: it is a `dm` turn in its thread."""
    meant = classify(
        reply("summarize this channel", channel="D1", channel_type="im"), BODY, DELIVERY
    )
    assert isinstance(meant, Incoming)
    assert (meant.kind, meant.thread_id, meant.starts_thread) == ("dm", "T1:D1:100.000001", False)


def test_deleting_an_answer_of_the_bots_is_told_apart_from_its_placeholders() -> None:
    """A deleted answer of the bot's is `delete_answer`, carrying its whole text; a deleted
    placeholder or notice of the bot's means nothing (none is stored)."""
    from bot.formatting import notice, render_answer

    (answer,) = render_answer("the primary is eu-west", None, "gpt-4o")
    thinking = notice("Thinking…")

    def deleted(posted: object) -> object:
        previous = {
            "ts": "100.000005",
            "thread_ts": "100.000001",
            "user": BOT,
            "bot_id": "B1",
            "text": posted.text,  # type: ignore[attr-defined]
            "blocks": posted.blocks,  # type: ignore[attr-defined]
        }
        event = {
            "type": "message",
            "subtype": "message_deleted",
            "channel": "C1",
            "deleted_ts": "100.000005",
            "previous_message": previous,
        }
        return classify(event, BODY, DELIVERY)

    meant = deleted(answer)
    assert isinstance(meant, Observed)
    assert (meant.action, meant.thread) == ("delete_answer", "T1:C1:100.000001")
    assert meant.message["content"] == "the primary is eu-west"
    assert deleted(thinking) is None


class SlowStore:
    """Stands in for the thread store: the first write waits (a new connection, say)."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    async def record(self, thread: str, message: Any) -> bool:
        await asyncio.sleep(0.05)
        self.applied.append(f"record {message['content']}")
        return True

    async def edit(self, thread: str, message: Any) -> bool:
        self.applied.append(f"edit {message['content']}")
        return True


async def test_a_threads_changes_apply_in_the_order_their_events_came() -> None:
    """A message whose write has to wait, then its edit: the edit waits for it (else the edit
    finds nothing and the original text stays); another thread does not wait."""
    store = SlowStore()
    recorder = Recorder(store, Metrics())  # type: ignore[arg-type]

    async def apply(change: Observed) -> None:
        async with recorder.in_order(change):
            await recorder.apply(change)

    said = {"id": "1.1", "role": "user", "content": "eu-west-1"}
    first = asyncio.ensure_future(apply(Observed("record", "T:C:1", said)))  # type: ignore[arg-type]
    edited = {**said, "content": "eu-north-1"}
    second = asyncio.ensure_future(apply(Observed("edit", "T:C:1", edited)))  # type: ignore[arg-type]
    other = asyncio.ensure_future(apply(Observed("edit", "T:C:2", said)))  # type: ignore[arg-type]
    await asyncio.gather(first, second, other)
    assert store.applied == ["edit eu-west-1", "record eu-west-1", "edit eu-north-1"]
    assert recorder._pending == {}
