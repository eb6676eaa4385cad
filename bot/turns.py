"""One Slack turn end to end: dedup, "thinking" placeholder, conversation, reply, log line.

`slack_app` decides *whether* a message is for the bot; this module decides *once*: Slack
redelivers events (`X-Slack-Retry-Num`), delivers a mention as both `app_mention` and `message`,
and may deliver one event to two replicas. Two `SET NX` claims in Redis, one on the
event id and one on `team:channel:ts`, make exactly one replica answer each user message.

A claim first lives only as long as a turn may (`pending_ttl`): if the replica dies mid-turn,
Slack's later redelivery is answered by another one. When the turn ends the claim is kept for
`done_ttl`, longer than Slack's whole retry schedule (~6 minutes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio.client import Pipeline
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel_config import ConfigStore, Effective
from bot.chat_types import Usage
from bot.conversation import Conversation
from bot.errors import BotError, StoreUnavailable, StreamInterrupted
from bot.formatting import notice, render_answer
from bot.history import REDIS_ERRORS, HistoryStore, Queued, redis_unavailable
from bot.live_message import LiveMessage
from bot.metrics import Metrics
from bot.usage import UsageLedger, human_duration, seconds_until_reset

log = logging.getLogger("bot.turn")

THINKING = ":hourglass_flowing_sand: _Thinking…_"
EMPTY_MENTION = (
    "Hi! Ask me anything in this thread, e.g. `@me why does my build fail?`. "
    "I remember the thread, and every answer shows its token usage."
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A user message the bot should answer, already stripped of the bot's mention."""

    team: str
    channel: str
    user: str
    ts: str
    thread_ts: str
    text: str
    event_id: str | None = None
    kind: str = "mention"
    retry_num: str | None = None
    retry_reason: str | None = None

    @property
    def thread_id(self) -> str:
        return f"{self.team}:{self.channel}:{self.thread_ts}"


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """Remove `<@BOT>` / `<@BOT|name>` tokens; other mentions stay (they carry meaning)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


def hashed_user(team: str, user: str) -> str:
    """Azure's `user` field helps abuse monitoring; a hash keeps Slack ids out of Azure."""
    return hashlib.sha256(f"{team}:{user}".encode()).hexdigest()[:32]


@dataclass
class TurnLog:
    """Timings and facts of one turn, logged as one `key=value` line."""

    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    placeholder: str | None = None
    _mark: float = 0.0

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.fields[f"{name}_ms"] = round((now - (self._mark or self.started)) * 1000, 1)
        self._mark = now

    def line(self) -> str:
        self.fields["total_ms"] = round((time.perf_counter() - self.started) * 1000, 1)
        return " ".join(f"{k}={v}" for k, v in self.fields.items())


def claim_names(msg: Incoming) -> list[str]:
    """The dedup claims of a message: on `team:channel:ts`, and on Slack's event id."""
    claims = [f"msg:{msg.team}:{msg.channel}:{msg.ts}"]
    if msg.event_id:
        claims.append(f"ev:{msg.team}:{msg.event_id}")
    return claims


@dataclass(slots=True)
class Begun:
    """What `TurnRunner._begin` read in its one round trip."""

    first: list[bool]
    """Per dedup claim: whether this delivery was the first."""
    effective: Effective
    used_today: int
    held: str | None = None
    """The lock token of a new thread (its first message), taken in the same round trip;
    the conversation skips its own lock round trip with it. None once handed over."""


@dataclass(slots=True)
class Admitted:
    """A message `TurnRunner.admit` let through, with what it read before the ack."""

    msg: Incoming
    begun: Begun | None = None
    """The turn's first reads, when they rode in the ack path's round trip (replies)."""
    joined_queue: bool = False
    """This delivery put the message in its thread's queue: a duplicate takes it back."""


