"""The composition root: the only module that builds concrete clients from `Settings`.

Everything else receives its httpx client, Redis client, Slack client and settings as arguments,
which is what lets the tests swap in fake servers without patching.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bot.azure_openai import AzureOpenAIClient, ClientObserver, static_token_provider
from bot.chat_types import ChatOptions
from bot.conversation import Conversation, TurnSettings
from bot.history import HistoryStore
from bot.retry import RetryPolicy
from bot.settings import Settings

log = logging.getLogger(__name__)

REDIS_POOL_SIZE = 64
"""redis-py's default async pool raises MaxConnectionsError past its limit; a blocking pool of a
sensible size queues instead (the benchmark runs 1,000 turns in flight over it)."""


def build_redis(settings: Settings) -> Redis:
    """A real Redis for `REDIS_URL`, else an embedded in-memory one (fakeredis) with a warning."""
    if settings.redis_url is None:
        log.warning(
            "REDIS_URL is not set: using an embedded in-memory store. Thread history, dedup "
            "and settings are lost on restart and not shared between replicas."
        )
        from fakeredis import FakeAsyncRedis

        fake: Redis = FakeAsyncRedis(decode_responses=True)
        return fake
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=REDIS_POOL_SIZE,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        decode_responses=True,
        # redis-py's default retries with up to 10 s backoff; when Redis is down the user and
        # /readyz should hear about it in well under Slack's 3 seconds instead.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
    )
    return Redis(connection_pool=pool)


def build_http(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.azure_openai_timeout, connect=5.0),
        limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200),
        headers={"User-Agent": "slack-azure-gpt/0.1"},
    )


def build_azure(
    settings: Settings, http: httpx.AsyncClient, observer: ClientObserver | None = None
) -> AzureOpenAIClient:
    provider = (
        static_token_provider(settings.azure_openai_ad_token)
        if settings.azure_openai_ad_token is not None and settings.azure_openai_key is None
        else None
    )
    return AzureOpenAIClient(
        http,
        endpoint=settings.azure_openai_endpoint,
        deployment=settings.azure_openai_deployment,
        api_version=settings.azure_openai_api_version,
        api_key=settings.azure_openai_key,
        secondary_key=settings.azure_openai_key_2,
        token_provider=provider,
        retry=RetryPolicy(max_retries=settings.azure_openai_max_retries),
        observer=observer,
    )


def build_store(settings: Settings, redis: Redis) -> HistoryStore:
    return HistoryStore(
        redis,
        prefix=settings.bot_redis_prefix,
        max_messages=max(2, settings.bot_history_turns * 2),
        ttl_seconds=settings.history_ttl_seconds,
        lock_timeout=settings.bot_lock_timeout,
    )


def default_turn_settings(settings: Settings) -> TurnSettings:
    """The environment's defaults; per-channel configuration overrides them."""
    return TurnSettings(
        system_prompt=settings.bot_system_prompt,
        history_turns=settings.bot_history_turns,
        context_window=settings.bot_context_window,
        options=ChatOptions(
            deployment=settings.azure_openai_deployment,
            temperature=settings.bot_temperature,
            top_p=settings.bot_top_p,
            max_tokens=settings.bot_max_tokens,
        ),
    )


@dataclass
class Core:
    """The Slack-independent services: what `ask` needs, and what the Slack app builds on."""

    settings: Settings
    http: httpx.AsyncClient
    redis: Redis
    store: HistoryStore
    azure: AzureOpenAIClient
    conversation: Conversation

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()


def build_core(settings: Settings, observer: ClientObserver | None = None) -> Core:
    http = build_http(settings)
    redis = build_redis(settings)
    store = build_store(settings, redis)
    azure = build_azure(settings, http, observer)
    return Core(settings, http, redis, store, azure, Conversation(azure, store))
