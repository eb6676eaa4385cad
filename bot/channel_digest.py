"""A channel's recent messages as text for a prompt: who said what, newest kept, within a token
budget. The assistant pane uses it when a user asks about the channel they are looking at.

Slack facts this relies on:

* `conversations.history(channel, limit)` returns a channel's top-level messages (and thread
  replies also sent to the channel) newest first, up to `limit` (at most 1,000 a page). It
  needs `channels:history` or `groups:history`, which the bot has for its message events.
* With a bot token it reads only channels the bot is a member of: otherwise Slack answers
  `not_in_channel` (public channels) or `channel_not_found` (private ones). The bot never reads
  a channel its members did not invite it to.
* Messages carry `<@U…>`/`<#C…|name>` tokens (made readable by `bot.slack_text`), and the bot's
  own posts carry the metadata it tagged them with (its placeholders and notices are skipped, as
  in a thread: `bot.thread_reader.from_slack`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat_types import StoredMessage
from bot.conversation import estimate_tokens
from bot.slack_people import People, people_in, speaker
from bot.slack_text import readable
from bot.thread_reader import from_slack

log = logging.getLogger(__name__)

NOT_A_MEMBER = ("not_in_channel", "channel_not_found")


@dataclass(frozen=True, slots=True)
class Digest:
    """What was read: `lines` oldest first (`Name: text`), or Slack's refusal."""

    channel: str
    lines: tuple[str, ...] = ()
    refused: str | None = None

    @property
    def not_a_member(self) -> bool:
        return self.refused in NOT_A_MEMBER


class ChannelDigest:
    """Reads one page of a channel's history; names come from the injected `People`."""

    def __init__(self, people: People, *, page_size: int = 100) -> None:
        self.people = people
        self.page_size = page_size

    async def read(
        self, client: AsyncWebClient, team: str, channel: str, bot_user: str | None, budget: int
    ) -> Digest:
        """The newest messages of `channel` that fit in `budget` tokens, oldest first."""
        try:
            response = await client.conversations_history(
                channel=channel, limit=self.page_size, include_all_metadata=True
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            log.info("conversations.history refused channel=%s: %s", channel, error)
            return Digest(channel, refused=error)
        records = [
            record
            for message in response.get("messages") or []
            if isinstance(message, dict) and (record := from_slack(message, bot_user)) is not None
        ]
        names = await self.people.names(client, team, people_in(records))
        kept: list[str] = []
        for record in records:  # newest first: the oldest are the ones left out
            line = _line(record, names)
            budget -= estimate_tokens(line)
            if budget < 0:
                break
            kept.append(line)
        return Digest(channel, tuple(reversed(kept)))


def _line(record: StoredMessage, names: dict[str, str]) -> str:
    text = readable(record["content"], names).strip() or "(a file)"
    if record["role"] == "assistant":
        return f"you (the assistant): {text}"
    return f"{speaker(record, names)}: {text}"
