"""Which workspaces the bot serves, and with which tokens: the one workspace of SLACK_BOT_TOKEN,
or every workspace that installed the app (OAuth distribution, `bot.oauth`).

The composition root (`bot.app`) builds the Slack clients and hands them here; this module picks
the mode's `Workspaces` (for the fast event path), the data controls (uninstall purge, forget),
and the Bolt app's authorization: Bolt's single-workspace `auth.test`, or its OAuth flow and
installation-store authorization.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.data_controls import DataControls
from bot.oauth import Distribution, build_distribution
from bot.purge import Purger
from bot.settings import Settings
from bot.slack_app import Events, Registrar, build_bolt_app
from bot.slack_identity import BotIdentity
from bot.store.keys import Keys
from bot.workspaces import SingleWorkspace, Workspaces


@dataclass
class Tenancy:
    """The mode's Slack side: clients, workspaces, data controls, and its Bolt app."""

    client: AsyncWebClient
    """The app's client: the bot token's, or in OAuth mode a token-less one (OAuth calls)."""
    progress_client: AsyncWebClient | None
    workspaces: Workspaces
    controls: DataControls
    distribution: Distribution | None = None
    identity: BotIdentity | None = None
    """The single workspace's identity (`auth.test`); None in OAuth mode."""

    async def client_for(self, team: str) -> AsyncWebClient | None:
        """The workspace's client (a turn taken over from a dead replica); None when the
        workspace is not installed."""
        workspace = await self.workspaces.for_team(team)
        return workspace.client if workspace else None

    def bolt_app(
        self, events: Events, signing_secret: str | None, extra: Sequence[Registrar]
    ) -> AsyncApp:
        """The Bolt app with the listeners in `extra`, the data controls and, in OAuth mode,
        the OAuth flow and per-workspace authorization."""
        oauth = self.distribution
        return build_bolt_app(
            client=self.client,
            events=events,
            signing_secret=signing_secret,
            extra=[*extra, self.controls.register, *([oauth.register] if oauth else [])],
            oauth_settings=oauth.oauth_settings if oauth else None,
            authorize=oauth.authorize if oauth else None,
        )


def build_tenancy(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    purger: Purger,
    client: AsyncWebClient,
    progress_client: AsyncWebClient,
) -> Tenancy:
    """OAuth distribution when `settings.oauth_mode`, else the single workspace of the token.
    `progress_client` is the single token's client without the 429 retry (unused in OAuth
    mode, where each workspace gets its own)."""
    if not settings.oauth_mode:
        identity = BotIdentity(client)
        single = SingleWorkspace(identity, client, progress_client)
        return Tenancy(client, progress_client, single, DataControls(purger), identity=identity)
    oauth = build_distribution(settings, redis, keys, client)
    controls = DataControls(purger, oauth.installations, oauth.workspaces)
    return Tenancy(client, None, oauth.workspaces, controls, oauth)
