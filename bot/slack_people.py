"""People's display names, from Slack's `users.info` (scope `users:read`), cached in Redis.

A prompt names the author of every message and turns `<@U…>` mentions into `@Name`, so a thread
of thirty messages by four people needs up to four names: each is asked of Slack once and kept
for `ttl_seconds` (about a day: names change rarely, and `users.info` is Tier 4, 100+ a minute).
One Redis key per person (not one hash per workspace) so each can expire on its own and, in a
Redis Cluster, be read in one pipeline without cross-slot commands. Each process also keeps the
names it used for `local_seconds`, so a turn usually costs no Redis round trip for them.

The display name is the profile's `display_name`, else its `real_name`, else the account name;
a person Slack does not know (`user_not_found`, e.g. someone from another organisation) is
remembered under their id; a failed call is asked again next time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat_types import StoredMessage
from bot.errors import REDIS_ERRORS
from bot.slack_text import mentioned_users
from bot.store import Keys

log = logging.getLogger(__name__)


def people_in(records: Iterable[StoredMessage]) -> set[str]:
    """Everyone whose name a text of these messages shows: authors and mentioned people."""
    people: set[str] = set()
    for record in records:
        if record.get("user"):
            people.add(record["user"])
        people |= mentioned_users(record["content"])
    return people


def speaker(record: StoredMessage, names: dict[str, str]) -> str:
    """Who wrote a message that is not the bot's, as a prompt names them: a person by name,
    another bot or app as ``[bot] Name``."""
    if record.get("bot"):
        return f"[bot] {record.get('name', 'a bot')}"
    user = record.get("user", "")
    return names.get(user) or user or "someone"


def display_name(user: dict[str, Any]) -> str:
    """The name Slack shows for a `users.info` user object."""
    profile = user.get("profile") or {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name")):
        if isinstance(name, str) and name.strip():
            return name.strip()
    return str(user.get("name") or user.get("id") or "someone")


class People:
    """Looks up display names; Redis errors and Slack refusals degrade to ids, never fail."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        ttl_seconds: int = 86_400,
        local_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.local_seconds = local_seconds
        self.clock = clock
        self._local: dict[tuple[str, str], tuple[float, str]] = {}

    async def names(
        self, client: AsyncWebClient, team: str, users: Iterable[str]
    ) -> dict[str, str]:
        """Display names of `users` (ids without a known name are left out)."""
        wanted = sorted({u for u in users if u})
        now = self.clock()
        known = {u: hit[1] for u in wanted if (hit := self._local.get((team, u))) and hit[0] > now}
        missing = [u for u in wanted if u not in known]
        if missing:
            cached = await self._cached(team, missing)
            unknown = [u for u in missing if u not in cached]
            if unknown:
                found = await asyncio.gather(*(self._ask(client, u) for u in unknown))
                fresh = {u: name for u, name in zip(unknown, found, strict=True) if name}
                await self._remember(team, fresh)
                cached.update(fresh)
            if len(self._local) > 10_000:
                self._local.clear()
            for user, name in cached.items():
                self._local[(team, user)] = (now + self.local_seconds, name)
            known.update(cached)
        return known

    async def _cached(self, team: str, users: list[str]) -> dict[str, str]:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.get(self.keys.person(team, user))
                values = await pipe.execute()
        except REDIS_ERRORS:
            return {}
        return {u: str(v) for u, v in zip(users, values, strict=True) if v}

    async def _remember(self, team: str, names: dict[str, str]) -> None:
        if not names:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user, name in names.items():
                    pipe.set(self.keys.person(team, user), name, ex=self.ttl_seconds)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("could not cache names (%s)", type(exc).__name__)

    async def _ask(self, client: AsyncWebClient, user: str) -> str | None:
        try:
            response = await client.users_info(user=user)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "user_not_found":
                return user  # remembered as is, so Slack is not asked on every turn
            log.warning("users.info failed for %s: %s", user, error)
            return None
        info = response.get("user")
        return display_name(info) if isinstance(info, dict) else None
