"""The Slack-independent half of the composition root: Redis, the httpx transport, the Azure
client, the thread store and the conversation — what `python -m bot ask` and `doctor` need, and
what the Slack app (`bot.app.slack`) builds on. Nothing else in the package builds a concrete
client: every other module receives its I/O objects as arguments, which is what lets the tests
swap in fake servers without patching.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from bot.azure_auth import EntraTokens
from bot.azure_deployments import InMemoryDeployments
from bot.azure_openai import (
    AzureOpenAIClient,
    ClientObserver,
    TokenProvider,
    static_token_provider,
)
from bot.azure_transport import AzureTransport
from bot.conversation import Conversation
from bot.retry import RetryPolicy
from bot.settings import Settings
from bot.store import Keys, ThreadStore
from bot.store.connect import connect
from bot.store.deployments import RedisDeployments

log = logging.getLogger(__name__)


def build_redis(settings: Settings) -> Redis:
    """A real Redis for `REDIS_URL` (one server or a cluster, `bot.store.connect`), else an
    embedded in-memory one (fakeredis) with a warning."""
    if settings.redis_url is None:
        log.warning(
            "REDIS_URL is not set: using an embedded in-memory store. Thread history, dedup "
            "and settings are lost on restart and not shared between replicas."
        )
        from fakeredis import FakeAsyncRedis

        fake: Redis = FakeAsyncRedis(decode_responses=True)
        return fake
    return connect(
        settings.redis_url.get_secret_value(),
        cluster=settings.redis_cluster,
        ca_file=settings.redis_ca_file,
    )


def build_transport() -> httpx.AsyncBaseTransport:
    """The httpx transport for the Azure client, on aiohttp's connection pool (httpx-aiohttp, with
    a direct POST for the Azure client: `bot.azure_transport`).

    The benchmark showed httpcore's pool spending about half the bot's CPU at 200 calls in flight
    (it scans every connection for each request); aiohttp's pool does not. The httpx request and
    response types, and `httpx.MockTransport` in tests, stay as they are.
    """
    # Idle connections stay 30 s (httpx's default is 5 s): traffic comes in bursts, and each new
    # connection to Azure costs a TLS handshake. The benchmark's bursts a few seconds apart
    # reconnected every time with 5 s. A connection Azure closed meanwhile fails fast and is
    # retried like any connection error.
    return AzureTransport(max_connections=2000, keepalive_seconds=30.0)


def build_azure(
    settings: Settings,
    transport: httpx.AsyncBaseTransport,
    observer: ClientObserver | None = None,
    retry: RetryPolicy | None = None,
    *,
    redis: Redis | None = None,
) -> AzureOpenAIClient:
    """The Azure client. With `redis`, what it learns about deployments (reasoning or not) is
    shared by every replica; without, it is learned once per process. With
    AZURE_OPENAI_AUTH=entra, each token request uses a DefaultAzureCredential it then closes."""
    provider: TokenProvider | None = None
    if settings.azure_openai_auth == "entra":
        from azure.identity.aio import DefaultAzureCredential

        # azure-identity logs every failed attempt of its chain at WARNING; the bot reports the
        # failure once, as EntraTokenUnavailable, listing what was tried.
        logging.getLogger("azure.identity").setLevel(logging.ERROR)
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(
            logging.WARNING
        )
        provider = EntraTokens(DefaultAzureCredential)
    elif settings.azure_openai_ad_token is not None and settings.azure_openai_key is None:
        provider = static_token_provider(settings.azure_openai_ad_token)
    memory = (
        RedisDeployments(redis, Keys(settings.bot_redis_prefix))
        if redis is not None
        else InMemoryDeployments()
    )
    return AzureOpenAIClient(
        transport,
        endpoint=settings.azure_openai_endpoint,
        deployment=settings.azure_openai_deployment,
        api_version=settings.azure_openai_api_version,
        api_key=settings.azure_openai_key if provider is None else None,
        secondary_key=settings.azure_openai_key_2 if provider is None else None,
        token_provider=provider,
        retry=retry or RetryPolicy(max_retries=settings.azure_openai_max_retries),
        observer=observer,
        timeout=httpx.Timeout(settings.azure_openai_timeout, connect=5.0),
        memory=memory,
    )


def build_store(settings: Settings, redis: Redis) -> ThreadStore:
    return ThreadStore(
        redis,
        Keys(settings.bot_redis_prefix),
        # Channels may keep up to 100 turns (`/gpt set history`); each turn reads only its own.
        max_messages=2 * max(100, settings.bot_history_turns),
        ttl_seconds=settings.history_ttl_seconds,
        # The lock is a lease the live turn keeps renewing (TurnRunner.keep), so a dead
        # replica's lock lapses within seconds; waiting for a busy thread is bounded apart.
        lock_timeout=settings.bot_lease_seconds,
        lock_wait=settings.bot_lock_timeout,
    )


@dataclass
class Core:
    """The Slack-independent services: what `ask` needs, and what the Slack app builds on."""

    settings: Settings
    transport: httpx.AsyncBaseTransport
    redis: Redis
    keys: Keys
    store: ThreadStore
    azure: AzureOpenAIClient
    conversation: Conversation

    async def aclose(self) -> None:
        await self.transport.aclose()
        await self.redis.aclose()


def build_core(settings: Settings, observer: ClientObserver | None = None) -> Core:
    transport = build_transport()
    redis = build_redis(settings)
    store = build_store(settings, redis)
    azure = build_azure(settings, transport, observer, redis=redis)
    return Core(settings, transport, redis, store.keys, store, azure, Conversation(azure))
