"""A Slack message that grows while Azure streams the answer, then becomes the final reply.

It grows in the placeholder message when there is one. When the thread shows Slack's status line
instead (`bot.thread_status`), there is no message yet: the first text is posted as a new reply
in the thread (which also clears the status, as any reply of the app does) and grows from there;
`on_created` tells the thread which message now stands for the answer.

It uses `chat.update` rather than Slack's chat streaming methods:
`chat.startStream`/`stopStream` are Tier 2 (about 20 calls a minute) and need a recipient outside
DMs, while `chat.update` is Tier 3. Updates are throttled to one per `interval` per message (Slack's
guidance for "typing" updates is about one a second) and go through a client without the 429
retry handler: a dropped progress update costs nothing, a retried one would stall the stream. The
first text is shown as soon as it arrives, so it appears within one Slack round trip of Azure's
first token. The final render goes through the normal, retrying client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.formatting import NOTICE_EVENT, defuse_broadcasts, split_markdown

log = logging.getLogger(__name__)

CURSOR = " …"


class LiveMessage:
    """Collects streamed text and shows it in one message of the thread, throttled."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        ts: str | None,
        thread_ts: str | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_created: Callable[[str], None] | None = None,
        ready: Callable[[], Awaitable[bool]] | None = None,
        placeholder: Callable[[], str | None] | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.ts = ts
        """The message that grows; None until the first text is posted (no placeholder)."""
        self.thread_ts = thread_ts
        self.on_created = on_created
        self.interval = interval
        self.clock = clock
        self.text = ""
        self.updates = 0
        self._shown = ""
        self._last = -1e9
        self._task: asyncio.Task[None] | None = None
        self._ready = ready
        """The working signal still being set when the stream began (`bot.working_signal`):
        the first text waits until `ready()` says it may be shown, then grows in the signal's
        placeholder (`placeholder()`) if one was posted; nothing is shown if Slack refused every
        signal."""
        self._placeholder = placeholder
        self._refused = False

    async def on_delta(self, piece: str) -> None:
        """Conversation's delta callback: never waits for Slack."""
        self.text += piece
        idle = self._task is None or self._task.done()
        if idle and self.clock() - self._last >= self.interval:
            self._task = asyncio.ensure_future(self._show())

    async def _after_signal(self) -> bool:
        """Wait for the working signal (once); False when nothing may be shown."""
        if self._ready is not None:
            ready, self._ready = self._ready, None
            shown = await ready()
            self._refused = not shown
            if shown and self.ts is None and self._placeholder is not None:
                self.ts = self._placeholder()
        return not self._refused

    async def _show(self) -> None:
        if not await self._after_signal():
            return
        text = self.text
        if text == self._shown or not text.strip():
            return
        self._last = self.clock()
        self._shown = text
        # While streaming, only the first message's worth is shown; the rest is posted at the end.
        visible = split_markdown(defuse_broadcasts(text))[0] + CURSOR
        blocks = [{"type": "markdown", "text": visible}]
        try:
            if self.ts is None:
                await self._post(visible[:3000], blocks)
            else:
                await self.client.chat_update(
                    channel=self.channel, ts=self.ts, text=visible[:3000], blocks=blocks
                )
            self.updates += 1
        except SlackApiError as exc:
            log.debug("progress update skipped: %s", exc.response.get("error"))

    async def _post(self, text: str, blocks: list[dict[str, str]]) -> None:
        """The first text, as a new reply in the thread; tagged a notice until it is final."""
        response = await self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=self.thread_ts,
            text=text,
            blocks=blocks,
            metadata={"event_type": NOTICE_EVENT, "event_payload": {}},
        )
        ts = response.get("ts")
        if ts:
            self.ts = str(ts)
            if self.on_created is not None:
                self.on_created(self.ts)

    async def settle(self) -> None:
        """Wait for a progress update in flight, so it cannot land after the final one."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
