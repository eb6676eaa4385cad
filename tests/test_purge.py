"""Purging and forgetting (`bot.purge`), on a real redis-server and on fakeredis: the keys a
workspace's data lives in are found by the schema's rule, and only those are deleted."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.channel_config import ConfigStore
from bot.channel_settings import environment_layer
from bot.chat_types import Usage
from bot.purge import Purger
from bot.settings import load_settings
from bot.store import Batch, Keys, ThreadStore
from bot.store.connect import open_redis
from bot.store.installations import RedisInstallationStore
from bot.store.journal import TurnJournal
from bot.store.keys import GLOBAL_KINDS
from bot.usage import UsageLedger
from fakes.redis_cluster import RedisClusterServers
from tests.conftest import _need_redis_server

KEYS = Keys()
ENVIRONMENT = environment_layer(
    load_settings(
        _env_file=None, azure_openai_endpoint="https://r.openai.azure.com", azure_openai_key="k"
    )
)
SAMPLE_ARGS: dict[str, Any] = {
    "channel": "C0CHAN",
    "user": "U0USER",
    "day": dt.date(2026, 1, 2),
    "endpoint": "https://x.openai.azure.com",
    "name": "gpt-4o",
    "state": "someStateValue1234",
    "ts": "1700000001.000100",
    "event_id": "Ev0001",
    "token": "0123456789abcdef",
}


def test_every_workspace_key_names_its_workspace_where_the_purge_looks() -> None:
    """Each `Keys` method that takes a team, thread, owner or organisation gives a key whose
    `team_of` is that workspace; the others are global kinds. A new per-workspace key that
    breaks the rule (and so would survive an uninstall) fails here."""
    per_team = {"team": "T9TEAM", "thread": "T9TEAM:C1:1700000000.000100", "owner": "T9TEAM"}
    per_team["enterprise"] = "T9TEAM"
    checked = 0
    for name, method in inspect.getmembers(KEYS, inspect.ismethod):
        if name.startswith("_") or name in ("kind_of", "team_of"):
            continue
        params = list(inspect.signature(method).parameters)
        assert set(params) <= set(per_team) | set(SAMPLE_ARGS), (name, params)
        key = method(*(per_team.get(p, SAMPLE_ARGS.get(p)) for p in params))
        if set(params) & set(per_team):
            assert KEYS.team_of(key) == "T9TEAM", (name, key)
            checked += 1
        else:
            assert KEYS.kind_of(key).split(":")[0] in GLOBAL_KINDS, (name, key)
            assert KEYS.team_of(key) is None
    assert checked >= 15


async def fill(redis: Redis, team: str) -> set[str]:
    """A workspace's data as the bot writes it: a thread, a journaled turn with its claims,
    settings, usage, a name, a status refusal, feedback, a pane thread, an installation (and
    its org-wide notes). Returns every key it made."""
    before = await every_key(redis)
    thread = f"{team}:C1:1700000000.000100"
    store = ThreadStore(redis, KEYS, ttl_seconds=100)
    async with store.turn(thread, 10) as turn:
        turn.save({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})
        UsageLedger(redis, KEYS).queue_record(
            turn.commit, team, "C1", "U1", Usage(1, 2, 3), "turn-token"
        )
    batch = Batch(redis)
    store.queue_engage(batch, thread)
    batch.step(lambda _: None)
    journal = TurnJournal(redis, KEYS, lease_seconds=5)
    journal.queue_claim(batch, journal.lease(thread, "1700000001.000100", "Ev1"), "{}")
    await batch.run()
    await ConfigStore(redis, KEYS, ENVIRONMENT).set(team, "C1", "temperature", 0.5)
    await redis.set(KEYS.person(team, "U1"), "Pat")
    await redis.set(KEYS.status_refused(team), "missing_scope")
    await redis.hset(KEYS.feedback_day(team, dt.date(2026, 1, 2)), "up", "1")
    await redis.hset(KEYS.assistant_thread(f"{team}:D1:1700000002.000100"), "user", "U1")
    installations = RedisInstallationStore(redis, KEYS)
    await installations.async_save(
        Installation(team_id=team, bot_token="xoxb-x", bot_user_id="UB", user_id="U1")
    )
    await installations.async_note_org_team("E0ORG", team)
    return {k for k in await every_key(redis) if k not in before and KEYS.team_of(k) == team}


async def every_key(redis: Redis) -> set[str]:
    """Every key (on a cluster: of every node)."""
    return {str(k) async for k in redis.scan_iter(count=1000)}


async def test_purge_deletes_every_key_of_one_workspace_and_no_other(redis_client: Redis) -> None:
    """After an uninstall's purge a scan finds none of that workspace's keys; the other
    workspace's and the global keys are untouched (batches smaller than the data)."""
    gone = await fill(redis_client, "T0GONE")
    kept = await fill(redis_client, "T0KEPT")
    await redis_client.hset(KEYS.deployment("https://x", "T0GONE"), "model", "m")
    kinds = {KEYS.kind_of(k) for k in gone}
    assert {"msgs", "order", "engaged", "once:msg", "once:ev", "turn", "cfg", "usage"} <= kinds
    assert {"person", "inst", "orgof", "nostatus", "feedback", "pane"} <= kinds
    purger = Purger(redis_client, KEYS, scan_count=3, batch=2)
    assert await purger.purge(["T0GONE"]) == len(gone)
    left = set(await redis_client.keys("*"))
    assert not any(KEYS.team_of(k) == "T0GONE" for k in left)
    assert kept <= left
    assert KEYS.deployment("https://x", "T0GONE") in left
    assert await redis_client.smembers(KEYS.purges()) == set()
    turns = await redis_client.zrange(KEYS.turns(), 0, -1)
    assert [m.split(":")[0] for m in turns] == ["T0KEPT"]


