"""Several replicas on one Redis: exactly-once answers, ordered threads, a replica killed mid-turn.

The default sizes keep the test command fast; `make soak` runs the same tests with the sizes of
the reliability issue (SOAK=1: 1,200 events, 50 threads × 10 messages).
"""

from __future__ import annotations

import json
import os
import random
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_sync

from bot.store.keys import Keys
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, message_text
from fakes.slack_requests import mention, message
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    stored_thread,
    turns,
    wait_until,
)

SOAK = os.environ.get("SOAK") == "1"
EVENTS = 1200 if SOAK else 150
THREADS, PER_THREAD = (50, 10) if SOAK else (12, 5)
FIGURES: dict[str, object] = {}


@pytest.fixture
def replicas(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_url: str
) -> Iterator[list[BotProcess]]:
    fake_azure.clear()
    fake_slack.clear()
    env = bot_env(fake_azure, fake_slack, redis_url, BOT_STREAM="false", BOT_LOG_LEVEL="WARNING")
    procs = [BotProcess(env) for _ in range(3)]
    for p in procs:
        p.wait_ready()
    yield procs
    for p in procs:
        p.stop()
    if FIGURES:
        print("\nreliability figures:", json.dumps(FIGURES))


def test_every_event_answered_exactly_once_across_three_replicas(
    replicas: list[BotProcess], fake_azure: FakeAzure, fake_slack: FakeSlack
) -> None:
    """Each event delivered 1–4 times to random replicas, some at once: 0 duplicates, 0 missing."""
    rng = random.Random(7)
    events = [mention(f"once {i}", channel=f"CX{i % 7}") for i in range(EVENTS)]
    deliveries = []
    for i, ev in enumerate(events):
        for attempt in range(rng.randint(1, 4)):
            deliveries.append((rng.choice(replicas), ev, f"EvONCE{i:06d}", attempt))
    rng.shuffle(deliveries)

    def deliver(item: tuple[BotProcess, dict, str, int]) -> int:  # type: ignore[type-arg]
        proc, ev, event_id, attempt = item
        retry = (
            (attempt, rng.choice(["http_timeout", "http_error", "connection_failed"]))
            if attempt
            else None
        )
        return proc.send_event(ev, event_id=event_id, retry=retry).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(deliver, deliveries))
    assert set(codes) == {200}
    # Every delivery ends as a turn on the replica that took it: wait for all of them.
    ended = wait_until(
        lambda: (t := turns(*replicas)).total() >= len(deliveries) and t, timeout=120
    )
    threads = [fake_slack.thread(ev["channel"], ev["ts"]) for ev in events]
    answered = [
        [m for m in msgs if message_text(m).startswith("Answer to: Pat: ")] for msgs in threads
    ]
    duplicates = sum(len(msgs) > 1 for msgs in threads)
    missing = sum(not msgs for msgs in answered)
    FIGURES["exactly_once"] = {
        "events": EVENTS,
        "deliveries": len(deliveries),
        "duplicates": duplicates,
        "missing": missing,
        "azure_calls": len(fake_azure.completions),
    }
    assert (duplicates, missing) == (0, 0)
    assert ended == {"ok": EVENTS, "duplicate": len(deliveries) - EVENTS}
    assert len(fake_azure.completions) == EVENTS


