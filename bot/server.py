"""Process lifecycle for the two Slack modes: uvicorn (HTTP) and Socket Mode, with a graceful stop.

On SIGTERM uvicorn stops accepting connections and finishes the open requests; the app's lifespan
shutdown then waits for in-flight turns (Bolt acked them already, so they would otherwise be lost)
before closing the clients. Socket Mode does the same around its websocket.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

import uvicorn

from bot.app import build_asgi, build_slack_bot, build_slack_client
from bot.settings import Settings
from bot.slack_identity import BotIdentity

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a server that allocates many short-lived objects.

    The start-up objects (modules, the app graph) are frozen out of every collection, and the
    young generation is collected every 20,000 allocations instead of 700: the benchmark showed
    a lower CPU cost per turn, and turns create few reference cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run_http(settings: Settings, *, host: str, port: int) -> int:
    """Serve HTTP. With `WEB_CONCURRENCY` > 1, that many worker processes share the port, each a
    replica of its own (its own event loop, clients and lease keeper, all sharing Redis), so the
    bot uses every core; the turn journal and Redis claims make that as safe as replicas are."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "lifespan": "on",
        "log_level": settings.bot_log_level.lower(),
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.bot_drain_seconds) + 1,
        "backlog": 4096,
    }
    log.info("HTTP mode: POST http://%s:%d/slack/events", host, port)
    if settings.web_concurrency > 1:
        # Learn the bot's identity once first, so a token Slack refuses stops here with the fix
        # (OAuth mode has no token of its own: each installation brings one).
        if not settings.oauth_mode:
            asyncio.run(BotIdentity(build_slack_client(settings)).learn())
        uvicorn.run("bot.cli:worker_app", factory=True, workers=settings.web_concurrency, **options)
        return 0
    bot = build_slack_bot(settings)
    # Learn the bot's identity before serving: a token Slack refuses stops here with the fix
    # (ConfigError, exit code 2) instead of failing inside the server's start-up.
    asyncio.run(bot.slack.workspaces.learn())
    tune_gc()
    uvicorn.Server(uvicorn.Config(build_asgi(bot), **options)).run()
    return 0


def run_socket_mode(settings: Settings) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(_socket_mode(settings))
    else:
        uvloop.run(_socket_mode(settings))
    return 0


async def _socket_mode(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    assert settings.slack_app_token is not None  # checked by load_settings(slack=...)
    bot = build_slack_bot(settings, socket_mode=True)
    await bot.start()
    tune_gc()
    handler = AsyncSocketModeHandler(
        bot.bolt, app_token=settings.slack_app_token.get_secret_value()
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("Socket Mode: connected")
    await stop.wait()
    log.info("Socket Mode: stopping")
    await handler.close_async()  # type: ignore[no-untyped-call]
    await bot.shutdown()
