"""`slack_app.Events`: `direct`, the HTTP endpoint's way past Bolt for signed events of the bot's
types, and the Bolt middleware that takes them in Socket Mode and whatever `direct` declines.

`direct` must take only what Bolt would have handed to the middleware, with the same facts (team
from the body as Bolt reads it, Slack's retry headers), and leave everything else to Bolt. The
end-to-end suites run every event through them; these pin down their edges.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest

from bot import message_events
from bot.admission import Admitted
from bot.slack_app import SUBSCRIPTIONS, Events, event_team
from bot.slack_identity import BotIdentity
from bot.workspaces import SingleWorkspace
from fakes.slack import BOT_USER, TEAM
from fakes.slack_requests import SIGNING_SECRET, envelope, mention, sign


class Runner:
    def __init__(self) -> None:
        self.started: list[Any] = []
        self.admitted: list[Any] = []

    async def admit(self, incoming: Any) -> Any:
        self.admitted.append(incoming)
        return Admitted(incoming)

    def start(self, admitted: Any, client: Any, progress_client: Any = None) -> None:
        self.started.append(admitted.msg)


def headers_for(raw: str, content_type: str = "application/json", **extra: str) -> dict[str, str]:
    now = int(time.time())
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": str(now),
        "x-slack-signature": sign(raw, now),
        **extra,
    }


async def taken(events: Events, raw: str, headers: dict[str, str]) -> bool:
    """What the HTTP endpoint does: `direct`, and the work it hands back run after the ack."""
    work = await events.direct(raw, headers)
    if work is not None:
        await work()
    return work is not None


def known_identity() -> BotIdentity:
    """The identity `auth.test` gives at start (no Slack call in these unit tests)."""
    identity = BotIdentity(None)  # type: ignore[arg-type]
    identity.user_id = BOT_USER
    return identity


class Recorder(message_events.Recorder):
    """Keeps the thread changes (records, edits, deletions) the events handed over, in the
    real recorder's order."""

    def __init__(self) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.changes: list[Any] = []

    async def apply(self, change: Any) -> bool:
        self.changes.append(change)
        return True


def events_for(
    runner: Runner, signing_secret: str | None = SIGNING_SECRET, recorder: Recorder | None = None
) -> Events:
    return Events(
        runner,  # type: ignore[arg-type]
        SingleWorkspace(known_identity(), None),  # type: ignore[arg-type]
        signing_secret,
        recorder or Recorder(),  # type: ignore[arg-type]
    )


async def test_direct_takes_signed_events_from_the_first_one() -> None:
    """With the identity learned at start, the very first signed event goes past Bolt, its
    text stripped of the bot's mention."""
    runner = Runner()
    events = events_for(runner)
    raw = json.dumps(envelope(mention("hello")))
    assert await taken(events, raw, headers_for(raw)) is True
    assert [m.text for m in runner.started] == ["hello"]


async def test_direct_declines_while_the_identity_is_unknown() -> None:
    """If Slack could not be asked at start, `direct` leaves the event to Bolt (which authorizes
    it itself) rather than answering without knowing the bot's user id."""
    runner = Runner()
    identity = BotIdentity(None, retry_seconds=3600)  # type: ignore[arg-type]
    identity._next_try = float("inf")  # the start's auth.test just failed
    events = Events(
        runner,  # type: ignore[arg-type]
        SingleWorkspace(identity, None),  # type: ignore[arg-type]
        SIGNING_SECRET,
        Recorder(),  # type: ignore[arg-type]
    )
    raw = json.dumps(envelope(mention("hello")))
    assert await taken(events, raw, headers_for(raw)) is False
    assert runner.started == []


