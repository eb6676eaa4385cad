"""Which Slack client, and which bot user, serve the workspace a request came from.

Two implementations, one per mode:

* `SingleWorkspace` (SLACK_BOT_TOKEN): one client, and the bot's identity learned with
  `auth.test` at start (`bot.slack_identity`).
* `InstalledWorkspaces` (OAuth distribution): the workspace's installation, read from the
  installation store (token, bot user id, both from `oauth.v2.access` at install time, so no
  `auth.test` per request) and kept per process for `ttl` seconds, so the fast event path costs
  one Redis read per workspace per `ttl`, not one per event. A token that rotates (Slack's token
  rotation: bot tokens expire after 12 hours) is refreshed here before it expires, through the
  same rotator Bolt's authorization uses.

Slack facts: an Events API envelope names its installation in `authorizations[0]`
(`enterprise_id`, `team_id`, `is_enterprise_install`; for an org-wide install `team_id` is
null there and the workspace is the top-level `team_id`); Bolt reads them with the
`extract_*` functions used here, so both paths find the same installation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_bolt.request.internals import (
    extract_enterprise_id,
    extract_is_enterprise_install,
    extract_team_id,
)
from slack_sdk.errors import SlackClientError, SlackTokenRotationError
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_client import client_like
from bot.slack_identity import BotIdentity
from bot.store.installations import RedisInstallationStore, owner_of

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class Workspace:
    """What a turn in one workspace needs: its clients, and the bot's user id there."""

    client: AsyncWebClient
    bot_user_id: str
    progress_client: AsyncWebClient | None = None
    """For streamed progress updates: the same token, without the 429 retry (`LiveMessage`)."""


class Workspaces(Protocol):
    """The per-workspace view both modes offer to `slack_app.Events`."""

    async def learn(self) -> None:
        """Before serving: what must be known at start (raises `ConfigError` when a token is
        refused)."""

    async def for_event(self, body: dict[str, Any]) -> Workspace | None:
        """The workspace of an Events API envelope; None when unknown (Bolt then decides)."""

    async def for_team(self, team: str) -> Workspace | None:
        """The workspace by its id alone (a turn taken over from a replica that died)."""

    def progress_for(self, client: AsyncWebClient) -> AsyncWebClient | None:
        """The progress client matching a client Bolt made for a request."""


class SingleWorkspace:
    """SLACK_BOT_TOKEN mode: every request is served by the one token."""

    def __init__(
        self,
        identity: BotIdentity,
        client: AsyncWebClient,
        progress_client: AsyncWebClient | None = None,
    ) -> None:
        self.identity = identity
        self.client = client
        self.progress_client = progress_client

    async def learn(self) -> None:
        if self.identity.user_id is None:
            await self.identity.learn()

    async def for_event(self, body: dict[str, Any]) -> Workspace | None:
        user_id = await self.identity.bot_user_id()
        if user_id is None:
            return None  # Slack could not be asked yet: Bolt authorizes it itself
        return Workspace(self.client, user_id, self.progress_client)

    async def for_team(self, team: str) -> Workspace | None:
        return Workspace(self.client, self.identity.user_id or "", self.progress_client)

    def progress_for(self, client: AsyncWebClient) -> AsyncWebClient | None:
        return self.progress_client


