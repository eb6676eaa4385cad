"""`BackgroundSignal`: the working signal set while Azure is asked (see `bot.working_signal`)."""

from __future__ import annotations

import asyncio

import pytest

from bot.working_signal import BackgroundSignal, NothingShown


class Show:
    """The signal's Slack side: answers `accepted` after `seconds`; records each call."""

    def __init__(self, accepted: bool = True, seconds: float = 0.0) -> None:
        self.accepted, self.seconds = accepted, seconds
        self.calls = 0
        self.finished_at: float | None = None

    async def __call__(self) -> bool:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        self.finished_at = asyncio.get_running_loop().time()
        return self.accepted


async def answer_after(seconds: float, text: str = "answer") -> str:
    await asyncio.sleep(seconds)
    return text


async def test_the_answer_waits_for_a_signal_that_was_sent() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    show = Show(seconds=0.2)
    signal = BackgroundSignal(show, asyncio.Semaphore(1))
    assert await signal.answer_while(answer_after(0.0)) == "answer"
    assert show.calls == 1 and show.finished_at is not None
    assert loop.time() - started >= 0.2  # the ready answer waited for the signal


async def test_a_signal_not_sent_when_the_answer_is_ready_is_dropped() -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()  # every slot taken (a burst)
    show = Show()
    signal = BackgroundSignal(show, slots)
    assert await signal.answer_while(answer_after(0.01)) == "answer"
    slots.release()
    await asyncio.sleep(0.01)
    assert show.calls == 0 and not signal.sent


async def test_refused_signals_cancel_the_azure_call() -> None:
    show = Show(accepted=False, seconds=0.01)
    signal = BackgroundSignal(show, asyncio.Semaphore(1))
    asking = asyncio.ensure_future(answer_after(5.0))
    with pytest.raises(NothingShown):
        await asyncio.wait_for(signal.answer_while(asking), timeout=1.0)
    assert asking.cancelled()


async def test_settle_says_whether_the_answer_may_be_shown() -> None:
    accepted = BackgroundSignal(Show(seconds=0.01), asyncio.Semaphore(1))
    refused = BackgroundSignal(Show(accepted=False), asyncio.Semaphore(1))
    assert await accepted.settle() is True
    await asyncio.sleep(0)
    assert await refused.settle() is False


async def test_a_signal_that_fails_is_logged_and_the_answer_goes_ahead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> bool:
        raise OSError("Slack unreachable")

    signal = BackgroundSignal(broken, asyncio.Semaphore(1))
    assert await signal.answer_while(answer_after(0.01)) == "answer"
    assert "the working signal failed" in caplog.text
