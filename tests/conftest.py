"""Shared fixtures: a real redis-server per test session, the fake Azure and Slack servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fakeredis import FakeAsyncRedis
from redis.asyncio import Redis

from bot.app import build_transport
from fakes.azure import FakeAzure, default_answer
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed; .ci/run must install it (apt-get)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    _need_redis_server()
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture
async def real_redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(params=["real", "fake"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """The same test on a real redis-server and on fakeredis (the embedded store)."""
    if request.param == "real":
        client = Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    else:
        client = FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def transport() -> AsyncIterator[httpx.AsyncBaseTransport]:
    """The transport the bot runs on (httpx over aiohttp), for the Azure client's tests."""
    async with build_transport() as transport:
        yield transport


@pytest.fixture(scope="session")
def fake_azure() -> Iterator[FakeAzure]:
    server = FakeAzure().start()
    yield server
    server.stop()


def _reset(fake_azure: FakeAzure) -> None:
    fake_azure.clear()
    fake_azure.first_token_delay = fake_azure.token_delay = 0.0
    fake_azure.context_window = 1_000_000
    fake_azure.answer = default_answer


@pytest.fixture
def azure(fake_azure: FakeAzure) -> Iterator[FakeAzure]:
    """The session's fake Azure, with no queued faults and no recorded requests, and its
    default answer and speed; put back after the test too, for the tests (on the same xdist
    worker) that use the session's fake directly."""
    _reset(fake_azure)
    yield fake_azure
    _reset(fake_azure)


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def slack(fake_slack: FakeSlack) -> FakeSlack:
    """The session's fake Slack Web API, with no calls, messages or faults left over."""
    fake_slack.clear()
    return fake_slack
