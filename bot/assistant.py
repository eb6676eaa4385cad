"""The assistant pane: Slack's split-view assistant container, beside whatever the user is reading.

Slack facts this relies on:

* `assistant_thread_started` arrives when a user opens the pane (subscription of that name,
  scope `assistant:write`). Its `assistant_thread` holds `user_id`, `channel_id` (the user's DM
  with the app), `thread_ts` (the pane's thread) and `context`: `channel_id` (the channel the
  user is looking at, absent when none), `team_id`, `enterprise_id`.
  `assistant_thread_context_changed` has the same shape, when the user moves to another channel
  with the pane open. Bolt's listeners take both; Slack may redeliver them like any event.
* What the user writes in the pane arrives as `message.im` events in that DM, with `thread_ts`.
  They are answered like any thread turn (`bot.message_events` takes every DM message), so the
  pane gets the thread history, dedup, the usage line, streaming and the status line.
* `assistant.threads.setSuggestedPrompts(channel_id, thread_ts, prompts, title)` shows up to four
  prompts (`{"title", "message"}`); clicking one sends its `message` as the user.
  `assistant.threads.setTitle(channel_id, thread_ts, title)` names the thread in the pane's
  history. Both need `assistant:write`.

The pane's thread is kept in Redis (`Keys.assistant_thread`, as long as the thread's history):
who opened it, the channel they are looking at, and whether it has its title. Its first question
becomes the title. A question about "this channel" (or one that links a channel, `<#C…>`) gets
that channel's recent messages in its system prompt (`bot.channel_digest`), at most half of the
prompt's budget, only where the bot is a member; elsewhere the prompt says it cannot read it, so
the model can tell the user to invite it. Only the channel the user is looking at is read: Slack
vouches that they can see it, while a linked id could name a private channel the bot is in and
they are not (the bot has no scope to check membership), so a linked channel not open beside the
pane is not read, and the prompt says how to have it read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel_digest import ChannelDigest, Digest
from bot.errors import StoreUnavailable, redis_unavailable
from bot.formatting import notice
from bot.incoming import Incoming
from bot.metrics import Metrics
from bot.store import Batch, Keys
from bot.thread_turn import Surrounding

log = logging.getLogger(__name__)

GREETING = (
    "Hi <@{user}>! I'm your team's Azure OpenAI assistant. Ask me anything here; I remember "
    "this conversation, and every answer shows its token usage. I can also read the channel "
    "you're looking at (where I'm a member): just ask me about *this channel*."
)
PROMPTS_TITLE = "Try one of these"
TITLE_LIMIT = 80
_THIS_CHANNEL = re.compile(r"\b(this|the|that|current)\s+channel\b", re.IGNORECASE)
NOT_OPEN = "not_open"
"""Why a linked channel is not read: the user does not have it open (see the module docstring)."""
_LINKED_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def channel_asked_about(text: str, looking_at: str | None) -> str | None:
    """The channel a question is about: one it links (`<#C…>`), else the one the user is
    looking at when the question says "this channel" (or "the/that/current channel")."""
    linked = _LINKED_CHANNEL.search(text)
    if linked:
        return linked.group(1)
    return looking_at if looking_at and _THIS_CHANNEL.search(text) else None


def title_of(question: str) -> str:
    """The thread's title: the first line of its first question, shortened."""
    line = (question.strip().splitlines() or [""])[0].strip() or "New chat"
    return line if len(line) <= TITLE_LIMIT else line[: TITLE_LIMIT - 1].rstrip() + "…"


def channel_note(digest: Digest) -> str:
    """The system prompt's paragraph about the channel the question is about."""
    where = f"the Slack channel <#{digest.channel}>"
    if digest.refused == NOT_OPEN:
        return (
            f"The user asked about {where}, which you read only while they have it open: "
            "they should open that channel, then ask about *this channel* here again."
        )
    if digest.refused is not None:
        why = "you are not a member of it" if digest.not_a_member else f"Slack: {digest.refused}"
        return (
            f"The user asked about {where}, which you cannot read ({why}). If they want you "
            "to read it, they can invite you to it with `/invite`."
        )
    body = "\n".join(digest.lines) or "(no messages)"
    return (
        f"The user is asking about {where}. Its most recent messages, oldest first "
        f"(each starts with its author's name):\n---\n{body}\n---"
    )


