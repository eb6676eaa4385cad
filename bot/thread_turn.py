"""The model's part of a turn in a Slack thread, under the thread's lock: read the thread the
first time the bot is called into it, build the prompt from the room, ask, and keep what the
store should keep.

A thread the bot has not answered in yet (it was just mentioned in a discussion) is read
once with `conversations.replies` (`bot.thread_reader`); what is read is stored with the turn, and
from then on the thread is kept current from message events, so it is never read again. If the
deployment refuses image input (Azure: 400, "image_url is only supported by certain models"),
the turn is asked once more without images, and the answer says so.

`Surroundings` may add to the system prompt what lies beyond the thread (the assistant pane adds
the channel a question is about); it counts against the prompt's budget like the rest of it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.chat_types import DeltaCallback, StoredMessage
from bot.conversation import Conversation, Reply, TurnSettings, estimate_tokens
from bot.errors import InvalidRequest, StoreUnavailable
from bot.incoming import Incoming
from bot.room import Prompt, Room, question_record
from bot.store import ThreadStore, ThreadTurn
from bot.thread_reader import ThreadReader


def supports_images(api_version: str) -> bool:
    """Whether images can go as `image_url` parts: the request schemas of GA 2024-10-21 and
    later (and the v1 API) declare them in the shape the service takes,
    `{"type": "image_url", "image_url": {"url": ...}}`; 2024-02-01 and 2024-06-01 declare `url`
    on the part itself (a known spec bug), and 2023-05-15 takes string content only."""
    if api_version == "v1":
        return True
    return api_version[:4].isdigit() and api_version[:10] >= "2024-10-21"


@dataclass
class ThreadReply:
    """The answer, and what the usage line should say about how it was made."""

    reply: Reply
    notes: list[str] = field(default_factory=list)


@dataclass
class Surrounding:
    """What a turn adds to its system prompt beyond the thread, and what its usage line says
    about it."""

    system: str = ""
    notes: list[str] = field(default_factory=list)


class Surroundings(Protocol):
    """What lies around a thread (`bot.assistant.AssistantPane` fits)."""

    async def around(self, client: AsyncWebClient, msg: Incoming, budget: int) -> Surrounding:
        """What to add for `msg`, in at most `budget` tokens."""
        ...


class RoomTurn:
    """What the conversation sees of a thread turn: the prompt-ready history; what it saves goes
    to the store as Slack messages (ids, authors, files), with what was read of the thread."""

    def __init__(
        self,
        turn: ThreadTurn,
        prompt: Prompt,
        question: StoredMessage,
        read: list[StoredMessage],
        *,
        unread: bool = False,
    ) -> None:
        self._turn = turn
        self._question = question
        self._read = read
        self._unread = unread
        self.history = prompt.history

    def save(self, *messages: StoredMessage) -> None:
        question, answer = messages
        stored: StoredMessage = {**self._question, "tokens": question.get("tokens", 0)}
        reply: StoredMessage = {
            "id": f"{stored['id']}~a",
            "role": "assistant",
            "content": answer["content"],
            "tokens": answer.get("tokens", 0),
        }
        if self._unread:
            reply["unread"] = True
        self._turn.save(*self._read, stored, reply)


class ThreadAnswerer:
    """Answers in Slack threads with the room's context; every I/O object is injected."""

    def __init__(
        self,
        *,
        store: ThreadStore,
        room: Room,
        reader: ThreadReader,
        conversation: Conversation,
        images_supported: bool,
        read_seconds: float = 20.0,
        surroundings: Surroundings | None = None,
    ) -> None:
        self.store = store
        self.room = room
        self.reader = reader
        self.conversation = conversation
        self.images_supported = images_supported
        self.read_seconds = read_seconds
        self.surroundings = surroundings

    async def answer(
        self,
        client: AsyncWebClient,
        turn: ThreadTurn,
        msg: Incoming,
        settings: TurnSettings,
        *,
        vision: bool,
        on_delta: DeltaCallback | None = None,
    ) -> ThreadReply:
        notes: list[str] = []
        if self.surroundings is not None:
            around = await self.surroundings.around(client, msg, settings.prompt_budget // 2)
            if around.system:
                system = f"{settings.system_prompt}\n\n{around.system}"
                settings = replace(settings, system_prompt=system)
            notes += around.notes
        read, unread = await self._read(client, turn, msg, settings.history_turns * 2, notes)
        records = _merged(read, turn.history)
        images = self._images_refused(vision)
        prompt = await self._prompt(client, msg, records, settings, images)
        try:
            reply = await self._ask(turn, msg, prompt, settings, (read, unread), on_delta)
        except InvalidRequest as exc:
            if not prompt.images or "image" not in str(exc).lower():
                raise
            prompt = await self._prompt(client, msg, records, settings, "not taken here")
            reply = await self._ask(turn, msg, prompt, settings, (read, unread), on_delta)
            notes.append("images skipped: this deployment does not take image input")
        dropped = prompt.dropped + reply.dropped_messages
        if dropped:
            notes.append(f"{dropped} earlier messages not sent")
        if prompt.left_out:
            notes.append("left out: " + "; ".join(prompt.left_out))
        return ThreadReply(reply, notes)

    async def _read(
        self, client: AsyncWebClient, turn: ThreadTurn, msg: Incoming, limit: int, notes: list[str]
    ) -> tuple[list[StoredMessage], bool]:
        """The thread as read from Slack when it needs reading (else nothing), and whether a
        later turn should read it again (Slack refused part of it for a passing reason)."""
        if msg.starts_thread or limit <= 0 or not _needs_reading(turn.history, limit):
            return [], False
        thread = await self.reader.read(
            client,
            msg.channel,
            msg.thread_ts,
            msg.bot_user,
            deadline=time.monotonic() + self.read_seconds,
        )
        read = thread.messages
        if any(m.get("role") == "assistant" for m in turn.history):
            # A re-read: the bot's answers are stored already (by their question's id).
            read = [m for m in read if m.get("role") != "assistant"]
        if thread.refused is None:
            return read, False
        notes.append(f"earlier thread messages not read (Slack: {thread.refused})")
        return read, thread.worth_retrying

    async def record(self, msg: Incoming) -> None:
        """Keep a message the bot does not answer as part of its thread (best effort)."""
        # Context only: losing it to a Redis outage costs no answer.
        with contextlib.suppress(StoreUnavailable):
            await self.store.record(msg.thread_id, question_record(msg))

    def _images_refused(self, vision: bool) -> str | None:
        """Why images cannot be sent in this turn, or None."""
        if not vision:
            return "images are off in this channel (/gpt set vision on)"
        if not self.images_supported:
            return "images need AZURE_OPENAI_API_VERSION 2024-10-21 or later, or v1"
        return None

    async def _prompt(
        self,
        client: AsyncWebClient,
        msg: Incoming,
        records: list[StoredMessage],
        settings: TurnSettings,
        images: str | None,
    ) -> Prompt:
        system = estimate_tokens(settings.system_prompt) + 80  # the room note
        return await self.room.prompt(
            client, msg, records, system_tokens=system, budget=settings.prompt_budget, images=images
        )

    async def _ask(
        self,
        turn: ThreadTurn,
        msg: Incoming,
        prompt: Prompt,
        settings: TurnSettings,
        read: tuple[list[StoredMessage], bool],
        on_delta: DeltaCallback | None,
    ) -> Reply:
        """`read`: what was read of the thread, and whether Slack refused part of it."""
        system = f"{settings.system_prompt}\n\n{prompt.system_note()}"
        handle = RoomTurn(turn, prompt, question_record(msg), read[0], unread=read[1])
        return await self.conversation.answer(
            handle, prompt.question, replace(settings, system_prompt=system), on_delta=on_delta
        )


def _needs_reading(history: list[StoredMessage], limit: int) -> bool:
    """Whether the thread should be read from Slack: the bot has not answered in it before
    (nothing of its own is stored; messages recorded while its first turn waited or ran may be),
    or its answers so far were made while Slack refused part of the thread (`unread`). A full
    window of stored messages is enough context either way, and is not read again."""
    answers = [m for m in history if m.get("role") == "assistant"]
    return len(history) < limit and all(m.get("unread") for m in answers)


def _merged(read: list[StoredMessage], stored: list[StoredMessage]) -> list[StoredMessage]:
    """Messages read from Slack and stored ones, one per id, in time (id) order."""
    by_id = {m.get("id", ""): m for m in read}
    by_id.update({m.get("id", ""): m for m in stored})
    return [by_id[k] for k in sorted(by_id)]
