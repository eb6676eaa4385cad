"""Runs Slack turns: admission before the ack, the turn as a task after it, one log line each.

`slack_app` decides *whether* a message is for the bot; `Admission` decides which delivery answers
it, once; `Answerer` answers; `SlackThread` is what the thread shows. This module ties them
together and keeps the promises that hold whatever happens inside: the turn is tracked until it
ends (so a shutdown can wait for it), it leaves no place in the thread's queue and no lock behind,
an unexpected bug still ends with a message in the thread rather than silence or a stuck
placeholder, and every turn logs one `key=value` line and counts its outcome.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.admission import Admission, Admitted, Begun
from bot.answering import Answerer
from bot.errors import BotError, StoreUnavailable
from bot.incoming import Incoming
from bot.metrics import Metrics
from bot.outcome import Outcome, TurnLog
from bot.slack_thread import SlackThread
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

    async def admit(self, msg: Incoming) -> Admitted | None:
        """Before Slack's request is acked; None when the message is not for the bot."""
        return await self.admission.admit(msg)

    def start(self, admitted: Admitted, client: AsyncWebClient) -> asyncio.Task[Outcome]:
        """Run the turn as a task, after Slack's request is acked; remembered until it ends so
        a shutdown can wait for it (`drain`)."""
        task = asyncio.ensure_future(self.run(admitted, client))
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

    async def run(self, admitted: Admitted, client: AsyncWebClient) -> Outcome:
        """Answer the message at most once across retries and replicas; returns the outcome."""
        msg = admitted.msg
        turn_log = self._log_for(msg)
        thread = SlackThread(
            client,
            msg.channel,
            msg.thread_ts,
            progress_client=self.progress_client,
            team=msg.team,
            status=self.status,
        )
        begun = admitted.begun
        outcome = Outcome.INTERNAL_ERROR
        try:
            if begun is None:
                begun = await self.admission.begin(msg)
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
        self.metrics.turns.labels(outcome.value).inc()
        log.info("turn %s", turn_log.line())
