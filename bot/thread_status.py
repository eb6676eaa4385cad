"""Slack's own working signal under a thread ("<App name> is thinking…"), and the memory of the
workspaces where Slack refuses it.

Slack facts this relies on:

* `assistant.threads.setStatus(channel_id, thread_ts, status)` shows "<App name> <status>" under
  the thread. Slack clears it by itself when the app posts a reply in that thread, and after two
  minutes without one; `status=""` clears it at once.
* It began as an assistant-container method (scope `assistant:write`). Since 2026-03-05 it also
  accepts a bot token with `chat:write`, so an app can show it in channel threads. Where a
  workspace, a token or an older Slack does not allow it, the call answers `ok: false` with an
  error such as `missing_scope` or `not_allowed_token_type`.
* Some errors say nothing about the workspace: rate limits and Slack's own failures
  (`ratelimited`, `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout`,
  HTTP 5xx), and errors about this one channel or token (`channel_not_found`, `not_in_channel`,
  `is_archived`, `invalid_auth`, `token_revoked`, `account_inactive`). Those are not
  remembered: that turn falls back to the placeholder message. For the channel and token
  errors, posting the placeholder then fails the same way and ends the turn: before Azure is
  asked, or (where the status had worked lately and Azure was asked meanwhile,
  `bot.working_signal`) with the Azure call cancelled and nothing saved.

A refusal is kept in Redis (`Keys.status_refused`) for `refusal_ttl` seconds (a day), so every
replica falls back at once and Slack is asked again the next day. Each process also caches what it
read for a minute, so a turn usually makes no Redis round trip for it, and a refused workspace
costs one Slack call, not one per turn. If Redis cannot be read, the status is tried anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import StoreUnavailable, redis_unavailable
from bot.slack_client import TRANSIENT_ERRORS
from bot.store import Keys

log = logging.getLogger("bot.turn")

STATUS = "is thinking…"
REFUSAL_TTL_SECONDS = 86_400
TRUSTED_SECONDS = 600.0
"""How long an accepted status vouches for the next ones in its workspace (`works_in`)."""
NOT_ABOUT_THE_WORKSPACE = TRANSIENT_ERRORS | frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
    }
)
"""Errors that do not mean "this workspace does not allow a status here" (module docstring)."""


def refusal_of(exc: SlackApiError) -> str | None:
    """The error to remember for the workspace, or None when it is about something else."""
    status = exc.response.status_code
    error = str(exc.response.get("error") or "")
    if status == 429 or status >= 500 or not error or error in NOT_ABOUT_THE_WORKSPACE:
        return None
    return error


class ThreadStatus:
    """Shows and clears the status line; remembers, per workspace, that Slack refused it."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        refusal_ttl: int = REFUSAL_TTL_SECONDS,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.refusal_ttl = refusal_ttl
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._known: dict[str, tuple[float, bool]] = {}
        """team → (when read, refused)."""
        self._accepted: dict[str, float] = {}
        """team → when Slack last accepted a status there (this process)."""

    def works_in(self, team: str) -> bool:
        """Whether Slack accepted a status in this workspace lately (within `TRUSTED_SECONDS`),
        so a turn may ask Azure while the status is still being set (`bot.answering`)."""
        accepted = self._accepted.get(team)
        return accepted is not None and self.clock() - accepted < TRUSTED_SECONDS

    async def show(self, client: AsyncWebClient, team: str, channel: str, thread_ts: str) -> bool:
        """Set the status under the thread; False when Slack refused it (now or earlier in this
        workspace): the caller then shows a placeholder message instead."""
        if await self.refused(team):
            return False
        try:
            await client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread_ts, status=STATUS
            )
        except SlackApiError as exc:
            refusal = refusal_of(exc)
            log.warning(
                "assistant.threads.setStatus refused team=%s channel=%s error=%s%s",
                team,
                channel,
                exc.response.get("error"),
                "; remembered for the workspace, placeholders from now on" if refusal else "",
            )
            self._accepted.pop(team, None)
            if refusal is not None:
                await self._remember(team, refusal)
            return False
        self._accepted[team] = self.clock()
        return True

    async def clear(self, client: AsyncWebClient, channel: str, thread_ts: str) -> None:
        """Clear a status no reply will clear (best effort: Slack drops it after 2 minutes)."""
        try:
            await client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread_ts, status=""
            )
        except SlackApiError as exc:
            log.debug("clearing the status failed: %s", exc.response.get("error"))

    async def refused(self, team: str) -> bool:
        """Whether Slack refused the status in this workspace lately (cached for a minute)."""
        known = self._known.get(team)
        if known is not None and self.clock() - known[0] < self.cache_seconds:
            return known[1]
        try:
            with redis_unavailable():
                refused = bool(await self.redis.exists(self.keys.status_refused(team)))
        except StoreUnavailable as exc:
            log.warning("status refusals unreadable (%s); trying the status", exc)
            return False
        self._known[team] = (self.clock(), refused)
        return refused

    async def _remember(self, team: str, error: str) -> None:
        self._known[team] = (self.clock(), True)
        try:
            with redis_unavailable():
                await self.redis.set(self.keys.status_refused(team), error, ex=self.refusal_ttl)
        except StoreUnavailable as exc:
            log.warning("could not remember the status refusal of %s (%s)", team, exc)
