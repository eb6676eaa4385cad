"""The thread store, claims and batches, run against a real redis-server and against fakeredis."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.chat_types import StoredMessage
from bot.errors import StoreUnavailable, ThreadBusy
from bot.store import Batch, Keys, ThreadStore, decode_messages


def store_on(client: Redis, prefix: str = "bot:", **kw: object) -> ThreadStore:
    options: dict[str, object] = {"max_messages": 6, "ttl_seconds": 100, **kw}
    return ThreadStore(client, Keys(prefix), **options)  # type: ignore[arg-type]


async def saved(store: ThreadStore, thread: str) -> list[StoredMessage]:
    """What the thread's history list holds, read directly."""
    ids = await store.redis.zrange(store.keys.order(thread), 0, -1)
    return decode_messages(await store.redis.hmget(store.keys.messages(thread), ids) if ids else [])


async def test_store_turn_appends_user_and_assistant_in_order(redis_client: Redis) -> None:
    """A saved turn is read back in order by the next turn."""
    store = store_on(redis_client)
    async with store.turn("T:C:1", 10) as turn:
        assert turn.history == []
        turn.save(
            {"role": "user", "content": "q1", "tokens": 3},
            {"role": "assistant", "content": "a1 😀", "tokens": 4},
        )
    async with store.turn("T:C:1", 10) as turn:
        assert [m["content"] for m in turn.history] == ["q1", "a1 😀"]
        assert turn.history[0]["tokens"] == 3


async def test_store_trims_and_sets_ttl(redis_client: Redis) -> None:
    """The list keeps max_messages and expires after the TTL."""
    store = store_on(redis_client)
    for i in range(5):
        async with store.turn("T:C:2", 10) as turn:
            turn.save(
                {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}
            )
    history = await saved(store, "T:C:2")
    assert [m["content"] for m in history] == ["q2", "a2", "q3", "a3", "q4", "a4"]
    ttl = await redis_client.ttl(store.keys.messages("T:C:2"))
    assert 90 < ttl <= 100


async def test_store_turn_limit_reads_only_the_tail(redis_client: Redis) -> None:
    """turn(limit) reads the last `limit` messages."""
    store = store_on(redis_client)
    async with store.turn("T:C:3", 0) as turn:
        turn.save(*({"role": "user", "content": str(i)} for i in range(4)))
    async with store.turn("T:C:3", 2) as turn:
        assert [m["content"] for m in turn.history] == ["2", "3"]
        turn.save()


async def test_store_failed_turn_saves_nothing_and_releases_lock(redis_client: Redis) -> None:
    """An exception inside the turn writes nothing and frees the thread at once."""
    store = store_on(redis_client, lock_wait=0.2)
    with pytest.raises(RuntimeError):
        async with store.turn("T:C:4", 10) as turn:
            turn.save({"role": "user", "content": "lost?"})
            raise RuntimeError("model failed")
    assert await saved(store, "T:C:4") == []
    async with store.turn("T:C:4", 10):
        pass


async def test_store_lock_serialises_concurrent_turns(redis_client: Redis) -> None:
    """Turns on one thread run one after another; each sees all earlier turns."""
    store = store_on(redis_client, max_messages=100)
    seen: list[int] = []

    async def one(i: int) -> None:
        async with store.turn("T:C:5", 100) as turn:
            seen.append(len(turn.history))
            await asyncio.sleep(0.01)
            turn.save(
                {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}
            )

    await asyncio.gather(*(one(i) for i in range(8)))
    assert sorted(seen) == [0, 2, 4, 6, 8, 10, 12, 14]
    history = await saved(store, "T:C:5")
    assert len(history) == 16
    for q, a in zip(history[::2], history[1::2], strict=True):
        assert q["content"][1:] == a["content"][1:]


async def test_store_lock_expires_so_a_crash_cannot_wedge_a_thread(redis_client: Redis) -> None:
    """A lock left by a dead holder expires after lock_timeout."""
    store = store_on(redis_client, lock_timeout=0.3, lock_wait=2)
    await redis_client.set(store.keys.lock("T:C:6"), "dead-replica", px=300)
    async with store.turn("T:C:6", 10) as turn:
        turn.save({"role": "user", "content": "after crash"})
    assert len(await saved(store, "T:C:6")) == 1


async def test_store_busy_thread_raises_thread_busy(redis_client: Redis) -> None:
    """Waiting longer than lock_wait gives ThreadBusy."""
    store = store_on(redis_client, lock_wait=0.1)
    await redis_client.set(store.keys.lock("T:C:7"), "other", px=5000)
    with pytest.raises(ThreadBusy):
        async with store.turn("T:C:7", 10):
            pass


