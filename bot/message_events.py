"""What a Slack message event means for the bot: a message to answer (`Incoming`), a change to a
thread it keeps (`Observed`: a message to record, an edit, a deletion), or nothing.

Slack facts this relies on:
* A message that mentions the bot arrives twice, as an `app_mention` and as a `message` event
  (different event ids); the message path leaves texts that mention the bot to the mention path,
  and the admission's `channel:ts` claim covers the rest.
* Editing a message that mentions the bot re-fires `app_mention` with an `edited` field: never
  answered again. The edit itself arrives as `message` with subtype `message_changed` (the new
  message under `message`, the thread under `message.thread_ts`), a deletion as
  `message_deleted` (`deleted_ts`, `previous_message`): stored text follows both.
* A thread reply has `thread_ts` ≠ `ts` (Slack omits the documented `message_replied` subtype in
  Events API deliveries); a person writes with no subtype, `thread_broadcast` or `file_share`.
* Other bots' posts carry `bot_id` (modern ones with no subtype, legacy ones `bot_message`); the
  bot's own posts carry its user id. Neither is ever answered; other bots' thread posts are kept
  as context.
* A DM (`channel_type: im`) is between one person and the bot: everything they write there is
  for the bot, at the top level or in a thread (the assistant pane is a DM thread).

A reply in a thread the bot is in is answered (a follow-up, where the channel allows) unless it
starts by mentioning someone else: then it is addressed to them and only recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from bot.chat_types import StoredMessage
from bot.errors import StoreUnavailable
from bot.incoming import Incoming, strip_mention
from bot.metrics import Metrics
from bot.slack_files import file_refs
from bot.slack_text import addressed_to
from bot.store import ThreadStore
from bot.thread_reader import from_slack

log = logging.getLogger(__name__)

ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")
"""Message subtypes that are a person writing; edits, deletions, joins and bots are not."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What is known about the request an event came in: who the bot is, and Slack's retry
    headers."""

    bot_user_id: str | None = None
    team_id: str | None = None
    retry_num: str | None = None
    retry_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Observed:
    """A change to a thread the bot may keep: record a message, edit one, delete one, or delete
    an answer of the bot's (`delete_answer`: the message's text identifies it, see
    `ThreadStore.delete_answer`)."""

    action: Literal["record", "edit", "delete", "delete_answer"]
    thread: str
    message: StoredMessage


def _team(body: dict[str, Any], delivery: Delivery) -> str:
    return str(delivery.team_id or body.get("team_id") or "")


def _incoming(
    event: dict[str, Any], body: dict[str, Any], delivery: Delivery, kind: str
) -> Incoming:
    ts = str(event.get("ts", ""))
    return Incoming(
        team=_team(body, delivery),
        channel=str(event.get("channel", "")),
        user=str(event.get("user", "")),
        ts=ts,
        thread_ts=str(event.get("thread_ts") or ts),
        text=strip_mention(str(event.get("text") or ""), delivery.bot_user_id),
        event_id=body.get("event_id"),
        kind=kind,
        retry_num=delivery.retry_num,
        retry_reason=delivery.retry_reason,
        files=tuple(file_refs(event.get("files"))),
        bot_user=delivery.bot_user_id,
    )


def classify(
    event: dict[str, Any], body: dict[str, Any], delivery: Delivery
) -> Incoming | Observed | None:
    """What this event means for the bot (see the module docstring)."""
    if not isinstance(event, dict):
        return None
    if event.get("type") == "app_mention":
        if (
            event.get("edited")
            or event.get("bot_id")
            or event.get("subtype") not in ANSWERED_SUBTYPES
        ):
            return None  # an edit re-fires app_mention; bots never get answers
        return _incoming(event, body, delivery, "mention")
    subtype = event.get("subtype")
    if subtype in ("message_changed", "message_deleted"):
        return _changed(event, body, delivery)
    if event.get("bot_id") or subtype == "bot_message":
        return _recorded(event, body, delivery)
    if subtype not in ANSWERED_SUBTYPES:
        return None
    user, ts, thread_ts = event.get("user"), event.get("ts"), event.get("thread_ts")
    bot_user_id = delivery.bot_user_id
    if not user or user == bot_user_id:
        return None
    if event.get("channel_type") == "im":
        # A direct message needs no mention; the answer starts a thread under it, or follows in
        # the DM thread it was written in (the assistant pane's messages are all thread replies).
        return _incoming(event, body, delivery, "dm")
    if not thread_ts or thread_ts == ts:
        return None  # not a person's reply inside a thread
    text = str(event.get("text") or "")
    if bot_user_id and f"<@{bot_user_id}" in text:
        return None  # the app_mention event for this message answers it
    if addressed_to(text) not in (None, bot_user_id):
        return _recorded(event, body, delivery)  # addressed to someone else
    return _incoming(event, body, delivery, "followup")


def _thread_of(team: str, event: dict[str, Any], message: dict[str, Any]) -> str:
    return f"{team}:{event.get('channel', '')}:{message.get('thread_ts') or message.get('ts')}"


def _recorded(event: dict[str, Any], body: dict[str, Any], delivery: Delivery) -> Observed | None:
    """A thread message the bot does not answer but keeps, if the thread is one it is in."""
    ts, thread_ts = event.get("ts"), event.get("thread_ts")
    if not thread_ts or thread_ts == ts:
        return None
    record = from_slack(event, delivery.bot_user_id)
    if record is None or record["role"] == "assistant":
        return None
    return Observed("record", _thread_of(_team(body, delivery), event, event), record)


def _changed(event: dict[str, Any], body: dict[str, Any], delivery: Delivery) -> Observed | None:
    team = _team(body, delivery)
    if event.get("subtype") == "message_deleted":
        previous = event.get("previous_message") or {}
        deleted = event.get("deleted_ts") or previous.get("ts")
        if not isinstance(deleted, str):
            return None
        thread = _thread_of(team, event, {"ts": deleted, **previous})
        if delivery.bot_user_id is not None and previous.get("user") == delivery.bot_user_id:
            said = from_slack({**previous, "ts": deleted, "subtype": None}, delivery.bot_user_id)
            if said is None:
                return None  # a placeholder or a notice: nothing of it is stored
            return Observed("delete_answer", thread, said)
        return Observed("delete", thread, {"id": deleted, "role": "user", "content": ""})
    message = event.get("message")
    if not isinstance(message, dict) or message.get("user") == delivery.bot_user_id:
        return None  # the bot's own edits (its answers replacing placeholders) are not news
    record = from_slack({**message, "subtype": None}, delivery.bot_user_id)
    if record is None:
        return None
    return Observed("edit", _thread_of(team, event, message), record)


class Recorder:
    """Applies `Observed` changes to the thread store; a failure is logged, never raised (the
    event is acked either way)."""

    def __init__(self, store: ThreadStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self._pending: dict[str, list[asyncio.Future[None]]] = {}

    @contextlib.asynccontextmanager
    async def in_order(self, meant: Incoming | Observed | None) -> AsyncIterator[None]:
        """Apply a change to a thread (a message kept, edited, deleted) only after what the
        thread's earlier events asked (admissions and changes) is done, in the order the events
        arrived at this replica. The place is taken before anything is awaited (in the ack's
        pass of the event loop), so a message and its edit reach Redis in Slack's order even
        when the first has to wait for a connection (a new one, a health check) or for a shared
        pipeline (`bot.store.batch`). Admissions do not wait for each other: the thread's queue
        orders their turns by the messages' ts."""
        if meant is None:
            yield
            return
        thread = meant.thread_id if isinstance(meant, Incoming) else meant.thread
        pending = self._pending.setdefault(thread, [])
        earlier = [f for f in pending if not f.done()]
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending.append(mine)
        try:
            if isinstance(meant, Observed) and earlier:
                await asyncio.wait(earlier)
            yield
        finally:
            mine.set_result(None)
            pending.remove(mine)
            if not pending and self._pending.get(thread) is pending:
                del self._pending[thread]

    async def apply(self, change: Observed) -> bool:
        """True when the thread changed (it is one the bot is in, and the message was there)."""
        try:
            if change.action == "record":
                changed = await self.store.record(change.thread, change.message)
            elif change.action == "edit":
                changed = await self.store.edit(change.thread, change.message)
            elif change.action == "delete_answer":
                changed = await self.store.delete_answer(change.thread, change.message)
            else:
                changed = await self.store.delete(change.thread, change.message["id"])
        except StoreUnavailable as exc:
            log.warning("could not %s a message in %s (%s)", change.action, change.thread, exc)
            return False
        if changed:
            self.metrics.recorded.labels(change.action).inc()
        return changed
