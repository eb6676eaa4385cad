"""The Slack half of the composition root: the Slack clients, the turn path (admission, answers,
the room, the status line, feedback), the assistant pane, App Home, the workspace mode (one token
or OAuth installations), the Bolt app and the ASGI app; their start and graceful stop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from starlette.types import ASGIApp

from bot.admins import AdminCheck
from bot.admission import Admission
from bot.answering import Answerer
from bot.app.core import Core, build_core, build_transport
from bot.app_home import HomeTab
from bot.assistant import AssistantPane
from bot.azure_openai import (
    supports_stream_usage,
)
from bot.channel_config import ConfigStore
from bot.channel_digest import ChannelDigest
from bot.channel_settings import environment_layer
from bot.commands import Commands
from bot.feedback import Feedback, FeedbackStore
from bot.message_events import Recorder
from bot.metrics import Metrics
from bot.oauth import oauth_routes
from bot.purge import Purger
from bot.room import Room
from bot.settings import Settings
from bot.slack_app import Events
from bot.slack_client import LeanWebClient
from bot.slack_files import FileFetcher
from bot.slack_identity import BotIdentity
from bot.slack_people import People
from bot.store.journal import TurnJournal
from bot.tenancy import Tenancy, build_tenancy
from bot.thread_reader import ThreadReader
from bot.thread_status import ThreadStatus
from bot.thread_turn import ThreadAnswerer, supports_images
from bot.turns import TurnRunner
from bot.usage import UsageLedger
from bot.web import build_web_app

log = logging.getLogger(__name__)


@dataclass
class SlackBot:
    """Everything the Slack modes run: the core services plus Slack client, runner and Bolt app."""

    core: Core
    metrics: Metrics
    runner: TurnRunner
    bolt: AsyncApp
    events: Events
    slack: Tenancy
    """The Slack clients and the workspaces they serve (one token, or OAuth installations)."""
    files_http: httpx.AsyncClient
    purger: Purger
    _keeper: asyncio.Task[None] | None = None
    _stop_keeping: asyncio.Event | None = None

    @property
    def client(self) -> AsyncWebClient:
        return self.slack.client

    async def start(self) -> None:
        """Give the Slack clients one shared aiohttp session (needs the running loop), and learn
        the bot's identity (`auth.test`, single-workspace mode); a token Slack refuses stops the
        start (`ConfigError`). Purges a replica left unfinished are resumed in the background.

        Without a shared session slack_sdk opens a new session, and a new connection, for every
        API call; Bolt copies `app.client.session` into its per-request clients.
        """
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=500, keepalive_timeout=30)
        )
        for client in (self.slack.client, self.slack.progress_client):
            if client is not None:
                client.session = session
        await self.slack.workspaces.learn()
        self.purger.start_resume()
        self._stop_keeping = asyncio.Event()
        self._keeper = asyncio.ensure_future(
            self.runner.keep(
                self.slack.client_for,
                interval=self.core.settings.bot_lease_seconds / 3,
                stop=self._stop_keeping,
            )
        )

    async def shutdown(self) -> None:
        """Let in-flight turns finish (bounded by BOT_DRAIN_SECONDS), then close the clients."""
        drain = self.core.settings.bot_drain_seconds
        if self.runner.in_flight:
            log.info("draining %d in-flight turns (up to %.0fs)", len(self.runner.in_flight), drain)
        self.runner.draining = True  # no more takeovers; leases still renewed while draining
        left = await self.runner.drain(drain)
        if left:
            log.warning("%d turns still running after %.0fs; stopping anyway", left, drain)
        if self._keeper is not None and self._stop_keeping is not None:
            self._stop_keeping.set()
            await self._keeper
        session = self.client.session
        if session is not None:
            await session.close()
        await self.files_http.aclose()
        await self.core.aclose()


def build_slack_client(settings: Settings, *, retry_rate_limits: bool = True) -> AsyncWebClient:
    """The Web API client (`LeanWebClient`: slack_sdk's, with JSON POSTs sent directly). Slack's
    429s are retried honouring Retry-After; 5xx are not, since a retried chat.postMessage could
    post twice. Streaming progress updates use a client without the 429 retry: a skipped
    progress update is better than a stall."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return LeanWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=15,
        rate_limit_retries=3 if retry_rate_limits else 0,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            *([AsyncRateLimitErrorRetryHandler(max_retry_count=3)] if retry_rate_limits else []),
        ],
    )


