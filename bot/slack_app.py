"""Bolt wiring: decide whether a Slack event is a message for the bot, and hand it to a turn.

Events are taken by one global Bolt middleware (`events_middleware`) rather than `app.event`
listeners. It runs after Bolt's own middleware (signature check, authorization, ignoring the bot's
own events, URL verification), answers 200 itself and starts the turn as a task. The benchmark's
profile showed Bolt's listener path (matching every listener, building keyword arguments for the
listener middleware and the listener, the listener runner) as about 6 % of the bot's CPU per turn,
for nothing this app uses: there is one handler for two event types.

Facts this relies on (shared/reference/slack.md):
* Slack wants the ack within 3 seconds and the answer takes longer, so the turn runs as a task
  after the ack; `TurnRunner.run` tracks it for a graceful shutdown.
* A mention arrives as both `app_mention` and `message`; the message path leaves texts that mention
  the bot to the mention path, and the runner's `channel:ts` claim covers the rest.
* Editing a message that mentions the bot re-fires `app_mention` with an `edited` field: ignored.
* Unhandled requests get 404, and Slack retries them; the error handler answers 200 instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.turns import Incoming, TurnRunner, strip_mention

log = logging.getLogger(__name__)

ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")
"""Message subtypes that are a person writing; edits, deletions, joins and bots are not."""

SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "app_mention": ("app_mention",),
    "message": ("message.channels", "message.groups", "message.im"),
}
"""The Bolt event types handled, and the Events API subscriptions that deliver them.
`bot.manifest` builds the Slack app manifest from this, so the two cannot drift apart."""

SCOPES_FOR_EVENT = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
}
BASE_SCOPES = ("chat:write", "commands", "users:read")
"""chat:write to answer, commands for the slash command, users:read to recognise admins."""

Registrar = Callable[[AsyncApp], None]
Middleware = Callable[..., Awaitable[BoltResponse | None]]


def _header(request: AsyncBoltRequest, name: str) -> str | None:
    values = request.headers.get(name)
    return values[0] if values else None


def _incoming(
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
    kind: str,
) -> Incoming:
    ts = str(event.get("ts", ""))
    return Incoming(
        team=str(context.team_id or body.get("team_id") or ""),
        channel=str(event.get("channel", "")),
        user=str(event.get("user", "")),
        ts=ts,
        thread_ts=str(event.get("thread_ts") or ts),
        text=strip_mention(str(event.get("text") or ""), context.bot_user_id),
        event_id=body.get("event_id"),
        kind=kind,
        retry_num=_header(request, "x-slack-retry-num"),
        retry_reason=_header(request, "x-slack-retry-reason"),
    )


def classify(
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
    request: AsyncBoltRequest,
) -> Incoming | None:
    """The message the bot should answer in this event, or None (and the event is just acked)."""
    if not isinstance(event, dict):
        return None
    if event.get("type") == "app_mention":
        if event.get("edited") or event.get("bot_id") or event.get("subtype"):
            return None  # an edit re-fires app_mention; bots never get answers
        return _incoming(event, body, context, request, "mention")
    if event.get("subtype") not in ANSWERED_SUBTYPES or event.get("bot_id"):
        return None
    user, ts, thread_ts = event.get("user"), event.get("ts"), event.get("thread_ts")
    if not user or user == context.bot_user_id:
        return None
    if event.get("channel_type") == "im" and (not thread_ts or thread_ts == ts):
        # A direct message needs no mention; the answer starts a thread under it.
        return _incoming(event, body, context, request, "dm")
    if not thread_ts or thread_ts == ts:
        return None  # not a person's reply inside a thread
    if context.bot_user_id and f"<@{context.bot_user_id}" in str(event.get("text") or ""):
        return None  # the app_mention event for this message answers it
    return _incoming(event, body, context, request, "followup")


def events_middleware(runner: TurnRunner) -> Middleware:
    """The global middleware that takes the event types in SUBSCRIPTIONS (see the docstring)."""

    async def admit(incoming: Incoming | None) -> Incoming | None:
        """Queue the message in its thread before Slack's request is acked, so it keeps its
        place (see `TurnRunner.reserve`); a follow-up only in a thread the bot is in."""
        if incoming is None or incoming.thread_ts == incoming.ts:
            return incoming  # a message that starts a thread has nothing to queue behind
        followup = incoming.kind == "followup"
        engaged = await runner.reserve(
            incoming.team, incoming.channel, incoming.thread_ts, incoming.ts, followup=followup
        )
        return None if followup and not engaged else incoming

    async def events(
        body: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
        next: Callable[[], Awaitable[None]],
    ) -> BoltResponse | None:
        event = body.get("event") if body.get("type") == "event_callback" else None
        kind = event.get("type") if isinstance(event, dict) else None
        # (a fuzzed `type` may be a list or a dict: compare strings only)
        if not isinstance(event, dict) or not isinstance(kind, str) or kind not in SUBSCRIPTIONS:
            await next()  # commands, interactivity, other events: Bolt's listeners
            return None
        incoming = await admit(classify(event, body, context, request))
        if incoming is not None:
            runner.start(incoming, context.client)
        return BoltResponse(status=200, body="")

    return events


def build_bolt_app(
    *,
    client: AsyncWebClient,
    runner: TurnRunner,
    signing_secret: str | None,
    extra: list[Registrar] | None = None,
) -> AsyncApp:
    """The Bolt app. `signing_secret=None` (Socket Mode) turns request verification off."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "unused-in-socket-mode",
        request_verification_enabled=signing_secret is not None,
        raise_error_for_unhandled_request=True,
        process_before_response=False,
        # The set_status/say_stream helpers Bolt would build for every event are not used:
        # replies go through TurnRunner, so skip that per-request work.
        attaching_conversation_kwargs_enabled=False,
    )
    app.middleware(events_middleware(runner))

    for register in extra or []:
        register(app)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            # 404 would make Slack retry and count failures against the app (reference §2).
            kind = body.get("type") or ("command" if "command" in body else "unknown")
            event_type = (body.get("event") or {}).get("type", "-")
            log.debug("ignored request type=%s event=%s", kind, event_type)
            return BoltResponse(status=200, body="")
        log.error("listener error: %s: %s", type(error).__name__, error, exc_info=error)
        return None

    return app
