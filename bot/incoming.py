"""A Slack message the bot should answer, as the turn code sees it (no Bolt types here)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

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

    def to_json(self) -> str:
        """The message as the turn journal keeps it (see `bot.store.journal`). Built by hand:
        `dataclasses.asdict` deep-copies every field, and this runs for every admitted turn."""
        return orjson.dumps(
            {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> Incoming:
        data: dict[str, Any] = json.loads(text)
        data["files"] = tuple(data.get("files") or ())
        return cls(**data)


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """Remove `<@BOT>` / `<@BOT|name>` tokens; other mentions stay (they carry meaning)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()