async def test_store_release_only_by_holder(redis_client: Redis) -> None:
    """If our lock expired and another took it, finishing our turn does not free theirs."""
    store = store_on(redis_client, lock_timeout=0.05)
    async with store.turn("T:C:8", 10) as turn:
        await asyncio.sleep(0.1)
        await redis_client.set(store.keys.lock("T:C:8"), "someone-else", px=5000)
        turn.save({"role": "user", "content": "x"})
    assert await redis_client.get(store.keys.lock("T:C:8")) == "someone-else"


async def test_store_commit_survives_a_flushed_script_cache(redis_client: Redis) -> None:
    """A Redis that restarts mid-turn has forgotten its scripts: the commit still writes the
    turn, runs the caller's extra commands once, and frees the lock."""
    store = store_on(redis_client)
    async with store.turn("T:C:8b", 10) as turn:
        await redis_client.script_flush()
        turn.save({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})
        turn.commit.pipe.incr("extra-counter")
    assert [m["content"] for m in await saved(store, "T:C:8b")] == ["q", "a"]
    assert await redis_client.get("extra-counter") == "1"
    assert await redis_client.exists(store.keys.lock("T:C:8b")) == 0


async def test_batch_steps_read_their_own_replies_in_one_round_trip(redis_client: Redis) -> None:
    """Each step of a batch gets exactly its replies, parsed; reading before `run` is an error."""
    await redis_client.set("b:one", "1")
    batch = Batch(redis_client)
    batch.pipe.get("b:one")
    one = batch.step(lambda replies: int(replies[0]))
    batch.pipe.set("b:two", "x")
    batch.pipe.get("b:two")
    two = batch.step(lambda replies: tuple(replies))
    nothing = batch.step(lambda replies: len(replies))
    with pytest.raises(RuntimeError):
        _ = one.value
    await batch.run()
    assert (one.value, two.value, nothing.value) == (1, (True, "x"), 0)


def test_keys_are_prefixed_versioned_and_hash_tagged() -> None:
    """Keys follow the documented schema; a thread's keys share one Cluster hash tag."""
    keys = Keys("acme:")
    assert keys.messages("T:C:1") == "acme:v1:msgs:{T:C:1}"
    assert keys.order("T:C:1") == "acme:v1:order:{T:C:1}"
    assert keys.lock("T:C:1") == "acme:v1:lock:{T:C:1}"
    assert keys.waiters("T:C:1") == "acme:v1:wait:{T:C:1}"
    assert keys.message_claim("T:C:1", "1.2") == "acme:v1:once:msg:{T:C:1}:1.2"
    assert keys.event_claim("T:C:1", "Ev1") == "acme:v1:once:ev:{T:C:1}:Ev1"
    assert keys.turn("T:C:1", "1.2") == "acme:v1:turn:{T:C:1}:1.2"
    assert keys.channel_settings("T", "C") == "acme:v1:cfg:T:ch:C"


async def test_store_unreachable_redis_raises_store_unavailable() -> None:
    """A dead Redis becomes StoreUnavailable (and ping() is False), not a redis-py error."""
    client = Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    store = store_on(client)
    assert await store.ping() is False
    with pytest.raises(StoreUnavailable):
        async with store.turn("T:C:9", 10):
            pass
    batch = Batch(client)
    batch.pipe.get(store.keys.lock("T:C:9"))
    with pytest.raises(StoreUnavailable):
        await batch.run()
    await client.aclose()


async def test_store_turns_run_in_position_order(redis_client: Redis) -> None:
    """Waiters get the lock in message-ts order, not in the order they started waiting."""
    store = store_on(redis_client, max_messages=100)
    order: list[str] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with store.turn("T:C:O", 10, "1000.000001") as turn:
            await gate.wait()
            order.append("1000.000001")
            turn.save({"role": "user", "content": "first"})

    async def waiter(position: str) -> None:
        async with store.turn("T:C:O", 10, position) as turn:
            order.append(position)
            turn.save({"role": "user", "content": position})

    first = asyncio.create_task(holder())
    await asyncio.sleep(0.05)
    later = [asyncio.create_task(waiter(p)) for p in ("1000.000009", "1000.000003", "1000.000005")]
    await asyncio.sleep(0.2)
    gate.set()
    await asyncio.gather(first, *later)
    assert order == ["1000.000001", "1000.000003", "1000.000005", "1000.000009"]


async def test_store_dead_waiter_does_not_block_the_queue(redis_client: Redis) -> None:
    """A queued waiter that stopped polling (its replica died) is dropped after stale_ms."""
    store = store_on(redis_client, lock_wait=5)
    store.stale_ms = 300
    await redis_client.zadd(store.keys.waiters("T:C:D"), {"999.0": 999.0})
    await redis_client.zadd(store.keys.beats("T:C:D"), {"999.0": 1})
    async with store.turn("T:C:D", 10, "1000.0") as turn:
        turn.save({"role": "user", "content": "not blocked"})
    assert len(await saved(store, "T:C:D")) == 1


