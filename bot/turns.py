"""Runs Slack turns: admission with the ack, the turn as a task after it, one log line each;
and keeps this replica's turns alive in Redis while taking over those of replicas that died.

`slack_app` decides *whether* a message is for the bot; `Admission` decides which delivery answers
it, once; `Answerer` answers; `SlackThread` is what the thread shows. This module ties them
together and keeps the promises that hold whatever happens inside: the turn is tracked until it
ends (so a shutdown can wait for it), it leaves no place in the thread's queue and no lock behind,
an unexpected bug still ends with a message in the thread rather than silence or a stuck
placeholder, and every turn logs one `key=value` line and counts its outcome.

`keep` runs for the life of the process: every `lease / 3` seconds it renews the leases of this
replica's turns (one round trip) and takes over turns whose owner stopped renewing its own
(`bot.store.journal`), running each as if just admitted, in the dead owner's placeholder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.admission import Admission, Admitted, Begun
from bot.answering import Answerer
from bot.errors import BotError, StoreUnavailable
from bot.incoming import Incoming
from bot.metrics import Metrics
from bot.outcome import Outcome, TurnLog
from bot.slack_thread import SlackThread
from bot.store.journal import Lease
from bot.thread_status import ThreadStatus

log = logging.getLogger("bot.turn")


class TurnRunner:
    """Admits messages and runs their turns; every I/O object is injected."""

    def __init__(
        self,
        *,
        admission: Admission,
        answerer: Answerer,
        metrics: Metrics,
        progress_client: AsyncWebClient | None = None,
        log_content: bool = False,
        status: ThreadStatus | None = None,
    ) -> None:
        self.admission = admission
        self.answerer = answerer
        self.metrics = metrics
        self.progress_client = progress_client
        self.status = status
        """Slack's status line as the working signal, where allowed (see `SlackThread`)."""
        self.log_content = log_content
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.draining = False
        """Shutting down: this replica takes over no more turns."""

    async def admit(self, msg: Incoming) -> Admitted | None:
        """With Slack's ack (see `bot.admission`); None when the message is not for the bot."""
        return await self.admission.admit(msg)

    def start(
        self,
        admitted: Admitted,
        client: AsyncWebClient,
        progress_client: AsyncWebClient | None = None,
    ) -> asyncio.Task[Outcome]:
        """Run the turn as a task, after Slack's request is acked, with the clients of the
        message's workspace; remembered until it ends so a shutdown can wait for it (`drain`),
        its lease renewed meanwhile when it owns it."""
        begun = admitted.begun
        if begun is not None and begun.duplicate is None:
            self.admission.journal.hold(begun.lease)
        task = asyncio.ensure_future(self.run(admitted, client, progress_client))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return task

    async def drain(self, seconds: float) -> int:
        """Wait up to `seconds` for in-flight turns; returns how many were still running."""
        pending = {t for t in self.in_flight if t is not asyncio.current_task()}
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=seconds)
        return len(still)

    async def run(
        self,
        admitted: Admitted,
        client: AsyncWebClient,
        progress_client: AsyncWebClient | None = None,
    ) -> Outcome:
        """Answer the message at most once across retries and replicas; returns the outcome."""
        msg = admitted.msg
        turn_log = self._log_for(msg)
        thread = SlackThread(
            client,
            msg.channel,
            msg.thread_ts,
            progress_client=progress_client or self.progress_client,
            team=msg.team,
            status=self.status,
        )
        thread.placeholder = admitted.placeholder
        begun = admitted.begun
        outcome = Outcome.INTERNAL_ERROR
        try:
            if begun is None:
                begun = await self._admit_again(admitted)
                turn_log.step("begin")
            outcome = await self.answerer.respond(msg, begun, thread, turn_log)
        except StoreUnavailable:
            outcome = Outcome.STORE_UNAVAILABLE
            await thread.fail(StoreUnavailable.user_message)
        except Exception:
            # A bug must not leave the user with silence or a stuck placeholder.
            log.exception("turn failed unexpectedly: %s", turn_log.line())
            await thread.fail(BotError.user_message)
        finally:
            await self._end(admitted, begun, outcome, turn_log)
        return outcome

    async def _admit_again(self, admitted: Admitted) -> Begun:
        """The admission could not reach Redis before the ack: try once more from the turn."""
        again = await self.admission.admit(admitted.msg)
        if again is None or again.begun is None:
            raise StoreUnavailable("redis: still unreachable")
        admitted.joined_queue = again.joined_queue
        if again.begun.duplicate is None:
            self.admission.journal.hold(again.begun.lease)
        return again.begun

    async def keep(
        self,
        client_for: Callable[[str], Awaitable[AsyncWebClient | None]],
        *,
        interval: float,
        stop: asyncio.Event,
    ) -> None:
        """Renew this replica's leases and take over dead replicas' turns, until `stop`;
        `client_for` gives a workspace's client (None: the workspace is gone).

        Renewal keeps its pace whatever a takeover waits for (a token rotation, a slow Redis):
        takeovers run in a task of their own, one scan at a time, and no error ends the loop,
        or every lease this replica holds would lapse and its turns be taken over mid-answer.
        """
        journal = self.admission.journal
        scan: asyncio.Task[None] | None = None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            try:
                await journal.renew()
            except Exception:
                log.exception("renewing leases failed; trying again in %.1f s", interval)
            if stop.is_set() or self.draining or (scan is not None and not scan.done()):
                continue
            scan = asyncio.create_task(self._take_over(client_for))
        if scan is not None:
            scan.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scan

    async def _take_over(
        self, client_for: Callable[[str], Awaitable[AsyncWebClient | None]]
    ) -> None:
        """Start the turns whose owner stopped renewing. A turn that cannot start now is left:
        its new lease lapses and a later scan (here or elsewhere) takes it again."""
        try:
            taken = await self.admission.journal.take_over()
        except Exception:
            log.exception("looking for turns to take over failed")
            return
        for claimed in taken:
            try:
                admitted = await self.admission.resume(claimed)
                client = await client_for(admitted.msg.team)
                if client is None:
                    await self._drop(admitted, claimed.lease)
                    continue
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("taking over turn %s failed", claimed.lease.member)
                continue
            self.metrics.takeovers.inc()
            log.warning("taking over turn %s", claimed.lease.member)
            self.start(admitted, client)

    async def _drop(self, admitted: Admitted, lease: Lease) -> None:
        """A taken-over turn of a workspace that is gone (uninstalled): nobody can answer it,
        so it ends unanswered instead of being taken over again and again."""
        log.warning("dropping turn %s: its workspace is not installed", lease.member)
        with contextlib.suppress(StoreUnavailable):
            await self.admission.finish_unanswered(admitted.msg, lease, engage=False)

    def _log_for(self, msg: Incoming) -> TurnLog:
        turn_log = TurnLog()
        turn_log.fields.update(
            kind=msg.kind,
            team=msg.team,
            channel=msg.channel,
            thread=msg.thread_ts,
            ts=msg.ts,
            event=msg.event_id or "-",
        )
        if msg.retry_num:
            turn_log.fields.update(retry=msg.retry_num, retry_reason=msg.retry_reason or "-")
            self.metrics.slack_retries.labels(msg.retry_reason or "unknown").inc()
        if self.log_content:
            turn_log.fields["text"] = repr(msg.text[:200])
        return turn_log

    async def _end(
        self, admitted: Admitted, begun: Begun | None, outcome: Outcome, turn_log: TurnLog
    ) -> None:
        await self.admission.leave(admitted, begun, answered=outcome is Outcome.OK)
        turn_log.fields["outcome"] = outcome.value
        self.metrics.turn(outcome.value)
        log.info("turn %s", turn_log.line())
