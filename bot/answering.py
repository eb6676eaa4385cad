"""The answer to one admitted Slack message: whether to answer, the model call under the thread's
lock, and what the thread shows for it.

Order of a turn, once admitted: a duplicate delivery, a follow-up in a channel with follow-ups
off, an empty mention and a user over quota end here with no Azure call (the last two with a
notice). Otherwise the working signal appears (Slack's status line, or a placeholder message
where the workspace refuses it: `bot.slack_thread`), the conversation runs under the thread's
lock (the answer streaming into its message where the channel and api-version allow), and the
answer is posted or replaces the placeholder, with its usage line.

Where the status line worked in the workspace lately, Azure is asked while the signal is being
set instead of after Slack's answer: a Slack round trip less before the model starts (under load,
the queue behind it too). `bot.working_signal` keeps the thread in order around it (nothing is
shown before a signal that was sent; a signal not sent yet when the answer is ready is dropped;
signals wait for a free slot under a burst; if Slack refuses every signal, the Azure call is
cancelled and nothing is saved). Elsewhere the signal comes first, so a channel where Slack
refuses everything costs no Azure call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import replace

from bot.admission import Admission, Begun
from bot.conversation import TurnSettings
from bot.errors import BotError, StreamInterrupted, TurnTakenOver
from bot.feedback import with_feedback
from bot.formatting import NOTICE_EVENT, SlackMessage, notice, render_answer
from bot.incoming import Incoming
from bot.live_message import LiveMessage
from bot.metrics import Metrics
from bot.outcome import Outcome, TurnLog
from bot.slack_thread import SlackThread
from bot.store import ThreadStore
from bot.thread_turn import ThreadAnswerer, ThreadReply
from bot.usage import human_duration, seconds_until_reset
from bot.working_signal import SIGNALS_IN_FLIGHT, BackgroundSignal, NothingShown

EMPTY_MENTION = (
    "Hi! Ask me anything in this thread, e.g. `@me why does my build fail?`. "
    "I remember the thread, and every answer shows its token usage."
)


def hashed_user(team: str, user: str) -> str:
    """Azure's `user` field helps abuse monitoring; a hash keeps Slack ids out of Azure."""
    return hashlib.sha256(f"{team}:{user}".encode()).hexdigest()[:32]


