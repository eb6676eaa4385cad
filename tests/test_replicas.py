"""Several replicas on one Redis: exactly-once answers, ordered threads, a replica killed mid-turn.

The default sizes keep the test command fast; `make soak` runs the same tests with the sizes of
the reliability issue (SOAK=1: 1,200 events, 50 threads × 10 messages).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

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
def replicas(azure: FakeAzure, slack: FakeSlack, redis_url: str) -> Iterator[list[BotProcess]]:
    """Three replicas against the session's fakes, reset to their defaults (`azure`, `slack`:
    an earlier test file on this worker may have changed the fake Azure's answer)."""
    env = bot_env(azure, slack, redis_url, BOT_STREAM="false", BOT_LOG_LEVEL="WARNING")
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
