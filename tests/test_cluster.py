"""The bot on a Redis Cluster: three masters of real redis-server processes, two replicas.

The cluster starts once for the module. Replica A finds out it is a cluster by asking the server,
replica B is told so (REDIS_CLUSTER=true); requests alternate between them.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from bot.store import Keys
from fakes.azure import FakeAzure
from fakes.redis_cluster import RedisClusterServers
from fakes.slack import TEAM, FakeSlack, context_text, message_text
from fakes.slack_requests import mention, message
from tests.conftest import _need_redis_server
from tests.slackbot_harness import BotProcess, bot_env, final_thread, turns, wait_for_turns

ADMIN = "UADMIN001"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    _need_redis_server()
    started = time.monotonic()
    servers = RedisClusterServers(3).start()
    print(f"\n3-master cluster up in {time.monotonic() - started:.1f}s")
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def replicas(
    cluster: RedisClusterServers, fake_azure: FakeAzure, fake_slack: FakeSlack
) -> Iterator[tuple[BotProcess, BotProcess]]:
    env = bot_env(fake_azure, fake_slack, cluster.url, BOT_ADMIN_USER_IDS=ADMIN)
    a = BotProcess(env)
    b = BotProcess({**env, "REDIS_CLUSTER": "true"})
    try:
        yield a.wait_ready("/readyz"), b.wait_ready("/readyz")
    finally:
        a.stop()
        b.stop()


def stored(cluster: RedisClusterServers, thread: str) -> list[dict[str, Any]]:
    """A thread's stored messages, read through a cluster client, oldest first."""
    keys = Keys()
    client = redis.RedisCluster.from_url(cluster.url, decode_responses=True)
    try:
        ids = client.zrange(keys.order(thread), 0, -1)
        raw = client.hmget(keys.messages(thread), ids) if ids else []
    finally:
        client.close()
    return [json.loads(x) for x in raw if x]


def slash(bot: BotProcess, text: str, channel: str, user: str = ADMIN) -> str:
    fields = {
        "team_id": TEAM,
        "channel_id": channel,
        "user_id": user,
        "command": "/gpt",
        "text": text,
        "api_app_id": "A0000APP1",
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.com/commands/T0000TEAM/1/x",
    }
    response = bot.send_command(fields)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_cluster_mention_and_followup_on_two_replicas(
    replicas: tuple[BotProcess, BotProcess],
    cluster: RedisClusterServers,
    slack: FakeSlack,
    azure: FakeAzure,
) -> None:
    """A mention answered by A, its follow-up by B with the first turn as history, both stored."""
    a, b = replicas
    before = turns(a, b)
    root = mention("what is a slot?", channel="CCL1")
    a.send_event(root)
    (reply,) = final_thread(slack, "CCL1", root["ts"])
    assert message_text(reply) == "Answer to: Pat: what is a slot?"
    assert "total " in context_text(reply)
    b.send_event(message("and a shard?", channel="CCL1", thread_ts=root["ts"]))
    final_thread(slack, "CCL1", root["ts"], count=2)
    wait_for_turns((a, b), before, ok=2)
    sent = [m["content"] for m in azure.completions[-1].body["messages"]]
    assert sent[1:] == [
        "Pat: what is a slot?",
        "Answer to: Pat: what is a slot?",
        "Pat: and a shard?",
    ]
    history = stored(cluster, f"{TEAM}:CCL1:{root['ts']}")
    assert [m["content"] for m in history][-1] == "Answer to: Pat: and a shard?"
    assert len(history) == 4


def test_cluster_redelivery_to_both_replicas_is_answered_once(
    replicas: tuple[BotProcess, BotProcess], slack: FakeSlack, azure: FakeAzure
) -> None:
    """One event delivered to both replicas at once, and retried on each: one answer."""
    a, b = replicas
    before = turns(a, b)
    event = mention("only once please", channel="CCL2")
    deliveries = [(a, None), (b, None), (a, (1, "http_timeout")), (b, (2, "http_error"))]
    with ThreadPoolExecutor(4) as pool:
        codes = list(
            pool.map(
                lambda d: d[0].send_event(event, event_id="EvCLUSTER1", retry=d[1]), deliveries
            )
        )
    assert [c.status_code for c in codes] == [200] * 4
    final_thread(slack, "CCL2", event["ts"])
    wait_for_turns((a, b), before, ok=1, duplicate=3)
    assert len(slack.thread("CCL2", event["ts"])) == 1
    assert len(azure.completions) == 1