async def test_store_records_edits_and_deletes_messages_in_time_order(redis_client: Redis) -> None:
    """Messages recorded while the bot is in a thread fall into place by ts, answers right after
    their question; an edit replaces the text; a deletion forgets it; a thread the bot is not in
    records nothing."""
    store = store_on(redis_client, max_messages=10)
    assert (
        await store.record("T:C:R", {"id": "100.000001", "role": "user", "content": "x"}) is False
    )
    assert await saved(store, "T:C:R") == []
    async with store.turn("T:C:R", 10) as turn:
        turn.save(
            {"id": "100.000003", "role": "user", "content": "question"},
            {"id": "100.000003~a", "role": "assistant", "content": "answer"},
        )
    for ts, text in (("100.000004", "later"), ("100.000002", "earlier")):
        assert await store.record("T:C:R", {"id": ts, "role": "user", "content": text})
    assert [m["content"] for m in await saved(store, "T:C:R")] == [
        "earlier",
        "question",
        "answer",
        "later",
    ]
    assert await store.edit("T:C:R", {"id": "100.000002", "role": "user", "content": "fixed"})
    assert not await store.edit("T:C:R", {"id": "100.000009", "role": "user", "content": "?"})
    assert await store.delete("T:C:R", "100.000004")
    assert not await store.delete("T:C:R", "100.000004")
    assert [m["content"] for m in await saved(store, "T:C:R")] == ["fixed", "question", "answer"]


async def test_store_keeps_only_the_newest_messages_of_a_busy_thread(redis_client: Redis) -> None:
    """Recording past max_messages forgets the oldest, in both the hash and the order."""
    store = store_on(redis_client, max_messages=3)
    async with store.turn("T:C:B", 10) as turn:
        turn.save({"id": "100.000001", "role": "user", "content": "m1"})
    for i in range(2, 6):
        await store.record("T:C:B", {"id": f"100.00000{i}", "role": "user", "content": f"m{i}"})
    assert [m["content"] for m in await saved(store, "T:C:B")] == ["m3", "m4", "m5"]
    assert await redis_client.hlen(store.keys.messages("T:C:B")) == 3


async def test_a_turn_under_way_commits_what_happened_in_slack_meanwhile(
    redis_client: Redis,
) -> None:
    """An edit made while a turn holds its own copy is what gets written; a message deleted
    meanwhile is not written, nor its answer; a forget (the thread's 'gone' time) keeps out
    everything from before it, but not a later turn's messages."""
    from bot.purge import Purger

    store = store_on(redis_client)
    thread = "T:C:100.000001"
    async with store.turn(thread, 10) as turn:
        turn.save(
            {"id": "100.000001", "role": "user", "content": "typo"},
            {"id": "100.000002", "role": "user", "content": "secret"},
        )
        turn.save({"id": "100.000002~a", "role": "assistant", "content": "about the secret"})
        assert not await store.edit(
            thread, {"id": "100.000001", "role": "user", "content": "fixed"}
        )
        assert not await store.delete(thread, "100.000002")  # neither is stored yet
    assert [m["content"] for m in await saved(store, thread)] == ["fixed"]

    purger = Purger(redis_client, Keys())
    async with store.turn(thread, 10) as turn:
        turn.save({"id": "100.000003", "role": "user", "content": "before the forget"})
        assert await purger.forget_thread("T", "C", "100.000001")
    assert await saved(store, thread) == []
    later = f"{int(time.time()) + 5}.000001"
    async with store.turn(thread, 10) as turn:
        turn.save({"id": later, "role": "user", "content": "after it"})
    assert [m["content"] for m in await saved(store, thread)] == ["after it"]


async def test_messages_are_recorded_while_a_threads_first_turn_runs(redis_client: Redis) -> None:
    """A message posted while the bot's first turn in a thread holds its lock is recorded (the
    bot is in the thread from its first turn on) and lands in time order with the turn's own;
    with no turn and no history, nothing is recorded."""
    store = store_on(redis_client)
    thread = "T:C:200.000001"
    reply: StoredMessage = {"id": "200.000005", "role": "user", "content": "meanwhile"}
    assert not await store.record(thread, reply)
    async with store.turn(thread, 10) as turn:
        assert await store.record(thread, reply)
        turn.save({"id": "200.000001", "role": "user", "content": "first"})
        turn.save({"role": "assistant", "content": "answer"})
    assert [m["content"] for m in await saved(store, thread)] == ["first", "answer", "meanwhile"]