class InstalledWorkspaces:
    """OAuth mode: workspaces from the installation store, cached per process (see module)."""

    def __init__(
        self,
        store: RedisInstallationStore,
        template: AsyncWebClient,
        *,
        rotator: AsyncTokenRotator | None = None,
        rotate_minutes: int = 120,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.template = template
        self.rotator = rotator
        self.rotate_minutes = rotate_minutes
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Workspace]] = {}
        self._org_teams: dict[tuple[str, str], float] = {}
        """(organisation, workspace) → when this process last wrote the pair (`clock`)."""

    async def learn(self) -> None:
        """Nothing to learn at start: each workspace is read when it is first needed."""

    async def for_event(self, body: dict[str, Any]) -> Workspace | None:
        enterprise_id = extract_enterprise_id(body)
        org = bool(extract_is_enterprise_install(body))
        workspace = await self.get(enterprise_id, extract_team_id(body), org)
        team = body.get("team_id")
        if workspace is not None and org and enterprise_id and isinstance(team, str):
            await self.note_org_team(enterprise_id, team)
        return workspace

    async def for_team(self, team: str) -> Workspace | None:
        """The workspace's own installation, else its org's (`async_org_of`)."""
        workspace = await self.get(None, team, False)
        if workspace is None and (enterprise := await self.store.async_org_of(team)):
            workspace = await self.get(enterprise, team, True)
        return workspace

    async def get(
        self, enterprise_id: str | None, team_id: str | None, org: bool
    ) -> Workspace | None:
        """The installed workspace (or organisation), from the cache while it is fresh."""
        owner = owner_of(enterprise_id, team_id, org)
        if owner is None:
            return None
        now = self._clock()
        cached = self._cache.get(owner)
        if cached is not None and cached[0] > now:
            return cached[1]
        installation = await self.store.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=org
        )
        if installation is not None and self.rotator is not None:
            installation = await self._rotated(installation, now)
        if installation is None or not installation.bot_token or not installation.bot_user_id:
            self._cache.pop(owner, None)
            return None
        workspace = self._workspace(installation, cached[1] if cached else None)
        self._cache[owner] = (now + self._fresh_for(installation, now), workspace)
        return workspace

    async def _rotated(self, installation: Installation, now: float) -> Installation | None:
        """The installation with its token rotated if due; when the rotation fails, the current
        token while it lasts (a later event tries again), else None."""
        assert self.rotator is not None
        try:
            rotated = await self.rotator.perform_token_rotation(
                installation=installation, minutes_before_expiration=self.rotate_minutes
            )
        except (SlackTokenRotationError, SlackClientError, aiohttp.ClientError, OSError) as exc:
            log.error("token rotation failed (%s)", type(exc).__name__)
            expires_at = installation.bot_token_expires_at
            return installation if expires_at is None or expires_at > now else None
        return rotated or installation

    def forget(self, owner: str) -> None:
        """Drop a cached workspace (it was uninstalled or reinstalled), and for an organisation
        which of its workspaces were noted (its purge deleted that list)."""
        self._cache.pop(owner, None)
        for noted in [pair for pair in self._org_teams if pair[0] == owner]:
            del self._org_teams[noted]

    def progress_for(self, client: AsyncWebClient) -> AsyncWebClient | None:
        for _, workspace in self._cache.values():
            if workspace.client.token == client.token:
                return workspace.progress_client
        return client_like(client, str(client.token), retry_rate_limits=False)

    async def note_org_team(self, enterprise_id: str, team_id: str) -> None:
        """Remember that a workspace of an org-wide install used the bot (its data is purged
        with the org's): written once per process, pair and `ttl`, so that after an uninstall
        handled by another replica (whose purge deleted the list) the pair is written again."""
        now = self._clock()
        noted = self._org_teams.get((enterprise_id, team_id))
        if noted is None or now - noted >= self.ttl:
            await self.store.async_note_org_team(enterprise_id, team_id)
            self._org_teams[(enterprise_id, team_id)] = now

    def _workspace(self, installation: Installation, old: Workspace | None) -> Workspace:
        token, user = str(installation.bot_token), str(installation.bot_user_id)
        if old is not None and old.client.token == token:
            return Workspace(old.client, user, old.progress_client)
        return Workspace(
            client_like(self.template, token, retry_rate_limits=True),
            user,
            client_like(self.template, token, retry_rate_limits=False),
        )

    def _fresh_for(self, installation: Installation, now: float) -> float:
        expires_at = installation.bot_token_expires_at
        if expires_at is None:
            return self.ttl
        # Read again when the token enters its rotation window, so it is rotated in time.
        return max(0.0, min(self.ttl, expires_at - self.rotate_minutes * 60 - now))
