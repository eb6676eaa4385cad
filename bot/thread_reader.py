"""Reading a thread the bot was called into, once, with `conversations.replies`.

Slack facts: `conversations.replies(channel, ts)` returns the parent and its replies oldest first,
`has_more` and `response_metadata.next_cursor` (empty on the last page); it needs
`channels:history`, `groups:history`, `im:history` or `mpim:history` for the kind of
conversation; it is Tier 3 (about 50 calls a minute) for internal apps, and Slack answers a burst
over that with HTTP 429, `error: ratelimited` and an integer `Retry-After` (seconds). The bot
waits as Slack asks while the turn's deadline allows; if Slack still refuses, the turn answers
from what it has and says so.

With `include_all_metadata`, messages carry the `metadata` the bot posted them with, which tells
its answers (`slackgpt_answer`) from its placeholders and notices; for messages posted before the
bot tagged them, an answer is the bot's message with a `context` block (the usage line).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat_types import StoredMessage
from bot.formatting import ANSWER_EVENT
from bot.slack_client import TRANSIENT_ERRORS, client_like, retry_after
from bot.slack_files import file_refs

log = logging.getLogger(__name__)

READ_SUBTYPES = (None, "thread_broadcast", "file_share", "bot_message")


@dataclass
class ThreadRead:
    """A thread's earlier messages; `refused` is Slack's error when it stopped the reading."""

    messages: list[StoredMessage] = field(default_factory=list)
    refused: str | None = None

    @property
    def worth_retrying(self) -> bool:
        """Whether Slack's refusal is of the passing kind (a rate limit, an outage), so that a
        later turn may read the thread whole; `missing_scope` or `not_in_channel` stay."""
        return self.refused in TRANSIENT_ERRORS


def from_slack(message: dict[str, Any], bot_user_id: str | None) -> StoredMessage | None:
    """A Slack message (event or API result) as the store keeps it; None for what is not part
    of the conversation (joins, the bot's placeholders and notices)."""
    ts = message.get("ts")
    if not isinstance(ts, str) or message.get("subtype") not in READ_SUBTYPES:
        return None
    text = str(message.get("text") or "")
    record: StoredMessage = {"id": ts, "role": "user", "content": text}
    files = file_refs(message.get("files"))
    if files:
        record["files"] = files
    user = message.get("user")
    if bot_user_id is not None and user == bot_user_id:
        return _own(message, record)
    if message.get("bot_id") or message.get("subtype") == "bot_message":
        profile = message.get("bot_profile") or {}
        record["bot"] = True
        record["name"] = str(profile.get("name") or message.get("username") or "a bot")
        return record
    if not isinstance(user, str) or not (text or files):
        return None
    record["user"] = user
    return record


def _own(message: dict[str, Any], record: StoredMessage) -> StoredMessage | None:
    metadata = message.get("metadata") or {}
    if isinstance(metadata, dict) and metadata.get("event_type"):
        is_answer = metadata.get("event_type") == ANSWER_EVENT
    else:
        is_answer = any(b.get("type") == "context" for b in message.get("blocks") or [])
    if not is_answer:
        return None
    record["role"] = "assistant"
    record.pop("files", None)
    # The answer's whole text is in its markdown block; `text` is a fallback cut at 3,000.
    markdown = [
        b["text"]
        for b in message.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "markdown" and isinstance(b.get("text"), str)
    ]
    if markdown:
        record["content"] = "\n".join(markdown)
    return record


class ThreadReader:
    """Reads whole threads; the client should not retry 429s itself (the reader does, within
    its deadline)."""

    def __init__(
        self,
        *,
        page_size: int = 200,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.page_size = page_size
        self.sleep = sleep
        self.clock = clock

    async def read(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        bot_user_id: str | None,
        *,
        deadline: float,
    ) -> ThreadRead:
        """Every page of the thread, as stored messages, by `deadline` (a `clock()` time)."""
        read = ThreadRead()
        cursor: str | None = None
        # Without slack_sdk's 429 handler, which would wait any Retry-After however long: the
        # reader waits only as long as the turn's deadline allows.
        client = client_like(client, str(client.token), retry_rate_limits=False)
        while True:
            page = await self._page(client, channel, thread_ts, cursor, deadline)
            if isinstance(page, str):
                read.refused = page
                return read
            for message in page.get("messages") or []:
                record = from_slack(message, bot_user_id) if isinstance(message, dict) else None
                if record is not None:
                    read.messages.append(record)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return read

    async def _page(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        cursor: str | None,
        deadline: float,
    ) -> dict[str, Any] | str:
        """One page; waits out rate limits while the deadline allows; Slack's error when it
        refused."""
        while True:
            try:
                response = await client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    limit=self.page_size,
                    cursor=cursor,
                    include_all_metadata=True,
                )
                return (
                    dict(response.data) if isinstance(response.data, dict) else "invalid_response"
                )
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                wait = retry_after(exc.response.headers)
                if error != "ratelimited" or self.clock() + wait > deadline:
                    log.warning("conversations.replies failed channel=%s: %s", channel, error)
                    return error
                await self.sleep(wait)