class AssistantPane:
    """The pane's Bolt listeners, and what a turn in the pane adds to its prompt."""

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        digest: ChannelDigest,
        prompts: Sequence[tuple[str, str]],
        ttl_seconds: int,
        metrics: Metrics,
    ) -> None:
        self.metrics = metrics
        self.redis = redis
        self.keys = keys
        self.digest = digest
        self.prompts = [{"title": t, "message": m} for t, m in prompts[:4]]
        self.ttl_seconds = ttl_seconds

    def register(self, app: AsyncApp) -> None:
        @app.event("assistant_thread_started")
        async def on_started(
            body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
        ) -> None:
            await self.started(body, str(context.team_id or ""), client)

        @app.event("assistant_thread_context_changed")
        async def on_context_changed(body: dict[str, Any], context: AsyncBoltContext) -> None:
            await self.context_changed(body, str(context.team_id or ""))

    async def started(self, body: dict[str, Any], team: str, client: AsyncWebClient) -> None:
        """Remember the pane's thread, greet the user and offer the suggested prompts, once
        per event (a redelivery greets no one twice)."""
        pane = (body.get("event") or {}).get("assistant_thread") or {}
        channel, thread_ts = str(pane.get("channel_id") or ""), str(pane.get("thread_ts") or "")
        if not (team and channel and thread_ts):
            return
        batch = Batch(self.redis)
        claim = self.keys.event_claim(f"{team}:{channel}:{thread_ts}", str(body.get("event_id")))
        batch.pipe.set(claim, "done", nx=True, ex=3600)  # Slack redelivers events
        first = batch.step(lambda replies: [bool(replies[0])])
        self._queue_remember(batch, team, pane, user=str(pane.get("user_id") or ""))
        try:
            await batch.run()
        except StoreUnavailable as exc:
            log.warning("assistant thread not remembered (%s)", exc)
        else:
            if not all(first.value):
                self.metrics.dedup_hits.labels("event").inc()
                return
        greeting = notice(GREETING.format(user=pane.get("user_id") or "there"))
        try:
            await client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **greeting.as_args()
            )
            if self.prompts:
                await client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel,
                    thread_ts=thread_ts,
                    title=PROMPTS_TITLE,
                    prompts=self.prompts,
                )
        except SlackApiError as exc:
            log.warning("assistant pane greeting failed: %s", exc.response.get("error"))

    async def context_changed(self, body: dict[str, Any], team: str) -> None:
        """Remember the channel the user now looks at."""
        pane = (body.get("event") or {}).get("assistant_thread") or {}
        if not (team and pane.get("channel_id") and pane.get("thread_ts")):
            return
        batch = Batch(self.redis)
        self._queue_remember(batch, team, pane)
        try:
            await batch.run()
        except StoreUnavailable as exc:
            log.warning("assistant context not remembered (%s)", exc)

    def _queue_remember(
        self, batch: Batch, team: str, pane: dict[str, Any], user: str | None = None
    ) -> None:
        key = self.keys.assistant_thread(f"{team}:{pane['channel_id']}:{pane['thread_ts']}")
        looking_at = str((pane.get("context") or {}).get("channel_id") or "")
        batch.pipe.hset(key, "looking_at", looking_at)
        if user is not None:
            batch.pipe.hset(key, "user", user)
        batch.pipe.expire(key, self.ttl_seconds)

    async def around(self, client: AsyncWebClient, msg: Incoming, budget: int) -> Surrounding:
        """For a question in a pane's thread: the thread's title from its first question, and
        the channel the question is about (`Surroundings` of `bot.thread_turn`)."""
        if msg.kind != "dm" or msg.starts_thread:
            return Surrounding()
        key = self.keys.assistant_thread(msg.thread_id)
        try:
            with redis_unavailable():
                pane: dict[str, str] = await self.redis.hgetall(key)  # type: ignore[assignment]
                if pane and not pane.get("titled"):
                    await self.redis.hset(key, "titled", "1")
        except StoreUnavailable as exc:
            log.warning("assistant thread unreadable (%s)", exc)
            return Surrounding()
        if not pane:
            return Surrounding()  # a thread in a plain DM, not the pane's
        if not pane.get("titled"):
            await self._set_title(client, msg)
        looking_at = pane.get("looking_at") or None
        channel = channel_asked_about(msg.text, looking_at)
        if channel is None:
            return Surrounding()
        if channel != looking_at:
            digest = Digest(channel, refused=NOT_OPEN)
            return Surrounding(channel_note(digest), [f"<#{channel}> not read (not open)"])
        digest = await self.digest.read(client, msg.team, channel, msg.bot_user, budget)
        if digest.refused is not None:
            note = f"<#{channel}> not read (Slack: {digest.refused})"
        else:
            note = f"read {len(digest.lines)} recent messages of <#{channel}>"
        return Surrounding(channel_note(digest), [note])

    async def _set_title(self, client: AsyncWebClient, msg: Incoming) -> None:
        try:
            await client.assistant_threads_setTitle(
                channel_id=msg.channel, thread_ts=msg.thread_ts, title=title_of(msg.text)
            )
        except SlackApiError as exc:
            log.warning("assistant.threads.setTitle failed: %s", exc.response.get("error"))
