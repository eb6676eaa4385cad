"""A Slack message the bot should answer, as the turn code sees it (no Bolt types here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.chat_types import FileRef


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
    """`mention`, `followup` (a thread reply without mention) or `dm`."""
    retry_num: str | None = None
    retry_reason: str | None = None
    files: tuple[FileRef, ...] = ()
    """Files attached to the message (references; fetched when the prompt needs them)."""
    bot_user: str | None = None
    """The bot's own user id in this workspace (tells its answers in a thread from others')."""

    @property
    def thread_id(self) -> str:
        """The store's id of the thread: ``team:channel:thread_ts``."""
        return f"{self.team}:{self.channel}:{self.thread_ts}"

    @property
    def starts_thread(self) -> bool:
        """A top-level message (or DM): its answer starts a new thread under it."""
        return self.thread_ts == self.ts

    def claim_names(self) -> list[str]:
        """The dedup claims of this message. Slack gives one message several event ids (the
        `app_mention` and the `message` event, an edit re-firing `app_mention`), so the claim
        that makes one answer per message is on ``team:channel:ts``; the one on the event id
        catches redeliveries of one event (`X-Slack-Retry-Num`)."""
        claims = [f"msg:{self.team}:{self.channel}:{self.ts}"]
        if self.event_id:
            claims.append(f"ev:{self.team}:{self.event_id}")
        return claims


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """Remove `<@BOT>` / `<@BOT|name>` tokens; other mentions stay (they carry meaning)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()