def build_slack_clients(settings: Settings) -> tuple[AsyncWebClient, AsyncWebClient]:
    """The app's Web API client, and the same without the 429 retry (streamed progress)."""
    return build_slack_client(settings), build_slack_client(settings, retry_rate_limits=False)


def build_pane(settings: Settings, core: Core, metrics: Metrics, people: People) -> AssistantPane:
    """The assistant pane: its Bolt listeners, and what its threads' turns add to a prompt."""
    return AssistantPane(
        redis=core.redis,
        keys=core.keys,
        digest=ChannelDigest(people),
        prompts=settings.bot_suggested_prompts,
        ttl_seconds=settings.history_ttl_seconds,
        metrics=metrics,
    )


def build_threads(
    settings: Settings,
    core: Core,
    people: People,
    files_http: httpx.AsyncClient,
    surroundings: AssistantPane,
) -> ThreadAnswerer:
    """The model's part of a Slack turn: the room's context, the thread read once."""
    return ThreadAnswerer(
        store=core.store,
        room=Room(
            people=people,
            files=FileFetcher(
                files_http,
                max_text_bytes=settings.bot_file_max_bytes,
                slack_api_url=settings.slack_api_url,
            ),
        ),
        reader=ThreadReader(),
        conversation=core.conversation,
        images_supported=supports_images(settings.azure_openai_api_version),
        surroundings=surroundings,
    )


def build_home(
    settings: Settings,
    core: Core,
    config: ConfigStore,
    ledger: UsageLedger,
    admins: AdminCheck,
    identity: BotIdentity | None,
) -> HomeTab:
    """The App Home tab, from the same stores the turns and `/gpt` use."""
    return HomeTab(
        config=config,
        ledger=ledger,
        admins=admins,
        facts_of=core.azure.deployments.facts,
        identity=identity,
        command=settings.bot_slash_command,
    )


def build_slack_bot(settings: Settings, *, socket_mode: bool = False) -> SlackBot:
    metrics = Metrics()
    core = build_core(settings, observer=metrics)
    config = ConfigStore(core.redis, core.keys, environment_layer(settings))
    ledger = UsageLedger(core.redis, core.keys)
    admission = Admission(
        redis=core.redis,
        store=core.store,
        journal=TurnJournal(core.redis, core.keys, lease_seconds=settings.bot_lease_seconds),
        config=config,
        ledger=ledger,
    )
    files_http = httpx.AsyncClient(transport=build_transport(), timeout=httpx.Timeout(30.0))
    people = People(core.redis, core.keys)
    pane = build_pane(settings, core, metrics, people)
    threads = build_threads(settings, core, people, files_http, pane)
    answerer = Answerer(
        store=core.store,
        threads=threads,
        admission=admission,
        metrics=metrics,
        now=ledger.now,
        stream_capable=supports_stream_usage(settings.azure_openai_api_version),
        stream_interval=settings.bot_stream_interval,
    )
    purger = Purger(core.redis, core.keys)
    slack = build_tenancy(settings, core.redis, core.keys, purger, *build_slack_clients(settings))
    runner = TurnRunner(
        admission=admission,
        answerer=answerer,
        metrics=metrics,
        progress_client=slack.progress_client,
        log_content=settings.bot_log_content,
        status=ThreadStatus(core.redis, core.keys),
    )
    votes = FeedbackStore(core.redis, core.keys)
    commands = Commands(
        config=config,
        ledger=ledger,
        admins=AdminCheck(settings.bot_admin_user_ids),
        command=settings.bot_slash_command,
        feedback=votes,
        forget=purger,
    )
    home = build_home(settings, core, config, ledger, commands.admins, slack.identity)
    secret = settings.slack_signing_secret
    signing_secret = None if socket_mode or secret is None else secret.get_secret_value()
    events = Events(runner, slack.workspaces, signing_secret, Recorder(core.store, metrics))
    extra = [commands.register, Feedback(votes, metrics).register, pane.register, home.register]
    bolt = slack.bolt_app(events, signing_secret, extra)
    return SlackBot(core, metrics, runner, bolt, events, slack, files_http, purger)


def build_asgi(bot: SlackBot) -> ASGIApp:
    flow = bot.bolt.oauth_flow
    return build_web_app(
        bolt=bot.bolt,
        direct=bot.events.direct,
        store=bot.core.store,
        metrics=bot.metrics,
        on_startup=bot.start,
        on_shutdown=bot.shutdown,
        routes=oauth_routes(flow) if flow is not None else (),
    )
