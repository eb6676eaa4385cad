"""Thread history, per-thread locks and event dedup, on an injected `redis.asyncio` client.

Key schema (prefix configurable, default ``bot:``; every key is versioned ``v1``). The part in
braces is a Redis Cluster hash tag, so a thread's history and lock live in one slot:

| key                          | type   | written by                          | expiry          |
|------------------------------|--------|-------------------------------------|-----------------|
| ``{p}v1:hist:{<thread>}``    | list   | `Turn` exit (commit script)         | history TTL     |
| ``{p}v1:lock:{<thread>}``    | string | `turn()` or `queue_take_new_thread` | lock timeout    |
| ``{p}v1:once:<name>``        | string | `claim()` (SET NX EX)               | given per claim |
| ``{p}v1:engaged:{<thread>}`` | string | a Slack turn that saved nothing     | history TTL     |
| ``{p}v1:wait:{<thread>}``    | zset   | `queue_enqueue`, `turn()`           | 2 × stale time  |
| ``{p}v1:beat:{<thread>}``    | zset   | `queue_enqueue`, `turn()`           | 2 × stale time  |

``<thread>`` is an opaque id chosen by the caller: ``team:channel:thread_ts`` for Slack,
``cli:NAME`` for ``python -m bot ask --thread NAME``. Each list item is a JSON object
``{"role", "content", "tokens"}``; ``tokens`` is the best known token count of that message.

Round trips per turn are kept low on purpose (the benchmark counts them): taking the lock and
reading the history is one script (for a thread's first message, which has no history, a `SET NX`
the caller adds to its own first pipeline: `queue_take_new_thread`); appending the turn, trimming, setting the TTL and releasing
the lock is another, one pipeline with the caller's own commands (`Turn.also`). That pipeline is
not a MULTI: the turn itself is atomic in its script, and the caller's bookkeeping beside it
(claims, usage) needs no transaction with it; a connection lost mid-write can lose a usage count,
never half a turn. Without MULTI/EXEC and their QUEUED replies the commit costs less client CPU
(redis-py spends its time per command and reply, not per byte), and in Redis Cluster each command
can go to its own slot.

The same code runs on a real Redis and on fakeredis (the embedded store used when ``REDIS_URL`` is
unset). Every redis-py error is translated into `StoreUnavailable` here, at the boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.chat_types import StoredMessage
from bot.errors import StoreUnavailable, ThreadBusy

# Fair, ordered acquisition. Waiters queue in a sorted set by their position (the Slack message
# ts), so concurrent messages in a thread are answered in the order they were written. A waiter
# refreshes its heartbeat on every poll; one that stops (its replica died) is dropped after
# stale_ms, so it cannot block the queue. The lock itself still expires after lock_ms.
# KEYS: lock, waiters, heartbeats, history. ARGV: token, member, score, now_ms, lock_ms,
# stale_ms, limit.
_ACQUIRE = """
local limit = tonumber(ARGV[7])
if redis.call('zcard', KEYS[2]) == 0 and redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[5]) then
  -- nobody queued and the lock was free: the common case, three commands
  if limit <= 0 then return {1} end
  return {1, redis.call('lrange', KEYS[4], -limit, -1)}
end
redis.call('zadd', KEYS[2], 'NX', ARGV[3], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[4], ARGV[2])
local stale = redis.call('zrangebyscore', KEYS[3], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[6]))
for _, m in ipairs(stale) do
  redis.call('zrem', KEYS[2], m)
  redis.call('zrem', KEYS[3], m)
