"""Command line: `python -m bot [serve|socket|ask|...]`. The only code that reads the environment.

Exit codes: 0 ok, 1 an API or service error (its mapped message is printed), 2 a configuration
error (the message says how to fix it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from starlette.types import ASGIApp

from bot import log_redaction
from bot.chat_types import Message
from bot.errors import BotError, ConfigError
from bot.formatting import usage_text
from bot.settings import Settings, load_settings
from bot.settings_checks import SlackMode

EXIT_OK, EXIT_API, EXIT_CONFIG = 0, 1, 2

LEVEL_CHECKING_LOGGERS = ("slack_sdk.web.async_base_client", "slack_bolt.AsyncApp")
"""slack_sdk and Bolt test `logger.level <= DEBUG` (the logger's own level, 0 when unset) before
building debug strings of every request and response, so unless these loggers get an explicit
level they format full JSON bodies on every API call only to drop them (found by profiling)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Azure OpenAI in Slack threads. Without a command: Socket Mode when "
        "SLACK_APP_TOKEN is set, else the HTTP server.",
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="HTTP mode: POST /slack/events, /healthz, /readyz")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container
    serve.add_argument("--port", type=int, default=None, help="default $PORT, else 3000")
    sub.add_parser("socket", help="Socket Mode (development; needs SLACK_APP_TOKEN)")
    sub.add_parser("doctor", help="check settings, Azure, Slack and Redis; say how to fix each")
    manifest = sub.add_parser("manifest", help="print the Slack app manifest (JSON)")
    manifest.add_argument(
        "--url", help="public base URL for HTTP mode, e.g. https://bot.example.com"
    )
    manifest.add_argument("--socket", action="store_true", help="a Socket Mode manifest")
    ask = sub.add_parser("ask", help="ask the model once from the terminal, like the quickstart")
    ask.add_argument("question")
    ask.add_argument("--system", help="system prompt (default: BOT_SYSTEM_PROMPT)")
    ask.add_argument("--thread", help="continue a conversation kept in the store under NAME")
    ask.add_argument("--json", action="store_true", help="print the raw response body")
    ask.add_argument("--stream", action="store_true", help="print the answer as it streams")
    return parser


async def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_core
    from bot.channel_settings import environment_layer

    core = build_core(settings)
    try:
        turn = environment_layer(settings).turn_settings()  # channels override it in Slack
        if args.system is not None:
            turn = replace(turn, system_prompt=args.system)
        streamed = False

        async def show(piece: str) -> None:
            nonlocal streamed
            streamed = True
            sys.stdout.write(piece)
            sys.stdout.flush()

        on_delta = show if args.stream and not args.json else None
        if args.thread:
            async with core.store.turn(f"cli:{args.thread}", turn.history_turns * 2) as held:
                reply = await core.conversation.answer(held, args.question, turn, on_delta=on_delta)
            result = reply.result
        else:
            messages: list[Message] = [
                {"role": "system", "content": turn.system_prompt},
                {"role": "user", "content": args.question},
            ]
            result = await core.azure.complete(messages, turn.options, on_delta=on_delta)
        if args.json:
            print(json.dumps(result.raw, indent=2, ensure_ascii=False))
            return EXIT_OK
        if streamed:
            print()
        else:
            print(result.content or "(the model returned no text)")
        if result.finish_reason == "length":
            print("(the answer was cut off at max_tokens)")
        print(usage_text(result.usage, result.deployment))
        return EXIT_OK
    finally:
        await core.aclose()


async def _doctor(settings: Settings) -> int:
    from bot import doctor
    from bot.app import build_azure, build_redis, build_slack_client, build_transport
    from bot.retry import RetryPolicy

    transport = build_transport()
    redis = build_redis(settings)
    slack = build_slack_client(settings)
    try:
        azure = build_azure(settings, transport, retry=RetryPolicy(max_retries=1, max_total_wait=5))
        checks = doctor.check_settings(settings)
        checks.append(await doctor.check_azure(settings, azure))
        checks += await doctor.check_slack(settings, slack)
        checks += await doctor.check_redis(settings, redis)
    finally:
        await transport.aclose()
        await redis.aclose()
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed.")
    return EXIT_OK if not failed else EXIT_API


def _manifest(settings: Settings, args: argparse.Namespace) -> int:
    from bot.manifest import build_manifest
    from bot.oauth import redirect_uri

    socket_mode = args.socket or (settings.slack_app_token is not None and not args.url)
    if not socket_mode and not args.url:
        raise ConfigError("HTTP mode needs the public URL: manifest --url https://HOST")
    doc = build_manifest(
        command=settings.bot_slash_command,
        url=args.url,
        socket_mode=socket_mode,
        redirect_url=redirect_uri(settings, args.url) if settings.oauth_mode else None,
    )
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return EXIT_OK


def _hide_oauth_credentials_from_bolt() -> None:
    """Bolt's AsyncApp starts its own OAuth flow (on files in $HOME) whenever SLACK_CLIENT_ID
    and SLACK_CLIENT_SECRET are in the environment, and then ignores the bot token; the
    single-workspace modes must not let it see them."""
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        os.environ.pop(name, None)


def _log_at(level: str) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel(level)
    for name in LEVEL_CHECKING_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _redact(settings: Settings) -> None:
    """Blank Slack tokens and the app's secrets out of every log line (`bot.log_redaction`)."""
    log_redaction.install(
        s.get_secret_value()
        for s in (settings.slack_client_secret, settings.slack_signing_secret)
        if s is not None
    )


def worker_app() -> ASGIApp:
    """The ASGI app of one HTTP worker process (`WEB_CONCURRENCY` > 1): uvicorn starts each
    worker afresh, so each reads its settings and builds its own bot, as a replica would."""
    from bot.app import build_asgi, build_slack_bot
    from bot.server import tune_gc

    settings = load_settings(slack="http")
    _log_at(settings.bot_log_level)
    _redact(settings)
    bot = build_slack_bot(settings)
    tune_gc()
    return build_asgi(bot)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_at("WARNING")
    # The Slack modes check their tokens with every other setting, so one run lists all problems.
    modes: dict[str | None, SlackMode] = {None: "auto", "serve": "http", "socket": "socket"}
    try:
        settings = load_settings(slack=modes.get(args.command))
        _log_at(settings.bot_log_level)
        _redact(settings)
        if args.command == "doctor":
            logging.getLogger().setLevel(logging.ERROR)
            return asyncio.run(_doctor(settings))
        if args.command == "manifest":
            return _manifest(settings, args)
        if args.command == "ask":
            logging.getLogger().setLevel(logging.WARNING)
            return asyncio.run(_ask(settings, args))
        command = args.command or ("socket" if settings.slack_app_token else "serve")
        if command == "socket" or not settings.oauth_mode:
            _hide_oauth_credentials_from_bolt()
        from bot import server

        if command == "socket":
            return server.run_socket_mode(settings)
        port = getattr(args, "port", None) or int(os.environ.get("PORT") or 3000)
        return server.run_http(settings, host=getattr(args, "host", "0.0.0.0"), port=port)  # noqa: S104
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        if getattr(exc, "request_id", None):
            print(f"(request id {exc.request_id})", file=sys.stderr)  # type: ignore[attr-defined]
        return EXIT_API
    except KeyboardInterrupt:
        return 130
