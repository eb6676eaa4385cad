"""The turn journal: claims that are short leases, the queue join, renewal, settling, the commit's
ownership check and takeover — on a real redis-server and on fakeredis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot.errors import TurnTakenOver
from bot.store import Batch, HeldLock, Keys, Queued, ThreadStore
from bot.store.journal import Lease, TurnJournal

THREAD = "T:C:100.000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def journal_on(client: Redis, clock: Clock | None = None) -> TurnJournal:
    return TurnJournal(client, Keys(), lease_seconds=2, done_ttl=3600, clock=clock or Clock())


async def claim(journal: TurnJournal, lease: Lease, message: str = "{}") -> str | None:
    return (await claim_and_lock(journal, lease, message))[0]


async def claim_and_lock(
    journal: TurnJournal, lease: Lease, message: str = "{}"
) -> tuple[str | None, HeldLock | None]:
    batch = Batch(journal.redis)
    claimed = journal.queue_claim(batch, lease, message)
    await batch.run()
    return claimed.value


async def test_journal_first_delivery_owns_the_turn_and_journals_it(redis_client: Redis) -> None:
    """The first claim wins and journals the message with its owner; a redelivery of the same
    event, or the other event of the same message, is a duplicate and changes nothing."""
    journal = journal_on(redis_client)
    first = journal.lease(THREAD, "100.000002", "EvA")
    assert await claim(journal, first, '{"text": "q"}') is None
    keys = Keys()
    assert await redis_client.hgetall(keys.turn(THREAD, "100.000002")) == {
        "msg": '{"text": "q"}',
        "owner": first.token,
    }
    assert 0 < await redis_client.pttl(first.claim_keys[0]) <= 2000  # a lease, not minutes
    again = journal.lease(THREAD, "100.000002", "EvA")
    assert await claim(journal, again, '{"text": "changed"}') == "message"
    other_event = journal.lease(THREAD, "100.000002", "EvB")
    assert await claim(journal, other_event) == "message"
    assert await redis_client.hget(keys.turn(THREAD, "100.000002"), "owner") == first.token
    assert await redis_client.zscore(keys.turns(), first.member) is not None


async def test_journal_join_queues_and_claims_only_in_a_thread_the_bot_is_in(
    redis_client: Redis,
) -> None:
    """A follow-up in a thread the bot is not in claims and queues nothing; in one it is in,
    the first delivery joins the queue and owns the turn, a second finds both taken."""
    journal = journal_on(redis_client)
    keys = Keys()

    async def join(lease: Lease) -> tuple[Queued, str | None]:
        batch = Batch(redis_client)
        joined = journal.queue_join(batch, lease, "{}", require_history=True, stale_ms=5000)
        await batch.run()
        return joined.value

    stranger = journal.lease(THREAD, "100.000003", "Ev1")
    assert await join(stranger) == (Queued.NOT_IN_THREAD, None)
    assert await redis_client.exists(stranger.claim_keys[0], stranger.turn_key) == 0
    await journal.forget(stranger)
    assert await redis_client.zcard(keys.turns()) == 0

    await redis_client.set(keys.engaged(THREAD), "1")
    reply = journal.lease(THREAD, "100.000004", "Ev2")
    assert await join(reply) == (Queued.JOINED, None)
    assert await join(journal.lease(THREAD, "100.000004", "Ev2")) == (Queued.ALREADY, "message")
    assert await redis_client.zrange(keys.waiters(THREAD), 0, -1) == ["100.000004"]


async def test_journal_renewal_keeps_leases_and_spots_a_lost_turn(redis_client: Redis) -> None:
    """Renewal restores the claims' and held lock's expiry while they hold the turn's tokens; a
    turn whose claim now holds another token is marked lost."""
    journal = journal_on(redis_client)
    lease = journal.lease(THREAD, "100.000005", None)
    await claim(journal, lease)
    lock = Keys().lock(THREAD)
    await redis_client.set(lock, "lock-token", px=500)
    lease.held[lock] = "lock-token"
    journal.hold(lease)
    await redis_client.pexpire(lease.claim_keys[0], 300)
    await journal.renew()
    assert await redis_client.pttl(lease.claim_keys[0]) > 1500
    assert await redis_client.pttl(lock) > 1500
    assert not lease.lost
    await redis_client.set(lease.claim_keys[0], "someone-else")
    await journal.renew()
    assert lease.lost


async def test_journal_takes_over_a_dead_owners_turn_at_most_once(redis_client: Redis) -> None:
    """While the owner's lease lives nobody takes the turn; once it lapsed, one replica takes it
    (with the placeholder) and a second finds it taken; a done turn is only cleaned up."""
    clock = Clock()
    dead = journal_on(redis_client, clock)
    lease = dead.lease(THREAD, "100.000006", "Ev6")
    await claim(dead, lease, '{"text": "lost?"}')
    await dead.remember_placeholder(lease, "100.000007")
    live_a, live_b = journal_on(redis_client, clock), journal_on(redis_client, clock)
    clock.now += 3  # the index entry is due ...
    assert await live_a.take_over() == []  # ... but the owner's claims still hold
    for key in lease.claim_keys:
        await redis_client.delete(key)  # the lease lapsed: its replica stopped renewing
    clock.now += 3
    (taken,) = await live_a.take_over()
    assert (taken.message, taken.placeholder) == ('{"text": "lost?"}', "100.000007")
    assert await redis_client.get(lease.claim_keys[0]) == taken.lease.token
    clock.now += 3
    assert await live_b.take_over() == []
    assert await redis_client.zcard(Keys().turns()) == 1  # still journaled: not done yet

    await redis_client.set(taken.lease.claim_keys[0], "done")
    clock.now += 3
    assert await live_b.take_over() == []
    assert await redis_client.zcard(Keys().turns()) == 0
    assert await redis_client.exists(taken.lease.turn_key) == 0


async def test_journal_settle_ends_only_an_owned_turn(redis_client: Redis) -> None:
    """Settling marks the claims done past Slack's retries and drops the journal entry — but
    not for a turn another replica owns now."""
    journal = journal_on(redis_client)
    lease = journal.lease(THREAD, "100.000008", "Ev8")
    await claim(journal, lease)
    stolen = journal.lease(THREAD, "100.000009", "Ev9")
    await claim(journal, stolen)
    await redis_client.set(stolen.claim_keys[0], "other-owner")
    batch = Batch(redis_client)
    journal.queue_settle(batch, lease)
    journal.queue_settle(batch, stolen)
    await batch.run()
    assert await redis_client.get(lease.claim_keys[0]) == f"done:{lease.token}"
    assert 3500 < await redis_client.ttl(lease.claim_keys[1]) <= 3600
    assert await redis_client.exists(lease.turn_key) == 0
    assert await redis_client.get(stolen.claim_keys[0]) == "other-owner"
    assert await redis_client.exists(stolen.turn_key) == 1


async def test_commit_writes_only_while_the_turn_owns_its_claims(redis_client: Redis) -> None:
    """A turn that still owns its claims commits, ending them; one taken over meanwhile writes
    nothing but gives its thread's lock back, and raises TurnTakenOver."""
    journal = journal_on(redis_client)
    store = ThreadStore(redis_client, Keys(), lock_timeout=2)
    mine = journal.lease(THREAD, "100.000010", None)
    _, held = await claim_and_lock(journal, mine)
    async with store.turn(THREAD, 10, held=held, lease=mine) as turn:
        assert list(mine.held) == [Keys().lock(THREAD)]
        turn.save({"id": "100.000010", "role": "user", "content": "q"})
    assert mine.settled and mine.held == {}
    assert await redis_client.get(mine.claim_keys[0]) == f"done:{mine.token}"
    assert await redis_client.hlen(Keys().messages(THREAD)) == 1
    assert await redis_client.exists(Keys().lock(THREAD)) == 0  # the taker may go on at once

    lost = journal.lease(THREAD, "100.000011", None)
    _, held = await claim_and_lock(journal, lost)
    with pytest.raises(TurnTakenOver):
        async with store.turn(THREAD, 10, held=held, lease=lost) as turn:
            await redis_client.set(lost.claim_keys[0], "the-taker")
            turn.save({"id": "100.000011", "role": "user", "content": "twice?"})
    assert await redis_client.hlen(Keys().messages(THREAD)) == 1
    assert await redis_client.exists(Keys().lock(THREAD)) == 0  # the taker may go on at once