def test_cluster_thread_queue_answers_in_order(
    replicas: tuple[BotProcess, BotProcess], cluster: RedisClusterServers, slack: FakeSlack
) -> None:
    """Six quick follow-ups alternating between the replicas are answered in the order written."""
    a, b = replicas
    root = mention("start", channel="CCL3")
    a.send_event(root)
    final_thread(slack, "CCL3", root["ts"])
    before = turns(a, b)
    for k in range(6):
        (a, b)[k % 2].send_event(message(f"m{k}", channel="CCL3", thread_ts=root["ts"]))
    final_thread(slack, "CCL3", root["ts"], count=7, timeout=30)
    wait_for_turns((a, b), before, ok=6)
    history = stored(cluster, f"{TEAM}:CCL3:{root['ts']}")
    assert [m["content"] for m in history if m["role"] == "user"] == [
        "start",
        *(f"m{k}" for k in range(6)),
    ]
    for question, answer in zip(history[::2], history[1::2], strict=True):
        assert answer["content"] == f"Answer to: Pat: {question['content']}"


def test_cluster_slash_settings_and_usage(
    replicas: tuple[BotProcess, BotProcess], slack: FakeSlack, azure: FakeAzure
) -> None:
    """A setting made through A applies to B's next turn; `usage today` counts what was posted."""
    a, b = replicas
    assert "→ 0.3" in slash(a, "set temperature 0.3", "CCL4")
    event = mention("warm?", channel="CCL4", user="UCLUSTER1")
    b.send_event(event)
    (reply,) = final_thread(slack, "CCL4", event["ts"])
    assert azure.completions[-1].body["temperature"] == 0.3
    total = context_text(reply).split("total ")[1].split()[0]
    report = slash(b, "usage today", "CCL4")
    line = next(line for line in report.splitlines() if "this channel" in line)
    assert f"{total} tokens" in line
    assert "`temperature` = 0.3  _(channel)_" in slash(b, "show", "CCL4")


def test_cluster_keys_spread_over_masters_one_slot_per_thread(
    replicas: tuple[BotProcess, BotProcess], cluster: RedisClusterServers
) -> None:
    """The bot's keys live on more than one master, and each thread's keys share one slot."""
    per_node: dict[int, list[str]] = {}
    for node in cluster.nodes:
        client = node.client()
        try:
            per_node[node.port] = [k.decode() for k in client.keys("bot:v1:*")]
        finally:
            client.close()
    assert sum(bool(keys) for keys in per_node.values()) >= 2, per_node
    threads: dict[str, set[int]] = {}
    for key in (k for keys in per_node.values() for k in keys):
        if "{" in key:
            threads.setdefault(key[key.index("{") :], set()).add(key_slot(key.encode()))
    assert threads and all(len(slots) == 1 for slots in threads.values())


def test_doctor_says_cluster(
    cluster: RedisClusterServers, fake_azure: FakeAzure, fake_slack: FakeSlack
) -> None:
    """`doctor` names the cluster and its masters in its Redis line."""
    env = bot_env(fake_azure, fake_slack, cluster.url)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "doctor"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "✓ redis: reachable (cluster of 3 masters), version" in done.stdout, done.stdout


def test_thread_keys_share_one_slot() -> None:
    """Every key named after a thread (all the Lua scripts' KEYS) hashes to that thread's slot."""
    keys = Keys("any:")
    per_thread = [
        getattr(keys, name)
        for name in dir(keys)
        if not name.startswith("_")
        and callable(getattr(keys, name))
        and list(inspect.signature(getattr(keys, name)).parameters) == ["thread"]
    ]
    assert len(per_thread) >= 6
    for thread in ("T1:C1:1700000000.000100", "cli:notes", "T9:C{odd}:1.2"):
        assert len({key_slot(method(thread).encode()) for method in per_thread}) == 1