def test_rapid_messages_in_many_threads_keep_every_turn_in_order(
    replicas: list[BotProcess], fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    """Threads × rapid follow-ups spread over replicas: each history holds every turn, in order."""
    roots = [mention(f"root {t}", channel="CORD") for t in range(THREADS)]
    for i, root in enumerate(roots):
        replicas[i % 3].send_event(root)
    for root in roots:
        final_thread(fake_slack, "CORD", root["ts"], timeout=30)

    def burst(t: int) -> None:
        root = roots[t]
        for k in range(PER_THREAD):
            replicas[(t + k) % 3].send_event(
                message(f"t{t} m{k}", channel="CORD", thread_ts=root["ts"])
            )

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(burst, range(THREADS)))
    for root in roots:
        final_thread(fake_slack, "CORD", root["ts"], count=PER_THREAD + 1, timeout=120)
    sent = THREADS * (PER_THREAD + 1)
    ended = wait_until(lambda: (t := turns(*replicas)).total() >= sent and t)
    assert ended == {"ok": sent}
    assert all(len(fake_slack.thread("CORD", r["ts"])) == PER_THREAD + 1 for r in roots)
    out_of_order = 0
    for t, root in enumerate(roots):
        history = stored_thread(redis_server.url, f"T0000TEAM:CORD:{root['ts']}")
        questions = [m["content"] for m in history if m["role"] == "user"]
        assert len(history) == 2 * (PER_THREAD + 1)
        for q, a in zip(history[::2], history[1::2], strict=True):
            assert a["content"] == f"Answer to: Pat: {q['content']}"
        out_of_order += questions != [f"root {t}"] + [f"t{t} m{k}" for k in range(PER_THREAD)]
    FIGURES["ordering"] = {
        "threads": THREADS,
        "messages_per_thread": PER_THREAD,
        "out_of_order_threads": out_of_order,
    }
    assert out_of_order == 0


def test_replica_killed_holding_the_lock_recovers(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_url: str
) -> None:
    """SIGKILL mid-turn: after the lock timeout the thread works again, and Slack's redelivery of
    the killed turn's event is answered by another replica."""
    fake_azure.clear()
    fake_slack.clear()
    env = bot_env(fake_azure, fake_slack, redis_url, BOT_LOCK_TIMEOUT="2", BOT_STREAM="false")
    a, b = BotProcess(env).wait_ready(), BotProcess(env).wait_ready()
    try:
        root = mention("start", channel="CKILL")
        b.send_event(root)
        final_thread(fake_slack, "CKILL", root["ts"])
        fake_azure.first_token_delay = 3.0
        doomed = message("will be interrupted", channel="CKILL", thread_ts=root["ts"])
        a.send_event(doomed, event_id="EvDOOMED01")
        wait_until(
            lambda: len(fake_azure.completions) == 2
        )  # A is inside the turn, holding the lock
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        fake_azure.first_token_delay = 0.0
        # What A left behind: the thread's lock and the message's two "pending" dedup claims.
        # They expire (lock timeout 2 s, pending claims 2 + 5 s); Slack's redelivery comes later.
        keys = Keys()
        left = [
            keys.lock(f"T0000TEAM:CKILL:{root['ts']}"),
            keys.claim(f"msg:T0000TEAM:CKILL:{doomed['ts']}"),
            keys.claim("ev:T0000TEAM:EvDOOMED01"),
        ]
        client = redis_sync.Redis.from_url(redis_url)
        try:
            assert client.exists(*left) == 3
            wait_until(lambda: client.exists(*left) == 0, timeout=15)
        finally:
            client.close()
        b.send_event(doomed, event_id="EvDOOMED01", retry=(1, "http_timeout"))
        wait_until(
            lambda: any(
                message_text(m) == "Answer to: Pat: will be interrupted"
                for m in fake_slack.thread("CKILL", root["ts"])
            ),
            timeout=20,
        )
        after = message("still alive?", channel="CKILL", thread_ts=root["ts"])
        b.send_event(after)
        wait_until(
            lambda: any(
                message_text(m) == "Answer to: Pat: still alive?"
                for m in fake_slack.thread("CKILL", root["ts"])
            ),
            timeout=20,
        )
        sent = [m["content"] for m in fake_azure.completions[-1].body["messages"]]
        assert sent[1:] == [
            "Pat: start",
            "Answer to: Pat: start",
            "Pat: will be interrupted",
            "Answer to: Pat: will be interrupted",
            "Pat: still alive?",
        ]
    finally:
        a.stop()
        b.stop()
