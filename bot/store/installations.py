"""Slack installations in Redis: slack_sdk's `AsyncInstallationStore`, which Bolt ships no Redis
version of, for OAuth distribution mode.

What is stored, and why: one hash per installation (`Keys.installation`), with the bot token
(and, with token rotation, its refresh token and expiry), the bot's user id and scopes, the
workspace or organisation names and ids, and the installing user's id (and user token, should the
app ever ask for user scopes). The bot needs the token for every call it makes in that workspace;
nothing else about the workspace is kept here. The hash lives until the app is uninstalled (or
its bot token revoked): then `async_delete_all` removes it. Tokens are secrets: protect the Redis
(a password, TLS with ``rediss://``) as you would the tokens themselves; the bot never logs them.

Semantics follow slack_sdk's own stores (`FileInstallationStore`, the SQLAlchemy one), so Bolt's
`AsyncInstallationStoreAuthorize` works unchanged on it:

* An installation is found by its owner: the workspace (`team_id`), or for an org-wide install
  (`is_enterprise_install`, Enterprise Grid) the organisation (`enterprise_id`), whichever team
  of the org the request comes from. Slack's team and enterprise ids are unique across both, so
  the owner alone names the installation; a workspace that later joined an org is still found.
* `find_installation` without a user gives the latest installation; with a user, that user's,
  carrying the latest bot token (a later install by someone else may have replaced it).
* `save_bot` replaces the bot part only: token rotation saves the refreshed bot token that way.
* `delete_installation` without a user deletes every installer entry, with one only theirs;
  `delete_bot` the bot; `delete_all` the whole hash.

Redis errors become `StoreUnavailable`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.errors import redis_unavailable
from bot.store.keys import Keys

BOT = "bot"
INSTALLER = "installer"

log = logging.getLogger(__name__)


def owner_of(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> str | None:
    """The id an installation is stored under: the organisation's for an org-wide install (or
    when no team is known), else the workspace's."""
    if is_enterprise_install or not team_id:
        return enterprise_id or None
    return team_id


def _encode(thing: Installation | Bot) -> str:
    # The attributes are what the constructors take back (slack_sdk's file store does the same);
    # `to_dict()` would turn timestamps into datetimes.
    return json.dumps(vars(thing))


class RedisInstallationStore(AsyncInstallationStore):
    """Bolt's installation store on the bot's Redis (see the module docstring)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    @property
    def logger(self) -> logging.Logger:
        return log

    def _key(self, enterprise_id: str | None, team_id: str | None, org: bool | None) -> str | None:
        owner = owner_of(enterprise_id, team_id, org)
        return self._keys.installation(owner) if owner else None

    async def async_save(self, installation: Installation) -> None:
        """Save a (re)installation. A purge of the same owner left unfinished by an earlier
        uninstall is called off: finishing it at the next start would delete this install."""
        owner = owner_of(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        if owner is None:
            raise ValueError("an installation names neither a workspace nor an organisation")
        fields: dict[FieldT, EncodableT] = {INSTALLER: _encode(installation)}
        fields[f"{INSTALLER}:{installation.user_id or '-'}"] = fields[INSTALLER]
        if installation.bot_token:
            fields[BOT] = _encode(installation.to_bot())
        pipe = self._redis.pipeline(transaction=False)
        pipe.srem(self._keys.purges(), owner)
        pipe.hset(self._keys.installation(owner), mapping=fields)
        with redis_unavailable():
            await pipe.execute()

    async def async_save_bot(self, bot: Bot) -> None:
        key = self._key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        if key is None or not bot.bot_token:
            return
        with redis_unavailable():
            await self._redis.hset(key, BOT, _encode(bot))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        key = self._key(enterprise_id, team_id, is_enterprise_install)
        if key is None:
            return None
        with redis_unavailable():
            raw = await self._redis.hget(key, BOT)
        return Bot(**json.loads(raw)) if raw else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        key = self._key(enterprise_id, team_id, is_enterprise_install)
        if key is None:
            return None
        field = INSTALLER if user_id is None else f"{INSTALLER}:{user_id}"
        with redis_unavailable():
            raw, raw_bot = await self._redis.hmget(key, [field, BOT])
        if not raw:
            return None
        installation = Installation(**json.loads(raw))
        if raw_bot:
            # The latest bot token wins over the one saved with this (possibly older) entry.
            _take_bot(installation, Bot(**json.loads(raw_bot)))
        return installation

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        key = self._key(enterprise_id, team_id, None)
        if key is not None:
            with redis_unavailable():
                await self._redis.hdel(key, BOT)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        key = self._key(enterprise_id, team_id, None)
        if key is None:
            return
        with redis_unavailable():
            if user_id is not None:
                await self._redis.hdel(key, f"{INSTALLER}:{user_id}")
                return
            names = [str(f) for f in await self._redis.hkeys(key)]
            installers = [f for f in names if f == INSTALLER or f.startswith(INSTALLER + ":")]
            if installers:
                await self._redis.hdel(key, *installers)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        key = self._key(enterprise_id, team_id, None)
        if key is not None:
            with redis_unavailable():
                await self._redis.delete(key)

    async def async_note_org_team(self, enterprise_id: str, team_id: str) -> None:
        """Remember a workspace of an org-wide install that used the bot, so uninstalling the
        org purges that workspace's data too (its keys are named by the workspace), and the
        workspace's installation can be found from its id alone (`async_org_of`)."""
        with redis_unavailable():
            await self._redis.sadd(self._keys.org_teams(enterprise_id), team_id)
            await self._redis.set(self._keys.org_of(team_id), enterprise_id)

    async def async_org_of(self, team_id: str) -> str | None:
        """The organisation whose org-wide install serves the workspace, if one was noted."""
        with redis_unavailable():
            found = await self._redis.get(self._keys.org_of(team_id))
        return str(found) if found else None

    async def async_org_teams(self, enterprise_id: str) -> set[str]:
        """The workspaces `async_note_org_team` remembered for the organisation."""
        with redis_unavailable():
            return {str(t) for t in await self._redis.smembers(self._keys.org_teams(enterprise_id))}


def _take_bot(installation: Installation, bot: Bot) -> None:
    values: dict[str, Any] = {
        "bot_token": bot.bot_token,
        "bot_id": bot.bot_id,
        "bot_user_id": bot.bot_user_id,
        "bot_scopes": bot.bot_scopes,
        "bot_refresh_token": bot.bot_refresh_token,
        "bot_token_expires_at": bot.bot_token_expires_at,
    }
    for name, value in values.items():
        setattr(installation, name, value)
