"""OAuth distribution: one deployment installed in many workspaces (and Enterprise Grid orgs).

The mode is on when SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET are set and
SLACK_BOT_TOKEN is not (`Settings.oauth_mode`). It is Bolt's own OAuth flow (`AsyncOAuthFlow`)
on this bot's Redis stores:

* `GET /slack/install` issues a state (`RedisOAuthStateStore`: single use, 10 minutes), sets it
  in a cookie, and shows the *Add to Slack* page linking to Slack's authorize URL with the
  scopes (SLACK_SCOPES, by default the manifest's) and the redirect URL.
* `GET /slack/oauth_redirect` refuses a state that is missing, unknown, expired, already used or
  not the browser's cookie (401, nothing installed); else exchanges the code with
  `oauth.v2.access`, asks `auth.test` for the bot id, saves the installation
  (`RedisInstallationStore`) and shows Slack's success page (or the failure page with the reason).
* Every other request is authorized by Bolt's `AsyncInstallationStoreAuthorize` with its cache
  on (without it Bolt calls `auth.test` on every request), so commands, modals and actions run
  with the token of the workspace they came from; the fast event path does the same through
  `bot.workspaces.InstalledWorkspaces`. Token rotation, when the app has it on, goes through
  `bot.token_rotation.LockedTokenRotator` on both paths.

The redirect URL is SLACK_REDIRECT_URI, else BOT_PUBLIC_URL + `/slack/oauth_redirect`; it must be
one of the app's *Redirect URLs* (`python -m bot manifest` lists it). Without either, Slack uses
the app's only configured redirect URL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.errors import StoreUnavailable
from bot.manifest import bot_scopes
from bot.settings import Settings
from bot.store.installations import RedisInstallationStore, owner_of
from bot.store.keys import Keys
from bot.store.oauth_state import DEFAULT_EXPIRATION_SECONDS, RedisOAuthStateStore
from bot.token_rotation import LockedTokenRotator
from bot.workspaces import InstalledWorkspaces

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
ROTATE_MINUTES = 120
"""Rotate a token this long before it expires (Bolt's default)."""


def redirect_uri(settings: Settings, public_url: str | None = None) -> str | None:
    """The redirect URL the bot sends Slack: SLACK_REDIRECT_URI, else BOT_PUBLIC_URL + the path;
    `public_url` (`manifest --url`) is the base only when neither is set."""
    if settings.slack_redirect_uri:
        return settings.slack_redirect_uri
    base = settings.bot_public_url or public_url
    return f"{base.rstrip('/')}{REDIRECT_PATH}" if base else None


def install_scopes(settings: Settings) -> list[str]:
    """The bot scopes asked for at install: SLACK_SCOPES, else the manifest's."""
    return list(settings.slack_scopes) or bot_scopes()


@dataclass
class Distribution:
    """The OAuth mode's parts: Bolt's settings and authorization, and the bot's stores."""

    oauth_settings: AsyncOAuthSettings
    authorize: AsyncInstallationStoreAuthorize
    installations: RedisInstallationStore
    workspaces: InstalledWorkspaces

    def register(self, app: AsyncApp) -> None:
        """A middleware noting which workspaces of an org-wide install use the bot through
        commands, modals and shortcuts (events are noted by `InstalledWorkspaces`), so that
        uninstalling the org purges their data too."""

        async def note_org_team(
            context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[None]]
        ) -> None:
            if context.is_enterprise_install and context.enterprise_id:
                team = body.get("team_id") or (body.get("user") or {}).get("team_id")
                if isinstance(team, str) and team:
                    await self.workspaces.note_org_team(context.enterprise_id, team)
            await next()

        app.middleware(note_org_team)


def build_distribution(
    settings: Settings, redis: Redis, keys: Keys, client: AsyncWebClient
) -> Distribution:
    """The OAuth mode's objects; `client` (no token) is the app's Web API client."""
    # Settings.oauth_mode guarantees both.
    assert settings.slack_client_id is not None
    assert settings.slack_client_secret is not None
    client_id = settings.slack_client_id
    client_secret = settings.slack_client_secret.get_secret_value()
    installations = RedisInstallationStore(redis, keys)
    rotator = LockedTokenRotator(
        client_id=client_id,
        client_secret=client_secret,
        client=client,
        store=installations,
        redis=redis,
        keys=keys,
    )
    oauth_settings = AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=install_scopes(settings),
        user_scopes=[],
        redirect_uri=redirect_uri(settings),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=installations,
        token_rotation_expiration_minutes=ROTATE_MINUTES,
        state_store=RedisOAuthStateStore(redis, keys),
        state_expiration_seconds=DEFAULT_EXPIRATION_SECONDS,
        logger=logging.getLogger("bot.oauth.flow"),
    )
    authorize = AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("bot.oauth.authorize"),
        installation_store=installations,
        client_id=client_id,
        client_secret=client_secret,
        token_rotation_expiration_minutes=ROTATE_MINUTES,
        cache_enabled=True,
        client=client,
    )
    authorize.token_rotator = rotator
    workspaces = InstalledWorkspaces(
        installations, client, rotator=rotator, rotate_minutes=ROTATE_MINUTES
    )
    oauth_settings.callback_options = _callbacks(workspaces)
    return Distribution(oauth_settings, authorize, installations, workspaces)


def _callbacks(workspaces: InstalledWorkspaces) -> AsyncCallbackOptions:
    """Bolt's success and failure pages, plus a log line each; a (re)install also drops this
    replica's cached copy of the workspace, whose token it may have replaced."""

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        i = args.installation
        owner = owner_of(i.enterprise_id, i.team_id, i.is_enterprise_install)
        if owner is not None:
            workspaces.forget(owner)
        log.info("installed owner=%s org_install=%s", owner, i.is_enterprise_install)
        return await args.default.success(args)

    async def failure(args: AsyncFailureArgs) -> BoltResponse:
        log.info("install refused: %s", args.reason)
        return await args.default.failure(args)

    return AsyncCallbackOptions(success=success, failure=failure)


FlowStep = Callable[[AsyncBoltRequest], Awaitable[BoltResponse]]


def oauth_routes(flow: AsyncOAuthFlow) -> list[Route]:
    """`GET /slack/install` and `GET /slack/oauth_redirect`, answered by Bolt's flow."""

    def endpoint(step: FlowStep) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            bolt_req = AsyncBoltRequest(
                body="",
                query=request.url.query,
                headers={k: [v] for k, v in request.headers.items()},
            )
            try:
                answer = await step(bolt_req)
            except StoreUnavailable:
                return PlainTextResponse(
                    "The installation store (Redis) cannot be reached; try again in a minute.",
                    status_code=503,
                )
            response = Response(answer.body, status_code=answer.status)
            for name, values in answer.headers.items():
                for value in values:  # Set-Cookie may come more than once
                    response.headers.append(name, value)
            return response

        return run

    return [
        Route(flow.install_path, endpoint(flow.handle_installation), methods=["GET"]),
        Route(flow.redirect_uri_path, endpoint(flow.handle_callback), methods=["GET"]),
    ]