end
redis.call('pexpire', KEYS[2], tonumber(ARGV[6]) * 2)
redis.call('pexpire', KEYS[3], tonumber(ARGV[6]) * 2)
if redis.call('zrange', KEYS[2], 0, 0)[1] ~= ARGV[2] then return {0} end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[5]) then return {0} end
redis.call('zrem', KEYS[2], ARGV[2])
redis.call('zrem', KEYS[3], ARGV[2])
if limit <= 0 then return {1} end
return {1, redis.call('lrange', KEYS[4], -limit, -1)}
"""

# Join a thread's queue early (while Slack's request is still being acked), so a message written
# earlier keeps its place even if its turn starts later. KEYS: waiters, heartbeats, history,
# engaged.
# ARGV: member, score, now_ms, stale_ms, require_history (1: only for threads with history).
# Returns a `Queued` value: 0 not a thread the bot is in, 1 already queued, 2 queued by this call.
_ENQUEUE = """
if ARGV[5] == '1' and redis.call('exists', KEYS[3], KEYS[4]) == 0 then return 0 end
local added = redis.call('zadd', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
redis.call('pexpire', KEYS[1], tonumber(ARGV[4]) * 2)
redis.call('pexpire', KEYS[2], tonumber(ARGV[4]) * 2)
if added == 1 then return 2 end
return 1
"""

# Write a turn and release the lock, atomically: append, trim, refresh the TTL, then
# compare-and-delete the lock. One command instead of five, sent as EVAL: the script text travels
# each time, so a Redis that restarted (and lost its script cache) mid-turn still runs it, where
# EVALSHA would answer NOSCRIPT. KEYS: history, lock.
# ARGV: token, max_messages, ttl_seconds, messages...
_COMMIT = """
if #ARGV > 3 then
  redis.call('rpush', KEYS[1], unpack(ARGV, 4))
  redis.call('ltrim', KEYS[1], -tonumber(ARGV[2]), -1)
  redis.call('expire', KEYS[1], ARGV[3])
end
if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end
return 1
"""

# Compare-and-delete: only the holder's token may release the lock.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

REDIS_ERRORS = (redis_errors.RedisError, OSError, RuntimeError)
"""What a lost Redis connection can raise. Under uvloop, writing to a connection the server has
closed raises RuntimeError ("unable to perform operation on <TCPTransport closed=True>") rather
than a redis ConnectionError; the Redis-outage test under load found it."""


@contextlib.contextmanager
def redis_unavailable() -> Iterator[None]:
    """Translate redis-py's errors into `StoreUnavailable` at the store boundary."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc


class Queued(enum.IntEnum):
    """What `HistoryStore.queue_enqueue`'s command did."""

    NOT_IN_THREAD = 0
    """`require_history` and the thread has no history: nothing was done."""
    ALREADY = 1
    """The message already had its place (another delivery of it put it there)."""
    JOINED = 2
    """This call gave the message its place; a delivery that then turns out to be a duplicate
    must take it back (`dequeue`), or the thread's next message waits for it to go stale."""


class Turn:
    """A held thread lock plus the history read under it. `save()` queues the new turn; it is
    written, with the lock release, in one round trip when the `turn()` block exits normally.
    `also()` adds the caller's own commands (dedup claims, usage) to that same round trip."""

    def __init__(self, history: list[StoredMessage]) -> None:
        self.history = history
        self.pending: list[StoredMessage] = []
        self.extra: list[Callable[[Any], None]] = []

    def save(self, *messages: StoredMessage) -> None:
        self.pending.extend(messages)

    def also(self, queue: Callable[[Any], None]) -> None:
        """`queue(pipeline)` is called at commit to add commands to the commit's pipeline."""
        self.extra.append(queue)


class HistoryStore:
    """Everything the bot keeps per thread. All methods raise `StoreUnavailable` on Redis errors."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "bot:",
        max_messages: int = 40,
        ttl_seconds: int = 30 * 86_400,
        lock_timeout: float = 120.0,
        lock_wait: float | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = f"{prefix}v1:"
        self.max_messages = max_messages
        self.ttl_seconds = ttl_seconds
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_timeout if lock_wait is None else lock_wait
        self._release = redis.register_script(_RELEASE)
        self._acquire_script = redis.register_script(_ACQUIRE)
        self.stale_ms = 5000

    def history_key(self, thread: str) -> str:
        return f"{self.prefix}hist:{{{thread}}}"

    def lock_key(self, thread: str) -> str:
        return f"{self.prefix}lock:{{{thread}}}"

    def engaged_key(self, thread: str) -> str:
        return f"{self.prefix}engaged:{{{thread}}}"

    def queue_engage(self, pipe: Pipeline, thread: str) -> None:
        """Mark the thread as one the bot answered in, even if only with an error message, so
        a plain "try again" reply in it is answered too."""
        pipe.set(self.engaged_key(thread), "1", ex=self.ttl_seconds)

    def waiters_key(self, thread: str) -> str:
        return f"{self.prefix}wait:{{{thread}}}"

    def heartbeat_key(self, thread: str) -> str:
        return f"{self.prefix}beat:{{{thread}}}"

    def once_key(self, name: str) -> str:
        return f"{self.prefix}once:{name}"

    async def ping(self) -> bool:
        """True when Redis answers; never raises (used by /readyz)."""
        try:
            return bool(await self.redis.ping())
        except REDIS_ERRORS:
            return False

    def queue_claims(self, pipe: Pipeline, names: Sequence[str], ttl_seconds: int) -> None:
        """Add one `SET NX EX` per name to `pipe`; each result is truthy where we were first."""
        for name in names:
            pipe.set(self.once_key(name), "1", nx=True, ex=ttl_seconds)

    def queue_keep_claims(self, pipe: Pipeline, names: Sequence[str], ttl_seconds: int) -> None:
        """Add the extension of claims whose work is done (see `bot.turns` for why)."""
        for name in names:
            pipe.expire(self.once_key(name), ttl_seconds)

    async def claim(self, names: Sequence[str], ttl_seconds: int) -> list[bool]:
        """`SET NX EX` each name in one round trip; True where this caller was first."""
        with redis_unavailable():
            async with self.redis.pipeline(transaction=False) as pipe:
                self.queue_claims(pipe, names, ttl_seconds)
                results = await pipe.execute()
        return [bool(r) for r in results]

    async def load(self, thread: str, limit: int | None = None) -> list[StoredMessage]:
        """The last `limit` messages of a thread, oldest first (no lock)."""
        with redis_unavailable():
            raw = await self.redis.lrange(self.history_key(thread), -limit if limit else 0, -1)
        return _decode(raw)

    def queue_enqueue(
        self, pipe: Pipeline, thread: str, position: str, *, require_history: bool
    ) -> bool:
        """Add a command to `pipe` that takes the message's place in the thread's queue now (the
        turn that follows keeps it); nothing is done when `require_history` and the thread has
        none (not a thread the bot is in). Its result goes to `Queued(...)`. Sent as EVAL (see
        `_COMMIT`). Returns False, adding nothing, when `position` is not a Slack ts."""
        try:
            score = float(position)
        except ValueError:
            return False
        keys = [
            self.waiters_key(thread),
            self.heartbeat_key(thread),
            self.history_key(thread),
            self.engaged_key(thread),
        ]
        pipe.eval(
            _ENQUEUE,
            len(keys),
            *keys,
            position,
            repr(score),
            int(time.time() * 1000),
            self.stale_ms,
            1 if require_history else 0,
        )
        return True

    async def dequeue(self, thread: str, position: str) -> None:
        """Leave the queue without taking the lock (the turn ended early). Best effort."""
        with contextlib.suppress(*REDIS_ERRORS):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self.waiters_key(thread), position)
                pipe.zrem(self.heartbeat_key(thread), position)
                await pipe.execute()

    def queue_take_new_thread(self, pipe: Pipeline, thread: str) -> str:
        """Add a `SET NX PX` of the lock of a thread whose first message is being answered to
        `pipe`, and return its token. Such a thread has no history yet, so where the result is
        truthy `turn(held=token)` skips its own lock-and-read round trip; a caller that stops
        before the turn gives the lock back with `release`."""
        token = secrets.token_hex(8)
        pipe.set(self.lock_key(thread), token, nx=True, px=int(self.lock_timeout * 1000))
        return token

    async def release(self, thread: str, token: str) -> None:
        """Give a held lock back (only if it is still ours). Best effort: it expires anyway."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self._release(keys=[self.lock_key(thread)], args=[token])

    @asynccontextmanager
    async def turn(
        self, thread: str, limit: int, position: str | None = None, held: str | None = None
    ) -> AsyncIterator[Turn]:
        """Hold the thread's lock, read its last `limit` messages, and write what was saved.

        Concurrent turns of a thread get the lock in `position` order (a Slack ts: the order the
        messages were written). The lock expires after `lock_timeout`, so a crashed replica
        cannot wedge a thread. Raises `ThreadBusy` when the lock cannot be had within
        `lock_wait`. `held` is the token of a new thread's lock already taken with
        `queue_take_new_thread`: the turn starts at once, with no history.
        """
        if held is not None:
            token, history = held, []
        else:
            token = secrets.token_hex(8)
            history = await self._acquire(thread, token, limit, position)
        turn = Turn(history)
        try:
            yield turn
        except BaseException:
            await self.release(thread, token)
            raise
        await self._commit(thread, token, turn.pending, turn.extra)

    async def _acquire(
        self, thread: str, token: str, limit: int, position: str | None
    ) -> list[StoredMessage]:
        deadline = time.monotonic() + self.lock_wait
        pause = 0.01
        member = position or f"{time.time():.6f}:{token}"
        try:
            score = float(member.split(":", 1)[0])
        except ValueError:
            score = time.time()
        keys = [
            self.lock_key(thread),
            self.waiters_key(thread),
            self.heartbeat_key(thread),
            self.history_key(thread),
        ]
        while True:
            args: list[str | int] = [
                token,
                member,
                repr(score),
                int(time.time() * 1000),
                int(self.lock_timeout * 1000),
                self.stale_ms,
                limit,
            ]
            with redis_unavailable():
                result = await self._acquire_script(keys=keys, args=args)
            if result and int(result[0]) == 1:
                return _decode(result[1]) if len(result) > 1 else []
            if time.monotonic() + pause > deadline:
                raise ThreadBusy(f"lock on {thread} not free after {self.lock_wait:.0f}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def _commit(
        self,
        thread: str,
        token: str,
        pending: list[StoredMessage],
        extra: Sequence[Callable[[Any], None]] = (),
    ) -> None:
        encoded = [json.dumps(m, ensure_ascii=False) for m in pending]
        with redis_unavailable():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.eval(
                    _COMMIT,
                    2,
                    self.history_key(thread),
                    self.lock_key(thread),
                    token,
                    self.max_messages,
                    self.ttl_seconds,
                    *encoded,
                )
                for queue in extra:
                    queue(pipe)
                await pipe.execute()


def _decode(raw: list[Any]) -> list[StoredMessage]:
    messages: list[StoredMessage] = []
    for item in raw:
        try:
            data = json.loads(item)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            messages.append(data)  # type: ignore[arg-type]
    return messages
