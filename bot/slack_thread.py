"""The bot's side of one Slack thread: the working signal, notices, and the answer.

The working signal appears at once (Slack wants the event acked within 3 seconds and the answer
takes longer). Where the workspace allows it, it is Slack's own status line under the thread
("<App> is thinking…", `bot.thread_status`), which adds no message to the thread; Slack clears
it when the app posts its reply, so the answer needs no call to remove it. Elsewhere it is a
"Thinking…" placeholder message that the answer's first message replaces. Either way further
messages follow in the thread, in order, and a streamed answer grows in one message
(`bot.live_message`): the placeholder, or its own first reply when there is none.

Whatever happens, the placeholder is never the last word: if Slack refuses the update, the
message is posted instead, and `fail()` replaces it with the error. A status that no delivered
message cleared is cleared explicitly.

Slack calls go through the injected client; a refused call (`SlackApiError`: `channel_not_found`,
`not_in_channel`, `ratelimited` after the client's own retry, …) is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.formatting import SlackMessage, notice
from bot.live_message import LiveMessage
from bot.thread_status import ThreadStatus

log = logging.getLogger("bot.turn")

THINKING = ":hourglass_flowing_sand: _Thinking…_"


class SlackThread:
    """Posts into one thread with an injected client, and remembers its own placeholder."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        *,
        progress_client: AsyncWebClient | None = None,
        team: str = "",
        status: ThreadStatus | None = None,
    ) -> None:
        self.client = client
        self.progress_client = progress_client or client
        """For streamed progress updates: a client without the 429 retry (see LiveMessage)."""
        self.channel = channel
        self.thread_ts = thread_ts
        self.team = team
        self.status = status
        """Slack's status line, where the workspace allows it; None: always the placeholder."""
        self.status_shown = False
        self.placeholder: str | None = None
        """The ts of the message standing for the answer: the "Thinking…" placeholder, or the
        first message of a streamed answer."""

    async def show_thinking(self) -> bool:
        """Show the status line, or else post the placeholder; False when Slack refused both
        (nothing can be shown then)."""
        if self.status is not None and await self.status.show(
            self.client, self.team, self.channel, self.thread_ts
        ):
            self.status_shown = True
            return True
        self.placeholder = await self.post(notice(THINKING))
        return self.placeholder is not None

    def status_trusted(self) -> bool:
        """Whether the status line worked in this workspace lately: the turn may then ask Azure
        while it is set (`bot.answering`); elsewhere the signal comes first, so that a channel
        where Slack refuses everything costs no Azure call."""
        return self.status is not None and self.status.works_in(self.team)

    def live(
        self,
        interval: float,
        on_created: Callable[[str], None],
        ready: Callable[[], Awaitable[bool]] | None = None,
    ) -> LiveMessage:
        """A message that grows while the answer streams in: the placeholder, or (under a
        status line) a reply of its own, posted with the first text; then it stands for the
        answer, and `on_created` gets its ts (kept with the turn for a takeover). With `ready`
        (the working signal still being set), the first text waits for it."""

        def adopt(ts: str) -> None:
            self.placeholder = ts
            on_created(ts)

        return LiveMessage(
            self.progress_client,
            channel=self.channel,
            ts=self.placeholder,
            thread_ts=self.thread_ts,
            interval=interval,
            on_created=adopt,
            ready=ready,
            placeholder=lambda: self.placeholder,
        )

    async def say(self, message: SlackMessage) -> bool:
        """A notice of its own in the thread (quota, help); True when Slack took it."""
        return await self.post(message) is not None

    async def deliver(self, messages: list[SlackMessage]) -> bool:
        """The first message replaces the placeholder (or is posted when there is none), the rest
        follow in the thread, in order. True when Slack took all of them."""
        first, rest = messages[0], messages[1:]
        if self.placeholder is not None:
            ok = await self._replace(self.placeholder, first)
            self.placeholder = None
        else:
            ok = await self.post(first) is not None
        for extra in rest:
            ok = await self.post(extra) is not None and ok
        if not ok and self.status_shown and self.status is not None:
            await self.status.clear(self.client, self.channel, self.thread_ts)
        return ok

    async def fail(self, text: str) -> None:
        """An error in one line: in the placeholder's place if there is one, else posted."""
        await self.deliver([notice(f":warning: {text}")])

    async def post(self, message: SlackMessage) -> str | None:
        """chat.postMessage in the thread; returns the ts, or None (logged) when Slack refuses."""
        try:
            resp = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, **message.as_args()
            )
        except SlackApiError as exc:
            log.error(
                "chat.postMessage failed channel=%s thread=%s error=%s",
                self.channel,
                self.thread_ts,
                exc.response.get("error"),
            )
            return None
        ts = resp.get("ts")
        return str(ts) if ts else None

    async def _replace(self, ts: str, message: SlackMessage) -> bool:
        """chat.update; if Slack refuses the update, post instead."""
        try:
            await self.client.chat_update(channel=self.channel, ts=ts, **message.as_args())
            return True
        except SlackApiError as exc:
            log.warning(
                "chat.update failed channel=%s ts=%s error=%s; posting instead",
                self.channel,
                ts,
                exc.response.get("error"),
            )
        return await self.post(message) is not None
