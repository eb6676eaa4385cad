"""The ASGI app (Starlette): `POST /slack/events`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

`/slack/events` builds the Bolt request itself rather than using Bolt's Starlette adapter, for two
reasons: a request-size limit before anything is parsed, and Bolt's form parser, which treats any
form body containing the substring `payload` as an interactivity payload (reference/slack.md §4):
`/gpt set system payload rules` would otherwise parse to `{}` and get a 404.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.history import HistoryStore
from bot.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
"""Slack's payloads are far smaller; anything bigger is refused before parsing."""


def bolt_request(raw: bytes, request: Request) -> AsyncBoltRequest:
    """An AsyncBoltRequest for `raw`, with the `payload`-substring form bug worked around."""
    text = raw.decode("utf-8", "replace")  # a changed body then fails the signature check: 401
    bolt_req = AsyncBoltRequest(
        body=text,
        query=str(request.url.query),
        headers={k: [v] for k, v in request.headers.items()},
    )
    content_type = request.headers.get("content-type", "")
    if (
        content_type.startswith("application/x-www-form-urlencoded")
        and bolt_req.body == {}
        and not text.startswith("payload=")
    ):
        bolt_req.body = dict(parse_qsl(text, keep_blank_values=True))
        bolt_req.context = build_async_context(AsyncBoltContext({}), bolt_req.body)
    return bolt_req


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def build_web_app(
    *,
    bolt: AsyncApp,
    store: HistoryStore,
    metrics: Metrics,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> Starlette:
    async def slack_events(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return JSONResponse({"error": "request too large"}, status_code=413)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_body:
                return JSONResponse({"error": "request too large"}, status_code=413)
        stamp = request.headers.get("x-slack-request-timestamp")
        if stamp is not None and not _is_int(stamp):
            # Bolt's int() on it would raise and answer 500, and Slack would retry a forgery.
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            bolt_req = bolt_request(raw, request)
        except (ValueError, TypeError, KeyError, AttributeError):
            # Malformed JSON or form; nothing was verified and nothing is done.
            return JSONResponse({"error": "malformed request"}, status_code=400)
        return to_starlette_response(await bolt.async_dispatch(bolt_req))

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

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
