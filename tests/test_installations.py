"""The Redis installation and OAuth state stores (Bolt's interfaces), on a real redis-server and on
fakeredis; token rotation once across replicas; the per-workspace cache of the fast event path."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_client import LeanWebClient
from bot.store.installations import RedisInstallationStore
from bot.store.keys import Keys
from bot.store.oauth_state import RedisOAuthStateStore
from bot.token_rotation import LockedTokenRotator
from bot.workspaces import InstalledWorkspaces
from fakes.slack import CLIENT_ID, CLIENT_SECRET, FakeSlack, FakeWorkspace
from fakes.slack_requests import envelope, mention

KEYS = Keys()


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


async def test_rotation_happens_once_when_replicas_race(
    redis_client: Redis, slack: FakeSlack
) -> None:
    """Two replicas find the token expiring at once: Slack is asked for one refresh, both get
    the new token, and it is saved."""
    store = RedisInstallationStore(redis_client, KEYS)
    code, _ = slack.install_code(FakeWorkspace(team="T0ROT"), expires_in=43_200)
    client = AsyncWebClient(base_url=slack.api_url)
    granted = await client.oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code
    )
    await store.async_save(
        installation(
            "T0ROT",
            token=granted["access_token"],
            bot_refresh_token=granted["refresh_token"],
            bot_token_expires_in=60,  # 12 hours later: a minute left
        )
    )
    replicas = [
        LockedTokenRotator(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            client=client,
            store=store,
            redis=redis_client,
            keys=KEYS,
        )
        for _ in range(2)
    ]
    current = await store.async_find_installation(enterprise_id=None, team_id="T0ROT")
    assert current is not None
    results = await asyncio.gather(
        *(r.perform_token_rotation(installation=current) for r in replicas)
    )
    refreshes = [c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type")]
    assert len(refreshes) == 1
    tokens = {r.bot_token for r in results if r is not None}
    assert len(tokens) == 1 and tokens != {granted["access_token"]}
    saved = await store.async_find_installation(enterprise_id=None, team_id="T0ROT")
    assert saved is not None and saved.bot_token in tokens
    assert saved.bot_token_expires_at is not None
    assert saved.bot_token_expires_at > time.time() + 43_000


async def test_installed_workspaces_serve_each_team_its_own_token_from_a_cache(
    redis_client: Redis,
) -> None:
    """The fast path's view: each envelope gets its workspace's token and bot user id, on
    clients like the app's (the progress one without the 429 wait); the installation is read
    once per TTL, and an uninstalled workspace is forgotten."""
    store = RedisInstallationStore(redis_client, KEYS)
    await store.async_save(installation("T0AAAA", token="xoxb-a"))
    await store.async_save(installation("T0BBBB", token="xoxb-b"))
    now = [1000.0]
    template = LeanWebClient(base_url="http://127.0.0.1:9/api/", rate_limit_retries=3)
    workspaces = InstalledWorkspaces(store, template, ttl=30, clock=lambda: now[0])

    def body(team: str) -> dict:  # type: ignore[type-arg]
        env = envelope(mention("hi"))
        env["team_id"] = env["authorizations"][0]["team_id"] = team
        return env

    a, b = await workspaces.for_event(body("T0AAAA")), await workspaces.for_event(body("T0BBBB"))
    assert a is not None and b is not None
    assert (a.client.token, b.client.token, a.bot_user_id) == ("xoxb-a", "xoxb-b", "U0BOT")
    assert isinstance(a.client, LeanWebClient) and a.client.rate_limit_retries == 3
    assert isinstance(a.progress_client, LeanWebClient) and a.progress_client.token == "xoxb-a"
    assert a.progress_client.rate_limit_retries == 0  # progress updates are never waited for
    await store.async_delete_all(enterprise_id=None, team_id="T0AAAA")
    assert await workspaces.for_event(body("T0AAAA")) is a  # cached
    now[0] += 31
    assert await workspaces.for_event(body("T0AAAA")) is None
    assert await workspaces.for_event(body("T0NONE")) is None
    workspaces.forget("T0BBBB")
    await store.async_delete_all(enterprise_id=None, team_id="T0BBBB")
    assert await workspaces.for_event(body("T0BBBB")) is None


async def test_failed_rotation_keeps_a_live_token_and_drops_a_dead_one(
    redis_client: Redis, slack: FakeSlack
) -> None:
    """When Slack refuses the refresh token, the fast path keeps using a token that has not
    expired yet (a later event tries again) and gives up on one that has."""
    store = RedisInstallationStore(redis_client, KEYS)
    client = AsyncWebClient(base_url=slack.api_url)
    rotator = LockedTokenRotator(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client=client,
        store=store,
        redis=redis_client,
        keys=KEYS,
    )
    workspaces = InstalledWorkspaces(store, client, rotator=rotator)
    body = envelope(mention("hi"), team="T0LIVE")
    await store.async_save(
        installation(
            "T0LIVE",
            token="xoxe.xoxb-live",
            bot_refresh_token="xoxe-1-unknown",
            bot_token_expires_in=600,
        )
    )
    live = await workspaces.for_event(body)
    assert live is not None and live.client.token == "xoxe.xoxb-live"
    refreshes = [c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type")]
    assert len(refreshes) == 1  # it was tried
    workspaces.forget("T0LIVE")
    await store.async_save(
        installation(
            "T0LIVE",
            token="xoxe.xoxb-dead",
            bot_refresh_token="xoxe-1-unknown",
            bot_token_expires_at=int(time.time()) - 5,
        )
    )
    assert await workspaces.for_event(body) is None


async def test_workspace_by_team_id_finds_its_org_wide_install(redis_client: Redis) -> None:
    """A turn taken over names only its workspace: found by its own install, or through the org
    it was noted under; an unknown workspace has none."""
    store = RedisInstallationStore(redis_client, KEYS)
    await store.async_save(installation("T0SOLO", token="xoxb-solo"))
    await store.async_save(installation(None, enterprise="E0ORG", org=True, token="xoxb-org"))
    workspaces = InstalledWorkspaces(store, AsyncWebClient(base_url="http://127.0.0.1:9/api/"))
    solo = await workspaces.for_team("T0SOLO")
    assert solo is not None and solo.client.token == "xoxb-solo"
    assert await workspaces.for_team("T0ORGWS") is None
    await store.async_note_org_team("E0ORG", "T0ORGWS")
    member = await workspaces.for_team("T0ORGWS")
    assert member is not None and member.client.token == "xoxb-org"


async def test_a_reinstall_calls_off_an_unfinished_purge_of_its_owner(redis_client: Redis) -> None:
    """An uninstall whose purge stopped midway leaves its owner marked; reinstalling unmarks it,
    so the purge finished at the next start does not delete the new installation."""
    from bot.purge import Purger

    store = RedisInstallationStore(redis_client, KEYS)
    await redis_client.sadd(KEYS.purges(), "T0AAAA", "T0BBBB")
    await store.async_save(installation("T0AAAA"))
    assert await redis_client.smembers(KEYS.purges()) == {"T0BBBB"}
    await Purger(redis_client, KEYS).resume()
    assert await store.async_find_bot(enterprise_id=None, team_id="T0AAAA") is not None


async def test_org_workspaces_are_noted_again_after_the_orgs_purge(redis_client: Redis) -> None:
    """Which workspaces of an org used the bot is written once per pair and cache period; after
    an uninstall (here, or on another replica: the period runs out) it is written again, so the
    next uninstall purges them too."""

    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    store = RedisInstallationStore(redis_client, KEYS)
    workspaces = InstalledWorkspaces(
        store, AsyncWebClient(base_url="http://127.0.0.1:9/api/"), ttl=60, clock=clock
    )
    await workspaces.note_org_team("E0ORG", "T0ORGWS")
    assert await redis_client.smembers(KEYS.org_teams("E0ORG")) == {"T0ORGWS"}
    await redis_client.delete(KEYS.org_teams("E0ORG"))  # purged by this replica
    workspaces.forget("E0ORG")
    await workspaces.note_org_team("E0ORG", "T0ORGWS")
    assert await redis_client.smembers(KEYS.org_teams("E0ORG")) == {"T0ORGWS"}
    await redis_client.delete(KEYS.org_teams("E0ORG"))  # purged by another replica
    await workspaces.note_org_team("E0ORG", "T0ORGWS")
    assert await redis_client.exists(KEYS.org_teams("E0ORG")) == 0  # cached for now
    clock.now += 61
    await workspaces.note_org_team("E0ORG", "T0ORGWS")
    assert await redis_client.smembers(KEYS.org_teams("E0ORG")) == {"T0ORGWS"}
