"""Thread history and the per-thread lock and queue, on an injected `redis.asyncio` client.

A turn holds its thread's lock from reading the history to writing the new messages, so
concurrent messages in a thread are answered one after another and each sees the turns before it.
Waiting turns queue by position (the Slack message ts), so they are answered in the order they
were written, also across replicas; a waiter that stops heartbeating (its replica died) drops out
after `stale_ms`, and the lock itself is a lease of `lock_timeout` that a Slack turn's replica
keeps renewing (`bot.store.journal`), so a crashed replica cannot wedge a thread for long.

Round trips are kept low on purpose (the benchmark counts them): taking the lock and reading the
history is one script; a thread's first message, which has no history, takes the lock with its
dedup claims instead (`TurnJournal.queue_claim`). Appending the turn, trimming,
refreshing the TTL, ending the turn's claims (if it still owns them) and releasing the lock is
one more script, sent in one pipeline with whatever the caller queued on `ThreadTurn.commit`
(usage). That pipeline is not a MULTI: the turn is atomic in its script, and the bookkeeping
beside it needs no transaction with it (a lost connection can lose a usage count, never half a
turn); in Redis Cluster each command can go to its own slot.

A thread's messages are a hash (id → JSON `StoredMessage`) and a sorted set of their ids, read in
text order (ids are Slack timestamps, fixed width, so text order is time order), so that Slack's
edits and deletions, which name a message by its ts, change it in place (`edit`, `delete`), and
messages recorded as they are posted (`record`) fall into place by time even while a turn is
running. The same code runs on a real Redis and on fakeredis (the embedded store used when
``REDIS_URL`` is unset).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from bot.chat_types import StoredMessage
from bot.errors import REDIS_ERRORS, ThreadBusy, TurnTakenOver, redis_unavailable
from bot.store.batch import Batch
from bot.store.journal import TURN_TTL, Lease
from bot.store.keys import Keys
from bot.store.messages import HeldLock, ThreadTurn, decode_messages, encode
from bot.store.scripts import Script

_ACQUIRE = Script("acquire")
_COMMIT = Script("commit")
_RELEASE = Script("release")
_RECORD = Script("record")

GONE_TTL = TURN_TTL
"""How long a deletion, an edit or a forget is remembered for the turns under way: a turn's
longest life."""


class ThreadStore:
    """Everything the bot keeps per thread. Methods raise `StoreUnavailable` on Redis errors,
    except the best-effort clean-ups (`dequeue`, `release`)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        max_messages: int = 40,
        ttl_seconds: int = 30 * 86_400,
        lock_timeout: float = 120.0,
        lock_wait: float | None = None,
        stale_ms: int = 5000,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.max_messages = max_messages
        self.ttl_seconds = ttl_seconds
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_timeout if lock_wait is None else lock_wait
        self.stale_ms = stale_ms

    async def ping(self) -> bool:
        """True when Redis answers; never raises (used by /readyz)."""
        try:
            return bool(await self.redis.ping())
        except REDIS_ERRORS:
            return False

    def queue_engage(self, batch: Batch, thread: str) -> None:
        """Mark the thread as one the bot answered in, even if only with an error message, so
        a plain "try again" reply in it is answered too. (Saved history marks it as well.)"""
        batch.pipe.set(self.keys.engaged(thread), "1", ex=self.ttl_seconds)

    async def dequeue(self, thread: str, position: str) -> None:
        """Leave the queue without taking the lock (the turn ended early). Best effort."""
        with contextlib.suppress(*REDIS_ERRORS):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self.keys.waiters(thread), position)
                pipe.zrem(self.keys.beats(thread), position)
                await pipe.execute()

    async def release(self, thread: str, token: str) -> None:
        """Give a held lock back (only if it is still ours). Best effort: it expires anyway."""
        with contextlib.suppress(*REDIS_ERRORS):
            await _RELEASE.run(self.redis, [self.keys.lock(thread)], [token])

    @asynccontextmanager
    async def turn(
        self,
        thread: str,
        limit: int,
        position: str | None = None,
        held: HeldLock | None = None,
        lease: Lease | None = None,
    ) -> AsyncIterator[ThreadTurn]:
        """Hold the thread's lock, read its last `limit` messages, and write what was saved.

        Raises `ThreadBusy` when the lock cannot be had within `lock_wait`. With `held` (a new
        thread's lock from `TurnJournal.queue_claim`) the turn starts at once, with no history.
        On an exception nothing is written and the lock is released. With a Slack turn's
        `lease`, the lock is renewed with the turn's claims while held, and the commit writes
        only if the turn still owns its claims (else `TurnTakenOver`), ending it.
        """
        if held is not None:
            held.taken_over = True
            token, history = held.token, []
        else:
            token = secrets.token_hex(8)
            history = await self._acquire(thread, token, limit, position)
        lock = self.keys.lock(thread)
        if lease is not None:
            lease.held[lock] = token
        turn = ThreadTurn(history, Batch(self.redis))
        try:
            try:
                yield turn
            except BaseException:
                await self.release(thread, token)
                raise
            await self._commit(thread, token, turn, lease)
        finally:
            if lease is not None:
                lease.held.pop(lock, None)

    async def _commit(self, thread: str, token: str, turn: ThreadTurn, lease: Lease | None) -> None:
        keys = [
            self.keys.messages(thread),
            self.keys.order(thread),
            self.keys.lock(thread),
            self.keys.gone(thread),
        ]
        args: list[str | int] = [token, self.max_messages, self.ttl_seconds]
        if lease is not None:
            claim_keys, claim_args = lease.commit_part()
            keys += claim_keys
            args += claim_args
            turn.commit.pipe.zrem(lease.index_key, lease.member)
        else:
            args += [0, "", 0]
        for message in turn.pending:
            args += [message["id"], encode(message)]
        _COMMIT.queue(turn.commit.pipe, keys, args)
        committed = turn.commit.step(lambda replies: bool(replies[-1]))
        await turn.commit.run()
        if not committed.value:
            raise TurnTakenOver(f"{thread}: claims taken over before the commit")
        if lease is not None:
            lease.settled = True

    async def record(self, thread: str, message: StoredMessage) -> bool:
        """Store a message posted in a thread the bot is in, or where a turn of the bot's is
        running or queued (no lock needed; it falls into place by its id). False, storing
        nothing, when the bot is not in the thread."""
        return await self._change("add", thread, message["id"], encode(message))

    async def edit(self, thread: str, message: StoredMessage) -> bool:
        """Replace a stored message by the edited one (same id); False when it is not stored."""
        return await self._change("edit", thread, message["id"], encode(message))

    async def delete(self, thread: str, message_id: str) -> bool:
        """Forget a stored message; False when it was not stored. Either way a turn under way
        in the thread will not write it back (see commit.lua)."""
        return await self._change("delete", thread, message_id, "")

    async def delete_answer(self, thread: str, said: StoredMessage) -> bool:
        """Forget an answer of the bot's that was deleted in Slack. Read back from Slack it is
        stored under its own ts; written by a turn, under its question's id + "~a", and its
        Slack ts is not kept, so it is found by its text (`said`: the deleted message, one part
        of a long answer at least) among the thread's stored answers (a few dozen at most)."""
        if await self.delete(thread, said["id"]):
            return True
        snippet = said["content"].strip()[:200]
        if not snippet:
            return False
        with redis_unavailable():
            stored = await self.redis.hvals(self.keys.messages(thread))
        found = False
        for message in decode_messages(stored):
            content = message["content"].strip()
            # A short text must be the whole answer: "Yes." is in many answers.
            if message["role"] == "assistant" and (
                content == snippet or (len(snippet) >= 20 and snippet in content)
            ):
                found = await self.delete(thread, message.get("id", "")) or found
        return found

    async def _change(self, mode: str, thread: str, message_id: str, encoded: str) -> bool:
        keys = [
            self.keys.messages(thread),
            self.keys.order(thread),
            self.keys.lock(thread),
            self.keys.waiters(thread),
            self.keys.gone(thread),
        ]
        args: list[str | int] = [
            mode,
            message_id,
            encoded,
            self.max_messages,
            self.ttl_seconds,
            GONE_TTL,
        ]
        with redis_unavailable():
            return bool(await _RECORD.run(self.redis, keys, args))

    async def _acquire(
        self, thread: str, token: str, limit: int, position: str | None
    ) -> list[StoredMessage]:
        """Poll the acquire script until this turn is first in the queue and the lock is free."""
        deadline = time.monotonic() + self.lock_wait
        pause = 0.01
        member = position or f"{time.time():.6f}:{token}"
        try:
            score = float(member.split(":", 1)[0])
        except ValueError:
            score = time.time()
        keys = [
            self.keys.lock(thread),
            self.keys.waiters(thread),
            self.keys.beats(thread),
            self.keys.order(thread),
            self.keys.messages(thread),
        ]
        lock_ms = int(self.lock_timeout * 1000)
        while True:
            args: list[str | int] = [
                token,
                member,
                repr(score),
                _now_ms(),
                lock_ms,
                self.stale_ms,
                limit,
            ]
            with redis_unavailable():
                result = await _ACQUIRE.run(self.redis, keys, args)
            if result and int(result[0]) == 1:
                return decode_messages(result[1]) if len(result) > 1 else []
            if time.monotonic() + pause > deadline:
                raise ThreadBusy(f"lock on {thread} not free after {self.lock_wait:.0f}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)


def _now_ms() -> int:
    return int(time.time() * 1000)
