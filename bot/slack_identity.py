"""Who the bot is in its workspace: its user id, learned with `auth.test` when the process starts.

The event path needs the bot's user id to strip `<@BOT>` from questions and to leave messages
that mention the bot to the `app_mention` event. Bolt learns it lazily, on the first request that
needs authorization; learning it at start means the fast event path holds no hidden state and
answers from the first event on. A token Slack refuses (`invalid_auth`, `token_revoked`, …) stops
the start with the fix; a Slack that cannot be reached only delays it: the id is asked for again,
at most every `retry_seconds`, when an event needs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError

log = logging.getLogger(__name__)

REFUSED_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


class BotIdentity:
    """The bot's user id in its (single) workspace."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._next_try = 0.0
        self.user_id: str | None = None
        self.bot_id: str | None = None
        self.team_id: str | None = None

    async def learn(self) -> None:
        """Call `auth.test` now. Raises `ConfigError` when Slack refuses the token; logs and
        returns when Slack cannot be reached (the id is then learned later)."""
        self._next_try = self._clock() + self._retry_seconds
        try:
            response = await self._client.auth_test()
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in REFUSED_TOKEN:
                raise ConfigError(
                    f"Slack refused SLACK_BOT_TOKEN ({error}). Copy the Bot User OAuth Token "
                    "(xoxb-…) from your Slack app's OAuth & Permissions page, and reinstall the "
                    "app if the token was revoked."
                ) from None
            log.warning("auth.test failed (%s); will ask again", error)
            return
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("auth.test could not reach Slack (%s); will ask again", type(exc).__name__)
            return
        self.user_id = str(response.get("user_id") or "") or None
        self.bot_id = str(response.get("bot_id") or "") or None
        self.team_id = str(response.get("team_id") or "") or None

    async def bot_user_id(self) -> str | None:
        """The bot's user id; asks Slack again (rate-limited) while it is unknown."""
        if self.user_id is None and self._clock() >= self._next_try:
            try:
                await self.learn()
            except ConfigError as exc:
                log.error("%s", exc)
        return self.user_id