class Answerer:
    """Answers admitted messages; every I/O object is injected."""

    def __init__(
        self,
        *,
        store: ThreadStore,
        threads: ThreadAnswerer,
        admission: Admission,
        metrics: Metrics,
        now: Callable[[], dt.datetime],
        stream_capable: bool = True,
        stream_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.threads = threads
        self.admission = admission
        self.metrics = metrics
        self.now = now
        self.stream_capable = stream_capable
        self.stream_interval = stream_interval
        self._background: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(SIGNALS_IN_FLIGHT)
        """Working signals sent at once (`bot.working_signal`)."""

    async def respond(
        self, msg: Incoming, begun: Begun, thread: SlackThread, log: TurnLog
    ) -> Outcome:
        """Answer `msg` in `thread` (see the module docstring); returns how the turn ended."""
        declined = await self._decline(msg, begun, thread)
        if declined is not None:
            return declined
        streaming = self.stream_capable and begun.effective.settings.stream
        thinking: BackgroundSignal | None = None
        if thread.placeholder is None:
            if thread.status_trusted():
                thinking = BackgroundSignal(lambda: self._show_thinking(begun, thread), self._slots)
            elif not await self._show_thinking(begun, thread):
                return Outcome.SLACK_ERROR
        try:
            return await self._answer(msg, begun, thread, log, thinking, streaming)
        finally:
            if thinking is not None:
                # Whatever ended the turn, what it delivers comes after the working signal.
                await thinking.settle()

    async def _answer(
        self,
        msg: Incoming,
        begun: Begun,
        thread: SlackThread,
        log: TurnLog,
        thinking: BackgroundSignal | None,
        streaming: bool,
    ) -> Outcome:
        log.step("placeholder")
        settings = begun.effective.turn_settings()
        settings = replace(
            settings, options=replace(settings.options, user=hashed_user(msg.team, msg.user))
        )
        live = None
        if streaming:
            live = thread.live(
                self.stream_interval,
                lambda ts: self._remember_placeholder(begun, ts),
                thinking.settle if thinking else None,
            )
        try:
            answer = await self._converse(msg, begun, settings, thread, live, thinking)
        except NothingShown:
            return Outcome.SLACK_ERROR
        except TurnTakenOver:
            return Outcome.TAKEN_OVER  # the replica that took it over answers; nothing to say
        except BotError as exc:
            log.step("model")
            log.fields["error"] = type(exc).__name__
            if thinking is not None:
                await thinking.settle()
            await thread.deliver(_failure(exc, settings))
            await self.admission.finish_unanswered(msg, begun.lease)
            return Outcome.for_error(exc)
        log.step("model")
        if live is not None:
            log.fields["stream_updates"] = live.updates
        messages = self._render(answer, log)
        ok = await thread.deliver(messages)
        log.step("post")
        self.metrics.phase("slack_post", log.fields["post_ms"] / 1000)
        log.fields["parts"] = len(messages)
        return Outcome.OK if ok else Outcome.SLACK_ERROR

    async def _decline(self, msg: Incoming, begun: Begun, thread: SlackThread) -> Outcome | None:
        """The outcome of a message answered without the model, or None to go on."""
        if begun.duplicate is not None:
            self.metrics.dedup_hits.labels(begun.duplicate).inc()
            return Outcome.DUPLICATE
        effective = begun.effective.settings
        if msg.kind == "followup" and not effective.followups:
            await self.threads.record(msg)  # not answered, but part of the thread
            return Outcome.FOLLOWUPS_OFF
        if not msg.text and not msg.files:
            await thread.say(notice(EMPTY_MENTION))
            await self.admission.finish_unanswered(msg, begun.lease)
            return Outcome.EMPTY
        quota = effective.quota
        if quota and begun.used_today >= quota:
            wait = human_duration(seconds_until_reset(self.now()))
            await thread.say(
                notice(
                    f":no_entry: <@{msg.user}>, you have used your daily quota of {quota:,} tokens "
                    f"in this workspace ({begun.used_today:,} used). It resets in {wait} "
                    "(midnight UTC)."
                )
            )
            await self.admission.finish_unanswered(msg, begun.lease)
            return Outcome.QUOTA_EXCEEDED
        return None

    async def _converse(
        self,
        msg: Incoming,
        begun: Begun,
        settings: TurnSettings,
        thread: SlackThread,
        live: LiveMessage | None,
        thinking: BackgroundSignal | None = None,
    ) -> ThreadReply:
        """The model call under the thread's lock; the answer and its bookkeeping are written in
        one round trip when it succeeds, and only once the working signal is up (`thinking`)."""
        try:
            waiting = time.perf_counter()
            async with self.store.turn(
                msg.thread_id, settings.history_turns * 2, msg.ts, begun.lock, begun.lease
            ) as turn:
                self.metrics.phase("queue_wait", time.perf_counter() - waiting)
                asking = self.threads.answer(
                    thread.client,
                    turn,
                    msg,
                    settings,
                    vision=begun.effective.settings.vision,
                    on_delta=live.on_delta if live else None,
                )
                answer = await (asking if thinking is None else thinking.answer_while(asking))
                self.admission.queue_answered(turn.commit, msg, answer.reply.usage, begun.lease)
            return answer
        finally:
            if live is not None:
                # A progress update in flight must land before the final message does.
                await live.settle()

    async def _show_thinking(self, begun: Begun, thread: SlackThread) -> bool:
        """The working signal (`SlackThread.show_thinking`), its placeholder kept with the turn."""
        if not await thread.show_thinking():
            return False
        self._remember_placeholder(begun, thread.placeholder)
        return True

    def _remember_placeholder(self, begun: Begun, ts: str | None) -> None:
        """Keep the placeholder's ts (or a streamed answer's first message's) with the turn, in
        the background (it is for a takeover only), so a replica taking the turn over answers
        in it instead of a second message."""
        if ts is None:
            return
        task = asyncio.ensure_future(self.admission.journal.remember_placeholder(begun.lease, ts))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _render(self, answer: ThreadReply, log: TurnLog) -> list[SlackMessage]:
        reply = answer.reply
        if reply.usage is not None:
            self.metrics.used(reply.usage)
            log.fields.update(
                prompt=reply.usage.prompt_tokens,
                completion=reply.usage.completion_tokens,
                total=reply.usage.total_tokens,
            )
        log.fields["deployment"] = reply.result.deployment
        notes = []
        if reply.result.finish_reason == "length":
            notes.append("cut off at max_tokens")
        if reply.result.finish_reason == "content_filter":
            notes.append("the rest was blocked by the content filter")
        notes += answer.notes
        messages = render_answer(reply.text, reply.usage, reply.result.deployment, notes)
        messages[-1] = with_feedback(messages[-1], reply.result.deployment)  # 👍/👎 on the last
        return messages


def _failure(exc: BotError, settings: TurnSettings) -> list[SlackMessage]:
    """What the thread shows for a failed answer: its one sentence; for a stream cut short, the
    text that arrived, said plainly to be incomplete."""
    if isinstance(exc, StreamInterrupted) and exc.partial.strip():
        return render_answer(
            exc.partial + f"\n\n:warning: _{exc.user_message}_",
            None,
            settings.options.deployment or "",
            ["incomplete answer, not saved"],
            kind=NOTICE_EVENT,
        )
    return [notice(f":warning: {exc.user_message}")]