class TurnRunner:
    """Runs turns for Slack messages; every I/O object is injected."""

    def __init__(
        self,
        *,
        store: HistoryStore,
        conversation: Conversation,
        metrics: Metrics,
        config: ConfigStore,
        ledger: UsageLedger,
        progress_client: AsyncWebClient | None = None,
        stream_capable: bool = True,
        stream_interval: float = 1.0,
        pending_ttl: int = 180,
        done_ttl: int = 3600,
        log_content: bool = False,
    ) -> None:
        self.store = store
        self.conversation = conversation
        self.metrics = metrics
        self.config = config
        self.progress_client = progress_client
        self.stream_capable = stream_capable
        self.stream_interval = stream_interval
        self.ledger = ledger
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl
        self.log_content = log_content
        self.in_flight: set[asyncio.Task[Any]] = set()

    async def drain(self, seconds: float) -> int:
        """Wait up to `seconds` for in-flight turns; returns how many were still running."""
        pending = {t for t in self.in_flight if t is not asyncio.current_task()}
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=seconds)
        return len(still)

    async def admit(self, msg: Incoming) -> Admitted | None:
        """Before Slack's request is acked. A reply inside a thread takes its place in the
        thread's queue now, so messages sent one after another are answered in that order even
        when different replicas handle them; the turn's first reads (claims, settings, quota)
        ride in the same round trip. A follow-up without mention only in a thread the bot is in
        (else None: not the bot's business). A message that starts a thread has nothing to
        queue behind and is admitted without a round trip; its turn reads everything at once."""
        if msg.thread_ts == msg.ts:
            return Admitted(msg)
        followup = msg.kind == "followup"
        try:
            queued, begun = await self._begin(msg, queue_followup=followup)
        except StoreUnavailable:
            return None if followup else Admitted(msg)  # the turn itself will tell the user
        if queued is Queued.NOT_IN_THREAD and followup:
            return None
        return Admitted(msg, begun, joined_queue=queued is Queued.JOINED)

    def start(self, admitted: Admitted, client: AsyncWebClient) -> asyncio.Task[str]:
        """Run the turn as a task, after Slack's request is acked; remembered until it ends so
        a shutdown can wait for it (`drain`)."""
        task = asyncio.ensure_future(self.run(admitted, client))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return task

    async def run(self, admitted: Admitted, client: AsyncWebClient) -> str:
        """Answer the message at most once across retries and replicas; returns the outcome."""
        msg = admitted.msg
        turn = TurnLog()
        turn.fields.update(
            kind=msg.kind,
            team=msg.team,
            channel=msg.channel,
            thread=msg.thread_ts,
            ts=msg.ts,
            event=msg.event_id or "-",
        )
        if msg.retry_num:
            turn.fields.update(retry=msg.retry_num, retry_reason=msg.retry_reason or "-")
            self.metrics.slack_retries.labels(msg.retry_reason or "unknown").inc()
        if self.log_content:
            turn.fields["text"] = repr(msg.text[:200])
        outcome = "error"
        try:
            outcome = await self._run(admitted, client, turn)
        except Exception:
            # A bug must not leave the user with silence or a stuck placeholder.
            outcome = "internal_error"
            log.exception("turn failed unexpectedly: %s", turn.line())
            failure = notice(f":warning: {BotError.user_message}")
            if turn.placeholder is not None:
                await self._replace(client, msg, turn.placeholder, failure)
            else:
                await self._post(client, msg, failure)
        finally:
            if outcome != "ok" and (outcome != "duplicate" or admitted.joined_queue):
                # It may hold a place in the thread's queue (see `admit`) that it never used.
                # A duplicate leaves a place it found alone: it belongs to the delivery that is
                # being answered.
                await self.store.dequeue(msg.thread_id, msg.ts)
            turn.fields["outcome"] = outcome
            self.metrics.turns.labels(outcome).inc()
            log.info("turn %s", turn.line())
        return outcome

    async def _begin(
        self, msg: Incoming, *, queue_followup: bool | None = None
    ) -> tuple[Queued, Begun]:
        """One round trip: the dedup claims, this channel's settings, the user's usage today;
        with `queue_followup` set (a reply, before the ack) the thread's queue (see `admit`),
        else, for a message that starts a thread, that thread's lock (see `Begun.held`)."""
        claims = claim_names(msg)
        new_thread = queue_followup is None and msg.thread_ts == msg.ts
        with redis_unavailable():
            async with self.store.redis.pipeline(transaction=False) as pipe:
                self.store.queue_claims(pipe, claims, self.pending_ttl)
                self.config.queue_read(pipe, msg.team, msg.channel)
                self.ledger.queue_user_today(pipe, msg.team, msg.user)
                token = self.store.queue_take_new_thread(pipe, msg.thread_id) if new_thread else ""
                queued = queue_followup is not None and self.store.queue_enqueue(
                    pipe, msg.thread_id, msg.ts, require_history=queue_followup
                )
                results = await pipe.execute()
        n = len(claims)
        begun = Begun(
            first=[bool(r) for r in results[:n]],
            effective=self.config.effective_from(results[n], results[n + 1]),
            used_today=self.ledger.tokens_from(results[n + 2]),
            held=token if new_thread and results[n + 3] else None,
        )
        return Queued(int(results[n + 3])) if queued else Queued.NOT_IN_THREAD, begun

    def _queue_finish(
        self, msg: Incoming, claims: list[str], usage: Usage | None
    ) -> Callable[[Pipeline], None]:
        """Commands that end an answered turn, riding in the history store's commit: keep the
        claims past Slack's retries and record the usage. (The saved history itself marks the
        thread as one the bot is in.)"""

        def queue(pipe: Pipeline) -> None:
            self.store.queue_keep_claims(pipe, claims, self.done_ttl)
            if usage is not None:
                self.ledger.queue_record(pipe, msg.team, msg.channel, msg.user, usage)

        return queue

    async def _finish(self, msg: Incoming, claims: list[str]) -> None:
        """One round trip for a turn that saved nothing: keep the claims, and mark the thread as
        one the bot answered in (if only with an error), so a plain "try again" is answered."""
        try:
            async with self.store.redis.pipeline(transaction=False) as pipe:
                self.store.queue_keep_claims(pipe, claims, self.done_ttl)
                self.store.queue_engage(pipe, msg.thread_id)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            # The pending TTL still covers Slack's quick retries.
            log.error("could not keep claims of %s (%s)", msg.thread_id, type(exc).__name__)

    async def _run(self, admitted: Admitted, client: AsyncWebClient, turn: TurnLog) -> str:
        msg, begun = admitted.msg, admitted.begun
        claims = claim_names(msg)
        if begun is None:
            try:
                _, begun = await self._begin(msg)
            except StoreUnavailable:
                await self._post(client, msg, notice(f":warning: {StoreUnavailable.user_message}"))
                return "store_unavailable"
            turn.step("begin")
        try:
            return await self._respond(msg, client, turn, claims, begun)
        finally:
            if begun.held is not None:  # taken in `_begin` but not handed to the conversation
                await self.store.release(msg.thread_id, begun.held)

    async def _respond(
        self, msg: Incoming, client: AsyncWebClient, turn: TurnLog, claims: list[str], begun: Begun
    ) -> str:
        effective, used_today = begun.effective, begun.used_today
        if not all(begun.first):
            self.metrics.dedup_hits.labels("message" if not begun.first[0] else "event").inc()
            return "duplicate"
        if msg.kind == "followup" and not effective.values["followups"]:
            return "followups_off"
        if not msg.text:
            await self._post(client, msg, notice(EMPTY_MENTION))
            await self._finish(msg, claims)
            return "empty"
        quota = int(effective.values["quota"])
        if quota and used_today >= quota:
            wait = human_duration(seconds_until_reset(self.ledger.now()))
            await self._post(
                client,
                msg,
                notice(
                    f":no_entry: <@{msg.user}>, you have used your daily quota of {quota:,} tokens "
                    f"in this workspace ({used_today:,} used). It resets in {wait} (midnight UTC)."
                ),
            )
            await self._finish(msg, claims)
            return "quota_exceeded"
        placeholder = await self._post(client, msg, notice(THINKING))
        turn.placeholder = placeholder
        turn.step("placeholder")
        if placeholder is None:
            return "slack_error"
        settings = effective.turn_settings()
        settings = replace(
            settings, options=replace(settings.options, user=hashed_user(msg.team, msg.user))
        )
        live = None
        if self.stream_capable and effective.values["stream"]:
            live = LiveMessage(
                self.progress_client or client,
                channel=msg.channel,
                ts=placeholder,
                interval=self.stream_interval,
            )
        held, begun.held = begun.held, None  # the conversation's turn releases it from here
        try:
            reply = await self.conversation.answer(
                msg.thread_id,
                msg.text,
                settings,
                on_delta=live.on_delta if live else None,
                on_commit=lambda result: self._queue_finish(msg, claims, result.usage),
                position=msg.ts,
                held_lock=held,
            )
            turn.step("model")
        except BotError as exc:
            turn.step("model")
            turn.fields["error"] = type(exc).__name__
            if live is not None:
                await live.settle()
            failure = [notice(f":warning: {exc.user_message}")]
            if isinstance(exc, StreamInterrupted) and exc.partial.strip():
                # Keep what arrived, and say plainly that it is incomplete.
                failure = render_answer(
                    exc.partial + f"\n\n:warning: _{exc.user_message}_",
                    None,
                    settings.options.deployment or "",
                    ["incomplete answer, not saved"],
                )
            await self._deliver(client, msg, placeholder, failure)
            await self._finish(msg, claims)
            return type(exc).__name__
        except Exception:
            # run() reports it; first let a progress update in flight land, so the error
            # message replacing the placeholder is the last word.
            if live is not None:
                await live.settle()
            raise
        if live is not None:
            await live.settle()
            turn.fields["stream_updates"] = live.updates
        if reply.usage is not None:
            self.metrics.used(reply.usage)
            turn.fields.update(
                prompt=reply.usage.prompt_tokens,
                completion=reply.usage.completion_tokens,
                total=reply.usage.total_tokens,
            )
        turn.fields["deployment"] = reply.result.deployment
        notes = []
        if reply.result.finish_reason == "length":
            notes.append("cut off at max_tokens")
        if reply.result.finish_reason == "content_filter":
            notes.append("the rest was blocked by the content filter")
        if reply.dropped_messages:
            notes.append(f"{reply.dropped_messages} older messages left out to fit the context")
        messages = render_answer(reply.text, reply.usage, reply.result.deployment, notes)
        ok = await self._deliver(client, msg, placeholder, messages)
        turn.step("post")
        turn.fields["parts"] = len(messages)
        return "ok" if ok else "slack_error"

    async def _post(self, client: AsyncWebClient, msg: Incoming, message: Any) -> str | None:
        """chat.postMessage in the thread; returns the ts, or None (logged) when Slack refuses."""
        try:
            resp = await client.chat_postMessage(
                channel=msg.channel, thread_ts=msg.thread_ts, **message.as_args()
            )
        except SlackApiError as exc:
            log.error(
                "chat.postMessage failed channel=%s thread=%s error=%s",
                msg.channel,
                msg.thread_ts,
                exc.response.get("error"),
            )
            return None
        ts = resp.get("ts")
        return str(ts) if ts else None

    async def _deliver(
        self, client: AsyncWebClient, msg: Incoming, placeholder: str, messages: list[Any]
    ) -> bool:
        """The first message replaces the placeholder, the rest follow in the thread, in order.
        True when Slack took all of them."""
        ok = await self._replace(client, msg, placeholder, messages[0])
        for extra in messages[1:]:
            ok = await self._post(client, msg, extra) is not None and ok
        return ok

    async def _replace(self, client: AsyncWebClient, msg: Incoming, ts: str, message: Any) -> bool:
        """Replace the placeholder; if Slack refuses the update, post instead (never leave
        the placeholder as the last word)."""
        try:
            await client.chat_update(channel=msg.channel, ts=ts, **message.as_args())
            return True
        except SlackApiError as exc:
            log.warning(
                "chat.update failed channel=%s ts=%s error=%s; posting instead",
                msg.channel,
                ts,
                exc.response.get("error"),
            )
        return await self._post(client, msg, message) is not None
