"""Data lifecycle in Slack: uninstalling purges a workspace, and people can make the bot forget.

* `app_uninstalled`, and `tokens_revoked` naming the bot's token: the installation is deleted
  (OAuth mode) and every key of the workspace purged (`bot.purge`); for an org-wide install, the
  organisation's and those of each of its workspaces that used the bot. Slack sends both events
  when an app is uninstalled, in no guaranteed order; each is enough, the second finds nothing.
  A `tokens_revoked` naming only user tokens deletes those users' installer entries.
* The *Forget this thread* message shortcut deletes the stored conversation of the thread the
  message is in (Slack does not run an app's slash commands inside threads, so a shortcut on any
  of its messages is how a thread is named). Anyone who can see the message may use it; the
  confirmation is ephemeral, for them only, in the thread.

Slack facts: `tokens_revoked` carries `tokens.oauth` and `tokens.bot`, lists of user ids, not
tokens; a message shortcut's payload (`type: message_action`) carries the `callback_id`, the
`message` (with `thread_ts` when it is in a thread), `channel.id`, `user.id` and a
`response_url`. Both events need no scope, only the subscription.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import StoreUnavailable
from bot.purge import Purger
from bot.store.installations import RedisInstallationStore, owner_of

log = logging.getLogger(__name__)

FORGET_THREAD = "forget_thread"
"""The message shortcut's callback id (the manifest declares it)."""

FORGOTTEN = (
    "Done: I deleted what I had stored of this thread, and I no longer follow it. "
    "If someone mentions me here again, I read the thread from Slack anew."
)
NOTHING_STORED = "I had nothing stored for this thread."
STORE_DOWN = "I can't reach my store (Redis) right now, so nothing was deleted. Try again soon."


class Forgetting(Protocol):
    """What uninstalling tells the workspace cache (`InstalledWorkspaces.forget` fits)."""

    def forget(self, owner: str) -> None: ...


class DataControls:
    """Registers the uninstall events and the shortcut; see the module docstring."""

    def __init__(
        self,
        purger: Purger,
        installations: RedisInstallationStore | None = None,
        cache: Forgetting | None = None,
    ) -> None:
        self.purger = purger
        self.installations = installations
        self.cache = cache

    def register(self, app: AsyncApp) -> None:
        app.event("app_uninstalled")(self.on_app_uninstalled)
        app.event("tokens_revoked")(self.on_tokens_revoked)
        app.shortcut(FORGET_THREAD)(self.on_forget_thread)

    async def on_app_uninstalled(self, context: AsyncBoltContext, body: dict[str, Any]) -> None:
        await self.uninstall(context, body)

    async def on_tokens_revoked(
        self, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            await self.uninstall(context, body)
        elif self.installations is not None:
            enterprise, team = _installation_ids(context, body)
            for user in tokens.get("oauth") or []:
                await self.installations.async_delete_installation(
                    enterprise_id=enterprise, team_id=team, user_id=str(user)
                )

    async def uninstall(self, context: AsyncBoltContext, body: dict[str, Any]) -> int:
        """Delete the installation and purge its data; returns how many keys were deleted."""
        enterprise, team = _installation_ids(context, body)
        org = bool(context.is_enterprise_install)
        owner = owner_of(enterprise, team, org)
        if owner is None:
            log.warning("uninstall event without a workspace or organisation id")
            return 0
        teams: set[str] = set()
        if self.installations is not None:
            if org and enterprise:
                teams = await self.installations.async_org_teams(enterprise)
            await self.installations.async_delete_all(enterprise_id=enterprise, team_id=team)
        if self.cache is not None:
            self.cache.forget(owner)
        deleted = await self.purger.purge([owner, *sorted(teams)])
        log.info("uninstalled owner=%s workspaces=%d keys_deleted=%d", owner, len(teams), deleted)
        return deleted

    async def on_forget_thread(
        self,
        ack: Any,
        shortcut: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: Any,
    ) -> None:
        await ack()
        message = shortcut.get("message") or {}
        channel = str((shortcut.get("channel") or {}).get("id") or "")
        user = str((shortcut.get("user") or {}).get("id") or "")
        team = context.team_id or (shortcut.get("user") or {}).get("team_id") or ""
        thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
        try:
            had = await self.purger.forget_thread(team, channel, thread_ts)
            text = FORGOTTEN if had else NOTHING_STORED
            log.info(
                "forgot thread team=%s channel=%s thread=%s had=%s", team, channel, thread_ts, had
            )
        except StoreUnavailable:
            text = STORE_DOWN
        try:
            await client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, text=text
            )
        except SlackApiError as exc:
            # e.g. not_in_channel: the shortcut's own response_url still reaches the user.
            log.info(
                "postEphemeral failed (%s); answering via response_url", exc.response.get("error")
            )
            await respond(text=text, response_type="ephemeral", replace_original=False)


def _installation_ids(
    context: AsyncBoltContext, body: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(enterprise, team) of the installation an event is about: an org-wide install is the
    organisation's (no team), else the workspace's (`team_id` of the envelope if Bolt has none)."""
    enterprise = context.enterprise_id
    if context.is_enterprise_install:
        return enterprise, None
    return enterprise, context.team_id or body.get("team_id")
