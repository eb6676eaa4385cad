"""A Slack message that grows while Azure streams the answer, then becomes the final reply.

It uses `chat.update` on the placeholder rather than Slack's chat streaming methods:
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
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.formatting import defuse_broadcasts, split_markdown

log = logging.getLogger(__name__)

CURSOR = " …"


class LiveMessage:
    """Collects streamed text and shows it in the placeholder message, throttled."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        ts: str,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel
        self.ts = ts
        self.interval = interval
        self.clock = clock
        self.text = ""
        self.updates = 0
        self._shown = ""
        self._last = -1e9
        self._task: asyncio.Task[None] | None = None

    async def on_delta(self, piece: str) -> None:
        """Conversation's delta callback: never waits for Slack."""
        self.text += piece
        idle = self._task is None or self._task.done()
        if idle and self.clock() - self._last >= self.interval:
            self._task = asyncio.ensure_future(self._show())

    async def _show(self) -> None:
        text = self.text
        if text == self._shown or not text.strip():
            return
        self._last = self.clock()
        self._shown = text
        # While streaming, only the first message's worth is shown; the rest is posted at the end.
        visible = split_markdown(defuse_broadcasts(text))[0] + CURSOR
        try:
            await self.client.chat_update(
                channel=self.channel,
                ts=self.ts,
                text=visible[:3000],
                blocks=[{"type": "markdown", "text": visible}],
            )
            self.updates += 1
        except SlackApiError as exc:
            log.debug("progress update skipped: %s", exc.response.get("error"))

    async def settle(self) -> None:
        """Wait for a progress update in flight, so it cannot land after the final one."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
