"""Deleting what the bot stores: a workspace's everything (uninstall), its conversations
(`/gpt forget-all`), or one thread's (the *Forget this thread* shortcut).

A workspace's keys are found by the rule `bot.store.keys` states: the workspace id is the first
segment after the key's kind. `SCAN` walks the keyspace in steps of `scan_count` (never `KEYS`,
which blocks Redis for the whole walk; on a Redis Cluster redis-py scans every primary node in
turn) with a `MATCH` that narrows it to keys containing the id, and `Keys.team_of` keeps the
exact ones. They are deleted with `UNLINK` (Redis frees the memory in the background) in batches
of at most `batch` keys; on a cluster redis-py splits each batch by slot. The workspace's entries
in the index of admitted turns (`Keys.turns`, whose members start with the thread) go too.

A workspace purge is marked in Redis (`Keys.purges`) before it starts and unmarked when it is
done, so one a replica did not finish (it stopped, Redis went away) is finished by `resume`,
which the bot runs at start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable

from redis.asyncio import Redis

from bot.errors import StoreUnavailable, redis_unavailable
from bot.store.keys import HISTORY_KINDS, Keys
from bot.store.threads import GONE_TTL

log = logging.getLogger(__name__)

_GLOB = re.compile(r"([*?\[\]\\])")


def _glob_escape(text: str) -> str:
    return _GLOB.sub(r"\\\1", text)


def _thread_of(key: str) -> str:
    """The thread in a thread key's hash tag: ``…:msgs:{T:C:ts}`` → ``T:C:ts``."""
    return key[key.index("{") + 1 : key.index("}")]


class Purger:
    """Finds and deletes keys by workspace; raises `StoreUnavailable` when Redis fails."""

    def __init__(
        self, redis: Redis, keys: Keys, *, scan_count: int = 1000, batch: int = 500
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.scan_count = scan_count
        self.batch = batch
        self._resuming: asyncio.Task[None] | None = None

    async def keys_of(
        self, owner: str, keep: Callable[[str], bool] = lambda _: True
    ) -> AsyncIterator[str]:
        """Every key holding the workspace's (or organisation's) data that `keep` accepts."""
        match = f"{_glob_escape(self._keys.base)}*{_glob_escape(owner)}*"
        with redis_unavailable():
            async for key in self._redis.scan_iter(match=match, count=self.scan_count):
                if self._keys.team_of(key) == owner and keep(key):
                    yield key

    async def purge(self, owners: Iterable[str]) -> int:
        """Delete every key of these workspaces/organisations; returns how many. Marked as
        pending in Redis until done (see the module docstring)."""
        owners = [o for o in dict.fromkeys(owners) if o]
        if not owners:
            return 0
        with redis_unavailable():
            await self._redis.sadd(self._keys.purges(), *owners)
        deleted = 0
        for owner in owners:
            deleted += await self._delete(self.keys_of(owner))
            await self._drop_turns(owner)
            with redis_unavailable():
                await self._redis.srem(self._keys.purges(), owner)
            log.info("purged owner=%s", owner)
        return deleted

    async def resume(self) -> int:
        """Finish the purges a replica started and did not end."""
        with redis_unavailable():
            pending = {str(o) for o in await self._redis.smembers(self._keys.purges())}
        if pending:
            log.info("resuming %d unfinished purges", len(pending))
        return await self.purge(sorted(pending))

    def start_resume(self) -> None:
        """Run `resume` in the background (at the bot's start); Redis being down is logged."""

        async def run() -> None:
            try:
                await self.resume()
            except StoreUnavailable as exc:
                log.warning("could not resume unfinished purges: %s", exc)

        self._resuming = asyncio.ensure_future(run())

    async def forget_history(self, team: str) -> int:
        """Delete the stored conversations of every thread of the workspace; returns how many
        threads had one. Threads with a turn under way (the index of admitted turns names
        them) are marked first, so that its commit writes nothing from before now (see
        `forget_thread`)."""
        busy = {member.split("|", 1)[0] async for member in self._turns_of(team)}
        await self._mark_forgotten(sorted(busy))
        threads: set[str] = set()

        def history(key: str) -> bool:
            if self._keys.kind_of(key) not in HISTORY_KINDS:
                return False
            threads.add(_thread_of(key))
            return True

        await self._delete(self.keys_of(team, history))
        return len(threads)

    async def forget_thread(self, team: str, channel: str, thread_ts: str) -> bool:
        """Delete one thread's stored conversation; True when there was one. A turn under way
        in the thread writes nothing from before this moment when it ends (commit.lua reads
        the time in the thread's ``gone`` hash, marked before the deletion), so the thread
        stays forgotten."""
        thread = f"{team}:{channel}:{thread_ts}"
        await self._mark_forgotten([thread])
        keys = [self._keys.messages(thread), self._keys.order(thread), self._keys.engaged(thread)]
        with redis_unavailable():
            return bool(await self._redis.unlink(*keys))  # one slot: the thread's hash tag

    async def _mark_forgotten(self, threads: list[str]) -> None:
        """Note the time in each thread's ``gone`` hash (see commit.lua), in batches."""
        at = f"{time.time():.6f}"
        for start in range(0, len(threads), self.batch):
            pipe = self._redis.pipeline(transaction=False)
            for thread in threads[start : start + self.batch]:
                gone = self._keys.gone(thread)
                pipe.hset(gone, "*", at)
                pipe.expire(gone, GONE_TTL)
            with redis_unavailable():
                await pipe.execute()

    async def _turns_of(self, owner: str) -> AsyncIterator[str]:
        """The owner's entries in the index of admitted turns (members start with the thread)."""
        with redis_unavailable():
            async for member, _ in self._redis.zscan_iter(
                self._keys.turns(), match=f"{_glob_escape(owner)}:*", count=self.scan_count
            ):
                yield str(member)

    async def _drop_turns(self, owner: str) -> None:
        index = self._keys.turns()
        members = [m async for m in self._turns_of(owner)]
        with redis_unavailable():
            for start in range(0, len(members), self.batch):
                await self._redis.zrem(index, *members[start : start + self.batch])

    async def _delete(self, found: AsyncIterator[str]) -> int:
        deleted, pending = 0, []
        async for key in found:
            pending.append(key)
            if len(pending) >= self.batch:
                deleted += await self._unlink(pending)
                pending = []
        if pending:
            deleted += await self._unlink(pending)
        return deleted

    async def _unlink(self, keys: list[str]) -> int:
        with redis_unavailable():
            return int(await self._redis.unlink(*keys))
