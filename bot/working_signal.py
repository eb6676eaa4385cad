"""The working signal (status line or placeholder) set while Azure is already asked, and the
rules that keep the thread in order around it (`bot.answering` decides when to use it).

* The answer is saved and posted, and a streamed answer's first text shown, only after a signal
  that was sent has come back: a status set after the reply would hang under the thread for
  two minutes, and a placeholder posted after the answer would stay "Thinking…".
* A signal not sent yet when the answer (or its first text) is ready is dropped: the answer
  itself is the signal, and one Slack call fewer is made.
* Signals wait for a free slot (`SIGNALS_IN_FLIGHT` per process) before they are sent. A calm
  bot never waits; under a burst (hundreds of mentions at once) the calls that matter — acks,
  claims, the Azure requests, the answers — go first, the status calls trickle behind them, and
  those whose answer came first are never made. Slack limits `assistant.threads.setStatus` like
  `chat.postMessage`, so a burst of them would mostly be refused anyway.
* If Slack refuses every signal, the answer could not be posted either: the Azure call is
  cancelled and nothing is saved (`NothingShown`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("bot.turn")

SIGNALS_IN_FLIGHT = 16
"""Working signals sent at once per process (see the module docstring)."""

T = TypeVar("T")


class NothingShown(Exception):
    """Slack refused the status line and the placeholder while Azure was asked: the answer
    could not be shown, so it is not saved either."""


class BackgroundSignal:
    """One turn's working signal, sent in the background once a slot is free."""

    def __init__(self, show: Callable[[], Awaitable[bool]], slots: asyncio.Semaphore) -> None:
        self.sent = False
        self._task = asyncio.ensure_future(self._send(show, slots))

    async def _send(self, show: Callable[[], Awaitable[bool]], slots: asyncio.Semaphore) -> bool:
        async with slots:
            self.sent = True
            try:
                return await show()
            except Exception:
                # Not a refusal (Slack said no such thing): the answer goes ahead without it.
                log.exception("the working signal failed; answering without it")
                return True

    def refused(self) -> bool:
        """Slack refused every signal (known once the signal came back)."""
        task = self._task
        return (
            task.done() and not task.cancelled() and task.exception() is None and not task.result()
        )

    async def settle(self) -> bool:
        """Before anything is shown: drop the signal if it was not sent yet, else wait for it.
        True when the answer may be shown."""
        if not self.sent:
            self._task.cancel()
        if not self._task.done():  # (asyncio.wait costs a pass of the loop even when done)
            await asyncio.wait((self._task,))
        return not self.refused()

    async def answer_while(self, asking: Awaitable[T]) -> T:
        """`asking` (the model call) while the signal is set; cancelled as soon as Slack has
        refused every signal, and its result kept back until the signal has settled."""
        answer = asyncio.ensure_future(asking)
        try:
            if not self._task.done():
                await asyncio.wait((self._task, answer), return_when=asyncio.FIRST_COMPLETED)
            if self.refused():
                raise NothingShown
            reply = await answer
            if not await self.settle():
                raise NothingShown
            return reply
        finally:
            if not answer.done():
                answer.cancel()
                await asyncio.wait((answer,))
            elif not answer.cancelled():
                answer.exception()  # retrieved: an answer abandoned for a refusal is not news