async def test_claim_of_a_new_thread_takes_its_lock_for_the_owner_only(redis_client: Redis) -> None:
    """The owner of a thread's first message gets the thread's lock in the same call, renewed
    with its claims from then on, and runs its turn without a lock round trip of its own; a
    duplicate gets no lock; a thread whose lock
    is held elsewhere gives none either."""
    journal = journal_on(redis_client)
    store = ThreadStore(redis_client, Keys(), lock_timeout=2)
    new = "T:C:200.000001"
    lease = journal.lease(new, "200.000001", "EvN")
    duplicate, held = await claim_and_lock(journal, lease)
    assert duplicate is None and held is not None
    assert (await claim_and_lock(journal, journal.lease(new, "200.000001", "EvN")))[1] is None
    # Renewed with the claims before the turn holds it (a slow status call may outlast a lease).
    journal.hold(lease)
    await redis_client.pexpire(Keys().lock(new), 300)
    await journal.renew()
    assert await redis_client.pttl(Keys().lock(new)) > 1500
    async with store.turn(new, 10, held=held, lease=lease) as turn:
        assert turn.history == []
        turn.save({"id": "200.000001", "role": "user", "content": "q"})
    assert held.taken_over
    assert await redis_client.exists(Keys().lock(new)) == 0
    busy = "T:C:300.000001"
    await redis_client.set(Keys().lock(busy), "other", px=5000)
    first, lock = await claim_and_lock(journal, journal.lease(busy, "300.000001", None))
    assert first is None and lock is None


