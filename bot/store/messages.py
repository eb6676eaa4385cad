"""The pieces of a thread turn that are plain data: the turn handle, a held lock, what queueing did,
and how messages are encoded for the store."""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from typing import Any

from bot.chat_types import StoredMessage
from bot.store.batch import Batch


class Queued(enum.IntEnum):
    """What `TurnJournal.queue_join` did to the thread's queue (the values are join.lua's)."""

    NOT_IN_THREAD = 0
    """`require_history` and the thread has no history: nothing was done."""
    ALREADY = 1
    """The message already had its place (another delivery of it put it there)."""
    JOINED = 2
    """This call gave the message its place; a delivery that then turns out to be a duplicate
    must take it back (`dequeue`), or the thread's next message waits for it to go stale."""


@dataclass(slots=True)
class HeldLock:
    """A new thread's lock taken with its first message's claims (`TurnJournal.queue_claim`).
    `ThreadStore.turn` takes it over; until then the caller must `release` it."""

    token: str
    taken_over: bool = False


class ThreadTurn:
    """A held thread lock plus the history read under it.

    `save()` queues messages; `commit` is the batch that writes them, with the lock release, when
    the `ThreadStore.turn` block exits normally. Callers add their own bookkeeping to `commit` so
    it rides in the same round trip.
    """

    def __init__(self, history: list[StoredMessage], commit: Batch) -> None:
        self.history = history
        self.commit = commit
        self.pending: list[StoredMessage] = []

    def save(self, *messages: StoredMessage) -> None:
        """Queue messages for the commit. One without an id gets one: a user message the time
        now (as a Slack-style ts), an answer its question's id + "~a"."""
        for message in messages:
            if "id" not in message:
                last = self.pending[-1].get("id") if self.pending else None
                if message["role"] == "assistant" and last:
                    message = {**message, "id": f"{last}~a"}
                else:
                    message = {**message, "id": _new_id()}
            self.pending.append(message)


_last_id_us = 0


def _new_id() -> str:
    """A Slack-style ts for a message that has none (``ask --thread``): the time now, unique and
    increasing within the process."""
    global _last_id_us
    _last_id_us = max(int(time.time() * 1_000_000), _last_id_us + 1)
    return f"{_last_id_us // 1_000_000}.{_last_id_us % 1_000_000:06d}"


def encode(message: StoredMessage) -> str:
    """JSON for the store; prompt-only fields (`parts`) are never kept."""
    return json.dumps({k: v for k, v in message.items() if k != "parts"}, ensure_ascii=False)


def decode_messages(raw: list[Any]) -> list[StoredMessage]:
    """Stored JSON items → messages; anything unreadable is skipped, not fatal."""
    messages: list[StoredMessage] = []
    for item in raw:
        try:
            data = json.loads(item)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            messages.append(data)  # type: ignore[arg-type]
    return messages
