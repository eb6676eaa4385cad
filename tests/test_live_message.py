"""`LiveMessage` when the stream begins before the working signal is up (`bot.answering` asks
Azure while Slack sets the status line)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.live_message import LiveMessage


class Recorder:
    """Stands in for the Slack client: records posts and updates."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def chat_postMessage(self, **args: Any) -> dict[str, str]:
        self.calls.append(("post", args))
        return {"ts": "200.000001"}

    async def chat_update(self, **args: Any) -> dict[str, str]:
        self.calls.append(("update", args))
        return {"ts": args["ts"]}


def live(client: Recorder, signal: asyncio.Future[bool], placeholder: str | None) -> LiveMessage:
    async def ready() -> bool:
        return await signal

    return LiveMessage(
        client,  # type: ignore[arg-type]
        channel="C1",
        ts=None,
        thread_ts="100.000001",
        interval=0.0,
        ready=ready,
        placeholder=lambda: placeholder,
    )


async def test_the_first_text_waits_for_the_signal_and_grows_in_its_placeholder() -> None:
    client = Recorder()
    signal: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    message = live(client, signal, "150.000001")
    await message.on_delta("Hello")
    await asyncio.sleep(0.01)
    assert client.calls == []  # nothing shown before the signal is up
    signal.set_result(True)
    await message.settle()
    assert [(kind, args.get("ts")) for kind, args in client.calls] == [("update", "150.000001")]


async def test_under_a_status_line_the_first_text_is_a_reply_of_its_own() -> None:
    client = Recorder()
    signal: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    signal.set_result(True)
    message = live(client, signal, None)
    await message.on_delta("Hello")
    await message.settle()
    assert [kind for kind, _ in client.calls] == ["post"]
    assert message.ts == "200.000001"


async def test_nothing_is_shown_when_slack_refused_every_signal() -> None:
    client = Recorder()
    signal: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    message = live(client, signal, None)
    await message.on_delta("Hello")
    signal.set_result(False)
    await message.settle()
    await message.on_delta(" world")
    await message.settle()
    assert client.calls == []
