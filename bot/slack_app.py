"""Bolt wiring: decide whether a Slack event is a message for the bot, and hand it to a turn.

Events are taken by `Events`, not by `app.event` listeners, through two doors:

* `Events.direct`, which the HTTP endpoint tries before Bolt: slack_sdk's `SignatureVerifier`
  (the class Bolt's own check uses), a JSON parse, the team from the envelope as Bolt reads it,
  and the workspace's client and bot user id (`bot.workspaces`: the identity learned with
  `auth.test` at start, or the workspace's installation in OAuth mode). Whatever it does not
  take goes to Bolt unchanged.
* a global Bolt middleware, after Bolt's own (signature check, authorization, ignoring the bot's
  own events, URL verification), for Socket Mode and for whatever `direct` declined. It answers
  200 itself and starts the turn as a task.

Why: in the benchmark's profile Bolt's per-request work for an event (a new Web API client, the
authorization result, keyword arguments for every listener and middleware, listener matching,
the listener runner) was about 10 % of the bot's CPU per turn, for one handler of two event
types. Commands, the settings modal and everything else go through Bolt.

What an event means (a message to answer, a thread change to record) is `bot.message_events`'.

Slack facts this relies on:
* Slack wants the HTTP ack within 3 seconds and the answer takes longer, so the turn runs as a
  task after the ack; `TurnRunner` tracks it for a graceful shutdown. Over HTTP the 200 is sent
  first and the event's work (admission, or recording an edit) is written to Redis right after,
  in the same pass of the event loop: nothing else runs in between, so events of one message
  stay in order and an acked turn is in Redis, while the ack does not wait for Redis's reply or
  behind the turns queued up on a busy replica (the saturation benchmark's ack p99 went from
  about 1.4 s to under 0.5 s).
* Events API envelopes name their workspace in `authorizations[0].team_id` (the installation
  that sees the event; in shared channels it differs from the top-level `team_id`) and else in
  `team_id`; Bolt reads them in that order, and so does `event_team`.
* Bolt answers an unhandled request with 404, and Slack then retries it and counts it as a
  failure against the app; the error handler answers 200 instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import StoreUnavailable
from bot.incoming import Incoming
from bot.message_events import Delivery, Recorder, classify
from bot.turns import TurnRunner
from bot.web import Work
from bot.workspaces import Workspaces

log = logging.getLogger(__name__)

SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "app_mention": ("app_mention",),
    "message": ("message.channels", "message.groups", "message.im", "message.mpim"),
}
"""The Bolt event types handled, and the Events API subscriptions that deliver them.
`bot.manifest` builds the Slack app manifest from this, so the two cannot drift apart."""

LISTENER_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "assistant_thread_started": ("assistant_thread_started",),
    "assistant_thread_context_changed": ("assistant_thread_context_changed",),
    "app_home_opened": ("app_home_opened",),
    "app_uninstalled": ("app_uninstalled",),
    "tokens_revoked": ("tokens_revoked",),
}
"""Events that Bolt's own listeners take (`app.event`, registered by `bot.assistant`,
`bot.app_home` and `bot.data_controls`), not `Events`; the manifest subscribes to them too
(`app_home_opened`, `app_uninstalled` and `tokens_revoked` need no scope)."""

SCOPES_FOR_EVENT = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
}
BASE_SCOPES = ("chat:write", "commands", "users:read", "files:read")
"""chat:write to answer, commands for the slash command, users:read for people's names (and to
recognise admins), files:read for files and images posted in threads. The `*:history` scopes of
the message events also let the bot read a thread it is called into (`conversations.replies`),
and a channel the assistant pane asks about (`conversations.history`); `assistant:write` (for the
pane's events) lets it set the pane's suggested prompts and titles."""

SCOPE_PURPOSES = {
    "app_mentions:read": "to hear @mentions",
    "channels:history": "follow-ups and thread context in public channels",
    "groups:history": "follow-ups and thread context in private channels",
    "im:history": "direct messages",
    "mpim:history": "group direct messages",
    "chat:write": "to answer",
    "commands": "the slash command",
    "users:read": "people's names in prompts, and who is an admin",
    "files:read": "files and images posted in threads",
}
"""What each scope is for, so `doctor` can say what is lost without it."""

Registrar = Callable[[AsyncApp], None]
Middleware = Callable[..., Awaitable[BoltResponse | None]]


def event_team(body: dict[str, Any]) -> str | None:
    """The workspace an Events API envelope is for: `authorizations[0].team_id`, else `team_id`
    (Bolt's precedence for event callbacks)."""
    auths = body.get("authorizations")
    if isinstance(auths, list) and auths and isinstance(auths[0], dict):
        team = auths[0].get("team_id")
        if team:
            return str(team)
    team = body.get("team_id")
    return str(team) if team else None


def _header(request: AsyncBoltRequest, name: str) -> str | None:
    values = request.headers.get(name)
    return values[0] if values else None


class Events:
    """Takes the Events API callbacks in SUBSCRIPTIONS and starts their turns.

    Two doors, one handler (`take`): `direct`, which the HTTP endpoint tries first, and Bolt's
    dispatch, as its last global middleware (Socket Mode, and whatever `direct` declines: a bad
    signature, commands, interactivity, URL verification, other events).
    """

    def __init__(
        self,
        runner: TurnRunner,
        workspaces: Workspaces,
        signing_secret: str | None,
        recorder: Recorder,
    ) -> None:
        self.runner = runner
        self.workspaces = workspaces
        self.recorder = recorder
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def work_for(
        self,
        body: dict[str, Any],
        delivery: Delivery,
        client: AsyncWebClient,
        progress_client: AsyncWebClient | None = None,
    ) -> Work | None:
        """What to do for an event of ours, with the workspace's clients (admit and start its
        turn, or record a change to a thread); None when the request is not one."""
        event = _our_event(body)
        if event is None:
            return None
        meant = classify(event, body, delivery)

        async def work() -> None:
            async with self.recorder.in_order(meant):
                if isinstance(meant, Incoming):
                    admitted = await self.runner.admit(meant)
                    if admitted is not None:
                        progress = progress_client or self.workspaces.progress_for(client)
                        self.runner.start(admitted, client, progress)
                elif meant is not None:
                    await self.recorder.apply(meant)

        return work

    async def take(
        self,
        body: dict[str, Any],
        delivery: Delivery,
        client: AsyncWebClient,
        progress_client: AsyncWebClient | None = None,
    ) -> bool:
        """Do the work of an event of ours, then let it be acked; False when the request is not
        one (Socket Mode, and events that went through Bolt)."""
        work = self.work_for(body, delivery, client, progress_client)
        if work is None:
            return False
        await work()
        return True

    def middleware(self) -> Middleware:
        """The Bolt global middleware; it runs after Bolt's signature check, authorization,
        self-event filter and URL verification."""

        async def events(
            body: dict[str, Any],
            context: AsyncBoltContext,
            request: AsyncBoltRequest,
            next: Callable[[], Awaitable[None]],
        ) -> BoltResponse | None:
            delivery = Delivery(
                context.bot_user_id,
                context.team_id,
                _header(request, "x-slack-retry-num"),
                _header(request, "x-slack-retry-reason"),
            )
            if await self.take(body, delivery, context.client):
                return BoltResponse(status=200, body="")
            await next()  # commands, interactivity, other events: Bolt's listeners
            return None

        return events

    async def direct(self, raw: str, headers: Mapping[str, str]) -> Work | None:
        """HTTP mode: take a signed event of ours without Bolt's dispatch. Returns the work to
        run once the 200 is sent (see `bot.web.DirectHandler`), or None: Bolt's. `headers` have
        lower-case names."""
        if self._verifier is None:
            return None
        if not headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            signed = self._verifier.is_valid_request(body=raw, headers=headers)
        except ValueError:  # a timestamp that is not an integer (the endpoint refuses those)
            signed = False
        if not signed:
            return None  # Bolt answers it (401)
        try:
            body = orjson.loads(raw)
        except ValueError:
            return None
        if not isinstance(body, dict) or _our_event(body) is None:
            return None  # URL verification, the events Bolt's listeners take, the rest: Bolt's
        try:
            workspace = await self.workspaces.for_event(body)
        except StoreUnavailable:
            workspace = None
        if workspace is None:
            return None  # identity or installation unknown: Bolt authorizes it itself
        delivery = Delivery(
            workspace.bot_user_id,
            event_team(body),
            headers.get("x-slack-retry-num"),
            headers.get("x-slack-retry-reason"),
        )
        return self.work_for(body, delivery, workspace.client, workspace.progress_client)


def _our_event(body: dict[str, Any]) -> dict[str, Any] | None:
    """The event of an event callback of a type the turn path takes (`SUBSCRIPTIONS`), else
    None (a fuzzed `type` may be a list or a dict: strings only are compared)."""
    event = body.get("event") if body.get("type") == "event_callback" else None
    kind = event.get("type") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(kind, str) or kind not in SUBSCRIPTIONS:
        return None
    return event


def build_bolt_app(
    *,
    client: AsyncWebClient,
    events: Events,
    signing_secret: str | None,
    extra: list[Registrar] | None = None,
    oauth_settings: AsyncOAuthSettings | None = None,
    authorize: AsyncAuthorize | None = None,
) -> AsyncApp:
    """The Bolt app. `signing_secret=None` (Socket Mode) turns request verification off;
    `oauth_settings` and `authorize` (OAuth mode, `bot.oauth`) serve many workspaces."""
    app = AsyncApp(
        client=client,
        oauth_settings=oauth_settings,
        authorize=authorize,  # type: ignore[arg-type]  # an AsyncAuthorize is what Bolt calls
        signing_secret=signing_secret or "unused-in-socket-mode",
        request_verification_enabled=signing_secret is not None,
        raise_error_for_unhandled_request=True,
        process_before_response=False,
        # The set_status/say_stream helpers Bolt would build for every event are not used:
        # replies go through TurnRunner, so skip that per-request work.
        attaching_conversation_kwargs_enabled=False,
    )
    app.middleware(events.middleware())

    for register in extra or []:
        register(app)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            # 404 would make Slack retry and count failures against the app (module docstring).
            kind = body.get("type") or ("command" if "command" in body else "unknown")
            event_type = (body.get("event") or {}).get("type", "-")
            log.debug("ignored request type=%s event=%s", kind, event_type)
            return BoltResponse(status=200, body="")
        log.error("listener error: %s: %s", type(error).__name__, error, exc_info=error)
        return None

    return app
