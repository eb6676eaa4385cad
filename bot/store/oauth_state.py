"""OAuth states in Redis: slack_sdk's `AsyncOAuthStateStore` for the install flow.

`GET /slack/install` issues a state, an unguessable value Slack sends back to
`/slack/oauth_redirect` with the code; the redirect is honoured only with a state this store
issued, at most once, within `expiration_seconds` (Bolt's default and this bot's: 10 minutes).
That is what stops a forged or replayed redirect from installing anything (OAuth 2.0's CSRF
protection; Bolt also checks that the browser carries the state in a cookie).

Each state is a key with a TTL (Redis does the expiring), consumed with `GETDEL` so two replicas
receiving the same redirect cannot both accept it. Nothing else is stored.
"""

from __future__ import annotations

import logging
import re
import secrets

from redis.asyncio import Redis
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.errors import redis_unavailable
from bot.store.keys import Keys

DEFAULT_EXPIRATION_SECONDS = 600

_STATE = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""What an issued state looks like; anything else is refused without asking Redis."""

log = logging.getLogger(__name__)


class RedisOAuthStateStore(AsyncOAuthStateStore):
    """Single-use, expiring OAuth states (see the module docstring)."""

    def __init__(
        self, redis: Redis, keys: Keys, *, expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(24)
        with redis_unavailable():
            await self._redis.set(self._keys.oauth_state(state), "1", ex=self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        if not isinstance(state, str) or not _STATE.fullmatch(state):
            return False
        with redis_unavailable():
            found = await self._redis.getdel(self._keys.oauth_state(state))
        return found is not None