async def test_the_keeper_renews_on_through_errors_and_a_slow_takeover() -> None:
    """A renewal that raises, a takeover whose workspace lookup raises and one that hangs (a token
    rotation waiting on Redis) neither end the keeper nor hold up renewal: leases keep being
    renewed every interval."""
    import asyncio
    from types import SimpleNamespace

    from bot.metrics import Metrics
    from bot.turns import TurnRunner

    renewals = 0
    hung = asyncio.Event()

    class Journal:
        async def renew(self) -> None:
            nonlocal renewals
            renewals += 1
            if renewals == 1:
                raise RuntimeError("a bug in renewal")

        async def take_over(self) -> list[object]:
            lease = SimpleNamespace(member="T:C:1|1|Ev")
            return [SimpleNamespace(lease=lease)]

    class Admission:
        journal = Journal()

        async def resume(self, claimed: object) -> object:
            return SimpleNamespace(msg=SimpleNamespace(team="T1"))

    lookups = 0

    async def client_for(team: str) -> None:
        nonlocal lookups
        lookups += 1
        if lookups == 1:
            raise RuntimeError("installation store failed")
        hung.set()
        await asyncio.sleep(3600)

    runner = TurnRunner(admission=Admission(), answerer=None, metrics=Metrics())  # type: ignore[arg-type]
    stop = asyncio.Event()
    keeper = asyncio.create_task(runner.keep(client_for, interval=0.01, stop=stop))
    await asyncio.wait_for(hung.wait(), 5)
    before = renewals
    await asyncio.sleep(0.2)
    assert renewals >= before + 5  # renewal went on while a takeover hung
    assert not keeper.done()
    stop.set()
    await asyncio.wait_for(keeper, 5)
    assert lookups == 2


async def test_a_rerun_of_the_same_script_call_is_still_this_turns(redis_client: Redis) -> None:
    """redis-py sends a pipeline again after a timeout or a dropped connection, so a script can
    run twice with the same arguments: the second claim finds its own token (not a duplicate),
    the second commit finds its own `done:` mark (not a takeover), and nothing is written twice;
    a settled turn is not renewed, so it is not "taken over" and stays out of the journal."""
    from bot.store.journal import _CLAIM
    from bot.store.threads import _COMMIT

    journal = journal_on(redis_client)
    thread = "T:C:400.000001"
    lease = journal.lease(thread, "400.000001", "EvR")
    keys = Keys()
    claim_keys = [lease.turn_key, keys.lock(thread), *lease.claim_keys]
    claim_args = [lease.token, journal.lease_ms, "{}", 60, "lock-token"]
    assert await _CLAIM.run(redis_client, claim_keys, claim_args) == [1, 1, 1]
    assert await _CLAIM.run(redis_client, claim_keys, claim_args) == [1, 1, 1]
    other = journal.lease(thread, "400.000001", "EvR")  # Slack's retry: another token
    assert await claim(journal, other) == "message"

    part_keys, part_args = lease.commit_part()
    commit_keys = [keys.messages(thread), keys.order(thread), keys.lock(thread), keys.gone(thread)]
    commit_args = ["lock-token", 10, 100, *part_args, "400.000001", '{"content": "q"}']
    for _ in range(2):
        assert await _COMMIT.run(redis_client, [*commit_keys, *part_keys], commit_args) == 1
    assert await redis_client.hlen(keys.messages(thread)) == 1
    assert await redis_client.exists(keys.lock(thread)) == 0
    # A placeholder's ts kept in the background after the turn ended brings nothing back.
    await journal.remember_placeholder(lease, "400.000009")
    assert await redis_client.exists(lease.turn_key) == 0

    await redis_client.zrem(keys.turns(), lease.member)  # as the commit's pipeline does
    lease.settled = True
    journal.hold(lease)
    await journal.renew()
    assert not lease.lost
    assert await redis_client.zscore(keys.turns(), lease.member) is None
