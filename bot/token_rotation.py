"""Slack token rotation, once across replicas.

With token rotation on (the app's *token_rotation_enabled*), an installation's bot token expires
12 hours after it is issued (`expires_in: 43200`) and comes with a refresh token; `oauth.v2.access`
with `grant_type=refresh_token` gives a new token and a new refresh token, and Slack revokes the
refresh token it was given. So two replicas must not rotate one installation at the same time:
the second would send a refresh token Slack has just revoked, and the installation would be
stuck until it is installed again.

`LockedTokenRotator` is slack_sdk's `AsyncTokenRotator` (which Bolt's authorization calls, and so
does `bot.workspaces`) behind a lock per installation in Redis: the holder reads the installation
again (another replica may have rotated it meanwhile: then that is the answer), rotates, and saves
before it lets go. Bolt saves what it gets back a second time, which changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import REDIS_ERRORS, redis_unavailable
from bot.store.installations import RedisInstallationStore, owner_of
from bot.store.keys import Keys
from bot.store.scripts import Script

_RELEASE = Script("release")
LOCK_MS = 30_000


def expiring(installation: Installation, minutes: int, now: float | None = None) -> bool:
    """A bot or user token of the installation expires within `minutes` (Bolt's window)."""
    limit = (time.time() if now is None else now) + minutes * 60
    return any(
        at is not None and at <= limit
        for at in (installation.bot_token_expires_at, installation.user_token_expires_at)
    )


class LockedTokenRotator(AsyncTokenRotator):
    """slack_sdk's rotator, one replica at a time per installation (see the module)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        client: AsyncWebClient,
        store: RedisInstallationStore,
        redis: Redis,
        keys: Keys,
        wait_seconds: float = 10.0,
    ) -> None:
        super().__init__(client_id=client_id, client_secret=client_secret, client=client)
        self.store = store
        self._redis = redis
        self._keys = keys
        self.wait_seconds = wait_seconds

    async def perform_token_rotation(
        self, *, installation: Installation, minutes_before_expiration: int = 120
    ) -> Installation | None:
        """The rotated installation (saved), or None when no token needs it yet."""
        if not expiring(installation, minutes_before_expiration):
            return None
        owner = owner_of(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        if owner is None:
            return None
        lock, token = self._keys.rotation_lock(owner), secrets.token_hex(8)
        if not await self._acquire(lock, token):
            return None  # another replica is at it; the token still has its window left
        try:
            latest = await self.store.async_find_installation(
                enterprise_id=installation.enterprise_id,
                team_id=installation.team_id,
                user_id=installation.user_id,
                is_enterprise_install=installation.is_enterprise_install,
            )
            if latest is None:
                return None  # uninstalled meanwhile
            if not expiring(latest, minutes_before_expiration):
                return latest  # rotated by another replica
            rotated = await super().perform_token_rotation(
                installation=latest, minutes_before_expiration=minutes_before_expiration
            )
            if rotated is not None:
                await self.store.async_save(rotated)
            return rotated
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await _RELEASE.run(self._redis, [lock], [token])

    async def _acquire(self, lock: str, token: str) -> bool:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            with redis_unavailable():
                if await self._redis.set(lock, token, nx=True, px=LOCK_MS):
                    return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
