"""The ASGI app: `POST /slack/events`, `GET /healthz`, `GET /readyz`, `GET /metrics` (and in OAuth
mode `GET /slack/install` and `GET /slack/oauth_redirect`, from `bot.oauth`).

`/slack/events` is a plain ASGI handler in front of Starlette, which serves the other three. It is
the hot path (every Slack request), and the benchmark's profile put about a third of its CPU in
Starlette's middleware, routing and Request/Response objects, none of which it needs. It offers
each request to `slack_app.Events.direct` first (signed events of the bot's two types), then to
Bolt.

It builds the Bolt request itself rather than using Bolt's Starlette adapter, for two reasons: a
request-size limit before anything is parsed, and Bolt's form parser (slack_bolt 1.30), which
treats any form body containing the substring `payload` as an interactivity payload and, finding
no `payload=` field, parses it to `{}`: `/gpt set system payload rules`, or any command from a
channel named `payloads`, would get Bolt's 404. `bolt_request` re-parses such a body as the form it
is and rebuilds Bolt's context from it (`tests/test_bolt_internals.py` pins both Bolt behaviours,
so an upgrade that changes them fails a test, not production).

Slack signs every request with `X-Slack-Signature` over `v0:<timestamp>:<raw body>` and an integer
`X-Slack-Request-Timestamp`; Bolt's check calls `int()` on the timestamp and answers 500 to one
that is not an integer, so that case is refused with 401 here first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.metrics import Metrics
from bot.store import ThreadStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
"""Slack's payloads are far smaller; anything bigger is refused before parsing."""

EVENTS_PATH = "/slack/events"


def bolt_request(text: str, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """An AsyncBoltRequest for the body `text`, with the `payload`-substring form bug worked
    around. `headers` have lower-case names."""
    bolt_req = AsyncBoltRequest(
        body=text, query=query, headers={k: [v] for k, v in headers.items()}
    )
    content_type = headers.get("content-type", "")
    if (
        content_type.startswith("application/x-www-form-urlencoded")
        and bolt_req.body == {}
        and not text.startswith("payload=")
    ):
        bolt_req.body = dict(parse_qsl(text, keep_blank_values=True))
        bolt_req.context = build_async_context(AsyncBoltContext({}), bolt_req.body)
    return bolt_req


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Sequence[tuple[str, str]] = (("content-type", "application/json"),),
) -> None:
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


Work = Callable[[], Awaitable[None]]
DirectHandler = Callable[[str, Mapping[str, str]], Awaitable[Work | None]]
"""Tried before Bolt with the body text and lower-case headers. A request it takes is answered
200 at once and its work (`Work`: admitting and starting the turn) runs right after, in the same
pass of the event loop: its Redis write leaves before any other request runs, yet the ack does not
wait for Redis's reply, nor behind the turns that reply would queue up with under load."""


def slack_events_endpoint(
    bolt: AsyncApp, max_body: int = MAX_BODY_BYTES, direct: DirectHandler | None = None
) -> ASGIApp:
    """The raw ASGI handler for `POST /slack/events`; `direct` (`slack_app.Events.direct`) may
    take a request before Bolt does."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _respond(
                send,
                405,
                b"Method Not Allowed",
                [("content-type", "text/plain; charset=utf-8"), ("allow", "POST")],
            )
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            await _respond(send, 413, _error("request too large"))
            return
        raw = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone; nothing was verified and nothing is done
            raw += message.get("body", b"")
            if len(raw) > max_body:
                await _respond(send, 413, _error("request too large"))
                return
            more = message.get("more_body", False)
        stamp = headers.get("x-slack-request-timestamp")
        if stamp is not None and not _is_int(stamp):
            # Bolt's int() on it would raise and answer 500, and Slack would retry a forgery.
            await _respond(send, 401, _error("invalid request"))
            return
        text = raw.decode("utf-8", "replace")  # a changed body then fails the signature: 401
        work = await direct(text, headers) if direct is not None else None
        if work is not None:
            await _respond(send, 200, b"", [("content-type", "text/plain; charset=utf-8")])
            await work()
            return
        try:
            bolt_req = bolt_request(text, scope["query_string"].decode("latin-1"), headers)
        except (ValueError, TypeError, KeyError, AttributeError):
            # Malformed JSON or form; nothing was verified and nothing is done.
            await _respond(send, 400, _error("malformed request"))
            return
        response = await bolt.async_dispatch(bolt_req)
        # Bolt sets cookies only in its OAuth flow, which has its own routes (`bot.oauth`).
        await _respond(
            send,
            response.status,
            response.body.encode("utf-8"),
            list(response.first_headers_without_set_cookie().items()),
        )

    return endpoint


def build_web_app(
    *,
    bolt: AsyncApp,
    store: ThreadStore,
    metrics: Metrics,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    max_body: int = MAX_BODY_BYTES,
    direct: DirectHandler | None = None,
    routes: Sequence[BaseRoute] = (),
) -> ASGIApp:
    """`routes`: more Starlette routes (OAuth mode's `/slack/install` and
    `/slack/oauth_redirect`, `bot.oauth.oauth_routes`)."""

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        if await store.ping():
            return PlainTextResponse("ready")
        return PlainTextResponse("redis unreachable", status_code=503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        yield
        if on_shutdown is not None:
            await on_shutdown()

    rest = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *routes,
        ],
        lifespan=lifespan,
    )
    events = slack_events_endpoint(bolt, max_body, direct)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == EVENTS_PATH:
            started = time.perf_counter()

            async def timed(message: Message) -> None:
                if message["type"] == "http.response.start":  # the ack; work may follow it
                    metrics.phase("ack", time.perf_counter() - started)
                await send(message)

            await events(scope, receive, timed)
        else:
            await rest(scope, receive, send)  # health, metrics, 404s and the lifespan

    return app
