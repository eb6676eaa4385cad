"""`Batch`: steps read back by typed handles, and concurrent batches sent as one pipeline — on a
real redis-server and on fakeredis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.chat_types import Usage
from bot.errors import StoreUnavailable
from bot.store import Batch, Keys
from bot.store.batch import MAX_GROUPED_COMMANDS, MAX_PIPELINES_IN_FLIGHT, _sender_of
from bot.usage import UsageLedger


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every pipeline sent to Redis."""
    sizes: list[int] = []
    execute = Pipeline.execute

    async def counted(self: Pipeline, raise_on_error: bool = True) -> list[Any]:
        sizes.append(len(self.command_stack))
        return await execute(self, raise_on_error)

    monkeypatch.setattr(Pipeline, "execute", counted)
    return sizes


async def incr_and_get(redis: Redis, key: str) -> tuple[int, str | None]:
    batch = Batch(redis)
    batch.pipe.incr(key)
    counted = batch.step(lambda replies: int(replies[0]))
    batch.pipe.get(key)
    read = batch.step(lambda replies: replies[0])
    await batch.run()
    return counted.value, read.value


async def test_batches_that_wait_go_as_one_pipeline_each_reading_its_own_replies(
    redis_client: Redis, executions: list[int]
) -> None:
    """The first batches go at once (each its own pipeline); the rest wait for one of them to
    come back and then go together."""
    results = await asyncio.gather(*(incr_and_get(redis_client, f"k{i % 5}") for i in range(50)))
    assert sorted(executions)[:MAX_PIPELINES_IN_FLIGHT] == [2] * MAX_PIPELINES_IN_FLIGHT
    assert sum(executions) == 100
    assert len(executions) <= MAX_PIPELINES_IN_FLIGHT + 2  # 46 waiting batches, 1-2 pipelines
    by_key: dict[str, list[int]] = {}
    for i, (count, read) in enumerate(results):
        by_key.setdefault(f"k{i % 5}", []).append(count)
        assert read is not None and int(read) >= count
    assert all(sorted(counts) == list(range(1, 11)) for counts in by_key.values())


async def test_a_lone_batch_and_one_run_later_go_alone(
    redis_client: Redis, executions: list[int]
) -> None:
    assert await incr_and_get(redis_client, "k") == (1, "1")
    assert await incr_and_get(redis_client, "k") == (2, "2")
    assert executions == [2, 2]


async def test_a_group_is_cut_at_the_command_limit(
    redis_client: Redis, executions: list[int]
) -> None:
    await asyncio.gather(*(incr_and_get(redis_client, "k") for _ in range(MAX_GROUPED_COMMANDS)))
    assert sum(executions) == 2 * MAX_GROUPED_COMMANDS
    assert max(executions) <= MAX_GROUPED_COMMANDS
    assert await redis_client.get("k") == str(MAX_GROUPED_COMMANDS)


async def test_an_error_in_one_batch_is_that_batchs_alone(redis_client: Redis) -> None:
    """A reply that is an error (here: a hash command on a string) fails its own batch as the
    store fails (StoreUnavailable); the batches sent with it get their values."""
    await redis_client.set("text", "x")

    async def wrong_type() -> None:
        batch = Batch(redis_client)
        batch.pipe.hget("text", "field")
        batch.step(lambda replies: replies[0])
        await batch.run()

    outcomes = await asyncio.gather(
        incr_and_get(redis_client, "a"),
        wrong_type(),
        incr_and_get(redis_client, "b"),
        return_exceptions=True,
    )
    assert outcomes[0] == (1, "1") and outcomes[2] == (1, "1")
    assert isinstance(outcomes[1], StoreUnavailable)


async def test_an_unreachable_redis_fails_every_batch_of_the_group() -> None:
    redis = Redis(port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    outcomes = await asyncio.gather(
        *(incr_and_get(redis, "k") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    await redis.aclose()


async def test_a_cancelled_waiting_batch_leaves_the_others_their_replies(
    redis_client: Redis,
) -> None:
    going = [
        asyncio.ensure_future(incr_and_get(redis_client, "k"))
        for _ in range(MAX_PIPELINES_IN_FLIGHT)
    ]
    waiting = asyncio.ensure_future(incr_and_get(redis_client, "w"))
    after = asyncio.ensure_future(incr_and_get(redis_client, "k"))
    await asyncio.sleep(0)
    waiting.cancel()
    results = await asyncio.gather(*going, after)
    assert sorted(count for count, _ in results) == list(range(1, MAX_PIPELINES_IN_FLIGHT + 2))
    with pytest.raises(asyncio.CancelledError):
        await waiting
    last = MAX_PIPELINES_IN_FLIGHT + 2
    assert await incr_and_get(redis_client, "k") == (last, str(last))


async def test_a_turns_usage_counts_once_however_often_its_pipeline_is_sent(
    redis_client: Redis,
) -> None:
    """redis-py sends a pipeline again when a reply was lost, and a grouped pipeline carries
    other turns' commands too: a turn's usage is counted once, by its token."""
    ledger = UsageLedger(redis_client, Keys())
    for token in ("turn-1", "turn-1", "turn-2"):
        batch = Batch(redis_client)
        ledger.queue_record(batch, "T1", "C1", "U1", Usage(10, 5, 15), token)
        await batch.run()
    assert await ledger.user_today("T1", "U1") == 30


async def test_a_batch_that_cannot_be_encoded_fails_alone_in_its_group(
    redis_client: Redis, executions: list[int]
) -> None:
    """A command redis-py cannot encode (None) fails before anything is written: the group is
    sent again batch by batch, so only that batch fails."""

    async def unencodable() -> None:
        batch = Batch(redis_client)
        batch.pipe.set("bad", None)  # type: ignore[arg-type]
        batch.step(lambda replies: replies[0])
        await batch.run()

    calls = [incr_and_get(redis_client, f"k{i}") for i in range(10)]
    calls.insert(MAX_PIPELINES_IN_FLIGHT + 2, unencodable())  # among the batches that wait
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], StoreUnavailable)
    assert all(o == (1, "1") for o in outcomes if not isinstance(o, BaseException))


async def test_a_group_cancelled_before_it_starts_frees_its_slot_and_its_waiters(
    redis_client: Redis,
) -> None:
    sender = _sender_of(Batch(redis_client).pipe)
    sender._in_flight = MAX_PIPELINES_IN_FLIGHT  # every slot taken
    waiting = asyncio.ensure_future(incr_and_get(redis_client, "k"))
    await asyncio.sleep(0)
    sender._done()  # a slot comes back: the waiting batch's group task is made ...
    for task in list(sender._running):
        task.cancel()  # ... and cancelled before its first step
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 2)  # (it waited forever when the slot leaked)
    await asyncio.sleep(0)
    assert sender._in_flight == MAX_PIPELINES_IN_FLIGHT - 1