async def test_direct_uses_the_body_team_and_retry_headers() -> None:
    """Two workspaces, one process: the team comes from each body, as in Bolt's context."""
    runner = Runner()
    events = events_for(runner)
    body = envelope(mention("from elsewhere"))
    body["team_id"] = "TOTHER"
    body["authorizations"][0]["team_id"] = "TOTHER"
    raw = json.dumps(body)
    retry = {"x-slack-retry-num": "2", "x-slack-retry-reason": "http_timeout"}
    assert await taken(events, raw, headers_for(raw, **retry)) is True
    incoming = runner.started[-1]
    assert (incoming.team, incoming.retry_num, incoming.retry_reason) == (
        "TOTHER",
        "2",
        "http_timeout",
    )
    assert incoming.text == "from elsewhere"  # the bot's mention stripped


async def test_direct_leaves_bolt_everything_else() -> None:
    """Bad or missing signatures (Bolt answers 401), commands, URL verification, other event
    types, malformed bodies and Socket Mode (no signing secret) all go to Bolt."""
    runner = Runner()
    events = events_for(runner)
    started = len(runner.started)
    raw = json.dumps(envelope(mention("sneaky")))
    now = int(time.time())
    bad = {**headers_for(raw), "x-slack-signature": sign(raw, now, "wrong-secret")}
    stale = {**headers_for(raw), "x-slack-request-timestamp": str(now - 360)}
    stale["x-slack-signature"] = sign(raw, now - 360)
    missing = {"content-type": "application/json"}
    for headers in (bad, stale, missing):
        assert await taken(events, raw, headers) is False
    form = urlencode({"command": "/gpt", "text": "help", "team_id": TEAM})
    challenge = json.dumps({"type": "url_verification", "challenge": "abc", "token": "t"})
    reaction = json.dumps(envelope({"type": "reaction_added", "user": "U1"}))
    broken = json.dumps({"type": "event_callback", "authorizations": True, "event": {}})
    assert (
        await taken(events, form, headers_for(form, "application/x-www-form-urlencoded")) is False
    )
    for other in (challenge, reaction, broken, "[1, 2]", "{not json"):
        assert await taken(events, other, headers_for(other)) is False, other
    assert len(runner.started) == started

    socket = events_for(runner, signing_secret=None)
    assert await taken(socket, raw, headers_for(raw)) is False


async def test_every_subscribed_event_type_is_taken_by_the_events_middleware() -> None:
    """Each Bolt event type in SUBSCRIPTIONS (the table the manifest is built from) starts a
    turn and is acked 200 by the events middleware; anything else goes on to Bolt's listeners
    (`next`)."""
    runner = Runner()
    middleware = events_for(runner, signing_secret=None).middleware()
    nexts: list[str] = []

    async def dispatch(body: dict[str, Any]) -> Any:
        async def next_() -> None:
            nexts.append(body.get("type") or body.get("command", "?"))

        request = AsyncBoltRequest(body=json.dumps(body), mode="socket_mode")
        context = AsyncBoltContext({"bot_user_id": "UBOT", "team_id": "T1"})
        return await middleware(body=body, context=context, request=request, next=next_)

    for event_type in SUBSCRIPTIONS:
        event = {"type": event_type, "text": "<@UBOT> hi", "user": "U1", "ts": "1.1"}
        if event_type == "message":  # a direct message: answered without a mention
            event.update(channel="D1", channel_type="im")
        response = await dispatch(envelope(event))
        assert response is not None and response.status == 200, event_type
        assert runner.started[-1].ts == "1.1", event_type
    assert nexts == []
    assert await dispatch(envelope({"type": "reaction_added", "user": "U1"})) is None
    assert await dispatch({"command": "/gpt", "text": "help"}) is None
    assert nexts == ["event_callback", "/gpt"]
    assert len(runner.started) == len(SUBSCRIPTIONS)


def test_event_team_reads_the_envelope_as_bolt_does() -> None:
    """The workspace of an event is `authorizations[0].team_id` (shared channels: the installing
    workspace), else the top-level `team_id` — the same as Bolt's own reading."""
    from slack_bolt.request.internals import extract_team_id

    shared = envelope(mention("x"))
    shared["team_id"] = "TSENDER"
    plain = envelope(mention("y"))
    del plain["authorizations"]
    for body in (envelope(mention("z")), shared, plain):
        assert event_team(body) == extract_team_id(body)
    assert event_team(shared) == TEAM
