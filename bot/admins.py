"""Who may change the bot's settings, and the log line each change leaves."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel_settings import show_value

log = logging.getLogger("bot.config")

ADMIN_CACHE_SECONDS = 60.0


class AdminCheck:
    """Who may change settings: BOT_ADMIN_USER_IDS, or, when empty, workspace admins/owners."""

    def __init__(self, admin_ids: Collection[str]) -> None:
        self.admin_ids = frozenset(admin_ids)
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    def who(self) -> str:
        if self.admin_ids:
            return "the bot's admins (" + ", ".join(f"<@{u}>" for u in sorted(self.admin_ids)) + ")"
        return "workspace admins and owners"

    async def allows(self, team: str, user: str, client: AsyncWebClient) -> bool:
        if self.admin_ids:
            return user in self.admin_ids
        cached = self._cache.get((team, user))
        if cached and time.monotonic() - cached[0] < ADMIN_CACHE_SECONDS:
            return cached[1]
        try:
            info = await client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user, exc.response.get("error"))
            return False
        u = info.get("user") or {}
        allowed = bool(u.get("is_admin") or u.get("is_owner") or u.get("is_primary_owner"))
        self._cache[(team, user)] = (time.monotonic(), allowed)
        return allowed


def log_change(
    *, user: str, team: str, channel: str | None, key: str, old: object, new: object
) -> None:
    """The audit line of one change: who, where (a channel, else the workspace), old → new."""
    log.info(
        "settings change team=%s user=%s scope=%s key=%s old=%r new=%r",
        team,
        user,
        channel or "workspace",
        key,
        show_value(old),
        show_value(new),
    )
