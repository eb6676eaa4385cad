"""The Redis installation and OAuth state stores (Bolt's interfaces), on a real redis-server and on
fakeredis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from fakeredis import FakeAsyncRedis
from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.store.installations import RedisInstallationStore
from bot.store.keys import Keys
from bot.store.oauth_state import RedisOAuthStateStore

KEYS = Keys()


@pytest.fixture(params=["real", "fake"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    if request.param == "real":
        client = Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    else:
        client = FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


def installation(
    team: str | None = "T0AAAA",
    *,
    enterprise: str | None = None,
    org: bool = False,
    user: str = "U0INSTALL",
    token: str = "xoxb-aaaa",
    **extra: object,
) -> Installation:
    return Installation(
        app_id="A0APP",
        enterprise_id=enterprise,
        team_id=team,
        bot_token=token,
        bot_id="B0BOT",
        bot_user_id="U0BOT",
        bot_scopes="chat:write,commands",
        user_id=user,
        is_enterprise_install=org,
        **extra,  # type: ignore[arg-type]
    )


async def test_installation_store_saves_and_finds_a_workspace_install(redis_client: Redis) -> None:
    """What is saved comes back field for field, as an installation and as a bot, in one hash
    named by the workspace with no expiry."""
    store = RedisInstallationStore(redis_client, KEYS)
    await store.async_save(installation(enterprise="E0GRID", team_name="Alpha"))
    found = await store.async_find_installation(enterprise_id="E0GRID", team_id="T0AAAA")
    assert found is not None
    assert (found.bot_token, found.bot_user_id, found.team_name) == ("xoxb-aaaa", "U0BOT", "Alpha")
    assert found.bot_scopes == ["chat:write", "commands"]
    bot = await store.async_find_bot(enterprise_id=None, team_id="T0AAAA")
    assert bot is not None and bot.bot_token == "xoxb-aaaa"
    assert await redis_client.keys("*") == [KEYS.installation("T0AAAA")]
    assert await redis_client.ttl(KEYS.installation("T0AAAA")) == -1
    assert await store.async_find_installation(enterprise_id=None, team_id="T0OTHER") is None


async def test_installation_store_org_install_is_found_from_any_of_its_workspaces(
    redis_client: Redis,
) -> None:
    """An org-wide install is the organisation's: found with `is_enterprise_install` whatever
    team a request names, and not mistaken for a workspace install."""
    store = RedisInstallationStore(redis_client, KEYS)
    await store.async_save(installation(None, enterprise="E0ORG", org=True, token="xoxb-org"))
    for team in (None, "T0ANY"):
        found = await store.async_find_installation(
            enterprise_id="E0ORG", team_id=team, is_enterprise_install=True
        )
        assert found is not None and found.bot_token == "xoxb-org", team
    bot = await store.async_find_bot(
        enterprise_id="E0ORG", team_id="T0ANY", is_enterprise_install=True
    )
    assert bot is not None and bot.is_enterprise_install
    assert await store.async_find_bot(enterprise_id="E0ORG", team_id="T0ANY") is None


async def test_installation_store_per_user_entries_carry_the_latest_bot_token(
    redis_client: Redis,
) -> None:
    """A user's installation is theirs, with the latest bot token (a later install by someone
    else replaced it); deleting one user's entry leaves the others and the bot."""
    store = RedisInstallationStore(redis_client, KEYS)
    await store.async_save(installation(user="U0FIRST", token="xoxb-old"))
    await store.async_save(installation(user="U0SECOND", token="xoxb-new"))
    first = await store.async_find_installation(
        enterprise_id=None, team_id="T0AAAA", user_id="U0FIRST"
    )
    assert first is not None and (first.user_id, first.bot_token) == ("U0FIRST", "xoxb-new")
    latest = await store.async_find_installation(enterprise_id=None, team_id="T0AAAA")
    assert latest is not None and latest.user_id == "U0SECOND"
    await store.async_delete_installation(enterprise_id=None, team_id="T0AAAA", user_id="U0FIRST")
    assert (
        await store.async_find_installation(enterprise_id=None, team_id="T0AAAA", user_id="U0FIRST")
        is None
    )
    assert await store.async_find_installation(enterprise_id=None, team_id="T0AAAA") is not None


async def test_installation_store_deletes_bot_installers_and_all(redis_client: Redis) -> None:
    """delete_bot removes only the bot, delete_installation every installer entry, delete_all
    the whole installation (what an uninstall does)."""
    store = RedisInstallationStore(redis_client, KEYS)
    await store.async_save(installation())
    await store.async_delete_bot(enterprise_id=None, team_id="T0AAAA")
    assert await store.async_find_bot(enterprise_id=None, team_id="T0AAAA") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0AAAA") is not None
    await store.async_delete_installation(enterprise_id=None, team_id="T0AAAA")
    assert await store.async_find_installation(enterprise_id=None, team_id="T0AAAA") is None
    await store.async_save(installation(team="T0BBBB"))
    await store.async_save(installation())
    await store.async_delete_all(enterprise_id=None, team_id="T0AAAA")
    assert await redis_client.keys("*") == [KEYS.installation("T0BBBB")]


async def test_installation_store_save_bot_replaces_the_rotated_token(redis_client: Redis) -> None:
    """Token rotation saves the refreshed bot (`save_bot`): installations read afterwards carry
    the new token, refresh token and expiry."""
    store = RedisInstallationStore(redis_client, KEYS)
    expires = int(time.time()) + 43_200
    await store.async_save(
        installation(bot_refresh_token="xoxe-1-old", bot_token_expires_at=expires)
    )
    bot = await store.async_find_bot(enterprise_id=None, team_id="T0AAAA")
    assert bot is not None and bot.bot_token_expires_at == expires
    bot.bot_token, bot.bot_refresh_token = "xoxe.xoxb-new", "xoxe-1-new"
    await store.async_save_bot(bot)
    found = await store.async_find_installation(enterprise_id=None, team_id="T0AAAA")
    assert found is not None
    assert (found.bot_token, found.bot_refresh_token) == ("xoxe.xoxb-new", "xoxe-1-new")


async def test_state_store_states_are_single_use_and_expire(redis_client: Redis) -> None:
    """An issued state is accepted once, within its 10 minutes (a Redis TTL); a reused,
    expired, unknown or malformed one is refused."""
    states = RedisOAuthStateStore(redis_client, KEYS)
    state = await states.async_issue()
    assert 590 <= await redis_client.ttl(KEYS.oauth_state(state)) <= 600
    assert await states.async_consume(state) is True
    assert await states.async_consume(state) is False
    expired = await states.async_issue()
    await redis_client.pexpire(KEYS.oauth_state(expired), 1)
    await asyncio.sleep(0.01)
    assert await states.async_consume(expired) is False
    assert await states.async_consume("never-issued-state-0000") is False
    assert await states.async_consume("bad*state") is False
    assert await redis_client.keys("*") == []