async def test_purge_left_unfinished_is_resumed(redis_client: Redis) -> None:
    """A purge marked pending (its replica stopped) is finished by `resume`."""
    await fill(redis_client, "T0HALF")
    await redis_client.sadd(KEYS.purges(), "T0HALF")
    assert await Purger(redis_client, KEYS).resume() > 0
    assert not any(KEYS.team_of(k) == "T0HALF" for k in await redis_client.keys("*"))
    assert await redis_client.smembers(KEYS.purges()) == set()


async def test_forget_thread_deletes_that_threads_conversation_only(redis_client: Redis) -> None:
    """Forgetting a thread deletes its messages and its engagement, not another thread's."""
    await fill(redis_client, "T0AAAA")
    other = ThreadStore(redis_client, KEYS)
    async with other.turn("T0AAAA:C1:1700000099.000100", 10) as turn:
        turn.save({"role": "user", "content": "keep me"})
    purger = Purger(redis_client, KEYS)
    assert await purger.forget_thread("T0AAAA", "C1", "1700000000.000100") is True
    assert await purger.forget_thread("T0AAAA", "C1", "1700000000.000100") is False
    thread = "T0AAAA:C1:1700000000.000100"
    for key in (KEYS.messages(thread), KEYS.order(thread), KEYS.engaged(thread)):
        assert not await redis_client.exists(key)
    assert await redis_client.exists(KEYS.messages("T0AAAA:C1:1700000099.000100"))


async def test_forget_history_deletes_conversations_and_keeps_settings(redis_client: Redis) -> None:
    """`/gpt forget-all` deletes every stored conversation of the workspace, and only that:
    settings, usage and the installation stay, and other workspaces' threads too; a turn under
    way then writes nothing back."""
    await fill(redis_client, "T0AAAA")
    other = await fill(redis_client, "T0BBBB")
    store = ThreadStore(redis_client, KEYS)
    async with store.turn("T0AAAA:C2:1700000055.000100", 10) as turn:
        turn.save({"role": "user", "content": "second thread"})
    busy = "T0AAAA:C3:1700000077.000100"
    await redis_client.zadd(KEYS.turns(), {f"{busy}|1700000077.000100|EvB": 1})  # journaled
    async with store.turn(busy, 10) as turn:  # a turn under way during the forget
        turn.save({"id": "1700000077.000100", "role": "user", "content": "in flight"})
        assert await Purger(redis_client, KEYS).forget_history("T0AAAA") == 2
    assert await redis_client.exists(KEYS.messages(busy)) == 0  # its commit wrote nothing
    left = set(await redis_client.keys("*"))
    assert not [
        k
        for k in left
        if KEYS.team_of(k) == "T0AAAA" and KEYS.kind_of(k) in ("msgs", "order", "engaged")
    ]
    assert KEYS.channel_settings("T0AAAA", "C1") in left
    assert KEYS.installation("T0AAAA") in left
    assert other <= left


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    _need_redis_server()
    for attempt in range(2):
        servers = RedisClusterServers(3)
        try:
            servers.start()
            break
        except (redis_errors.ConnectionError, RuntimeError):
            # A free port taken by another process between `free_port` and the server's bind
            # (other suites run on this machine): stop what started, and try new ports once.
            servers.stop()
            if attempt:
                raise
    yield servers
    servers.stop()


async def test_purge_on_a_redis_cluster_scans_every_node(cluster: RedisClusterServers) -> None:
    """On a three-master cluster a workspace's keys sit in many slots on every node: the purge
    scans each node and deletes across slots, leaving no key of it and every key of another."""
    client = open_redis(cluster.url, cluster=True)
    try:
        await client.flushall()
        gone = await fill(client, "T0GONE")
        kept = await fill(client, "T0KEPT")
        nodes = {client.get_node_from_key(k).name for k in gone}
        assert len(nodes) == 3
        assert await Purger(client, KEYS, scan_count=5, batch=3).purge(["T0GONE"]) == len(gone)
        left = await every_key(client)
        assert not any(KEYS.team_of(k) == "T0GONE" for k in left)
        assert kept <= left

        # Forgetting one thread and a workspace's history work on a cluster too.
        thread = "T0KEPT:C1:1700000000.000100"
        purger = Purger(client, KEYS, scan_count=5, batch=3)
        assert await purger.forget_thread("T0KEPT", "C1", "1700000000.000100") is True
        assert not await client.exists(KEYS.messages(thread), KEYS.order(thread))
        kept_threads = [k for k in await every_key(client) if k.startswith(KEYS.messages("T0KEPT"))]
        await client.hset(KEYS.messages("T0KEPT:C9:1700000001.000100"), "1", "{}")
        assert await purger.forget_history("T0KEPT") == len(kept_threads) + 1
        left = await every_key(client)
        assert not [k for k in left if KEYS.team_of(k) == "T0KEPT" and KEYS.kind_of(k) == "msgs"]
    finally:
        await client.aclose()
