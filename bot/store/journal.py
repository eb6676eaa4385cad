"""Admitted turns made durable, so no question is lost when a replica dies.

Slack never redelivers a message it got its 200 for. So the admission (`queue_claim`), sent to
Redis with the ack (over HTTP right after the 200 is written, in the same pass of the event loop,
before any other request runs; in Socket Mode before the envelope is acked), takes the message's
dedup claims and keeps the turn in Redis: a hash with the message (in the thread's hash tag)
and an entry in a sorted set of turns not yet done. A claim holds the turn's token for a short
lease, which a live replica renews for all its turns (and their threads' locks) in one round
trip every `lease_seconds / 3` (`renew`). A replica that dies stops renewing:

* its claims lapse within `lease_seconds`, so Slack's retry of a request it never acked is
  answered (by whichever replica gets it), not refused as a duplicate for minutes;
* its acked turns are found by the other replicas' `take_over` scan (the sorted set, by when to
  look again) and taken over, at most once: a Lua script takes the claims atomically with the
  read of the turn, so of a takeover and a Slack retry only one can win. The taker answers in
  the dead replica's placeholder (its ts is kept with the turn).

The turn's last write checks that it still owns its claims and marks them `done:<token>` (kept
for `done_ttl`, past Slack's whole retry schedule of about six minutes), so a replica that paused
past its lease and was taken over writes and posts nothing. redis-py re-sends a pipeline after
a timeout or a dropped connection, so a script may run twice: a claim or lock holding the call's
own token, or a `done:` mark with it, is this turn's, and the re-run answers as the first did.
Every script's keys share the thread's hash tag (Redis Cluster); only the sorted set lives
elsewhere, written beside them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bot.errors import REDIS_ERRORS, StoreUnavailable
from bot.store.batch import Batch, Result
from bot.store.keys import Keys
from bot.store.messages import HeldLock, Queued
from bot.store.scripts import Script

log = logging.getLogger(__name__)

_CLAIM = Script("claim")
_JOIN = Script("join")
_RENEW = Script("renew")
_SETTLE = Script("settle")
_TAKEOVER = Script("takeover")
_PLACEHOLDER = Script("placeholder")
TURN_TTL = 3600
"""How long a turn stays in the journal at most (a turn that outlives it is not taken over)."""


@dataclass
class Lease:
    """What one live turn holds and renews: its claims (its token), its thread's lock (`held`)."""

    thread: str
    ts: str
    token: str
    turn_key: str
    claim_keys: list[str]
    index_key: str
    done_ttl: int = 3600
    held: dict[str, str] = field(default_factory=dict)
    lost: bool = False
    """Another replica took the turn over (this one paused past its lease)."""
    settled: bool = False
    """The turn has ended in Redis (its claims `done`, out of the journal)."""

    def commit_part(self) -> tuple[list[str], list[str | int]]:
        """The claim part of the commit script's keys and arguments (see commit.lua)."""
        return [self.turn_key, *self.claim_keys], [len(self.claim_keys), self.token, self.done_ttl]

    @property
    def member(self) -> str:
        """The turn's entry in the sorted set of turns: enough to name all its keys."""
        event = self.claim_keys[1].rsplit(":", 1)[1] if len(self.claim_keys) > 1 else ""
        return f"{self.thread}|{self.ts}|{event}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A turn this replica took over: the message (JSON), the dead owner's placeholder."""

    message: str
    placeholder: str | None
    lease: Lease


class TurnJournal:
    """Claims, the journal of admitted turns, their leases and their takeover."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        lease_seconds: float = 15.0,
        done_ttl: int = 3600,
        clock: Any = time.time,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_ms = int(lease_seconds * 1000)
        self.done_ttl = done_ttl
        self.clock = clock
        self.live: dict[str, Lease] = {}
        """This replica's turns, by member: what `renew` keeps alive."""

    def lease(self, thread: str, ts: str, event_id: str | None, token: str | None = None) -> Lease:
        claims = [self.keys.message_claim(thread, ts)]
        if event_id:
            claims.append(self.keys.event_claim(thread, event_id))
        return Lease(
            thread,
            ts,
            token or secrets.token_hex(8),
            self.keys.turn(thread, ts),
            claims,
            self.keys.turns(),
            self.done_ttl,
        )

    def from_member(self, member: str, token: str) -> Lease:
        thread, ts, event = member.split("|")
        return self.lease(thread, ts, event or None, token)

    def queue_claim(
        self, batch: Batch, lease: Lease, message: str
    ) -> Result[tuple[str | None, HeldLock | None]]:
        """For a message that starts a thread: take the claims, journal the turn and take the
        thread's lock (see claim.lua). The result: None when this delivery was first, else which
        claim was taken already ("message" or "event"); and the lock, when taken."""
        token, lock = secrets.token_hex(8), self.keys.lock(lease.thread)
        _CLAIM.queue(
            batch.pipe,
            [lease.turn_key, lock, *lease.claim_keys],
            [lease.token, self.lease_ms, message, TURN_TTL, token],
        )
        batch.pipe.zadd(lease.index_key, {lease.member: self._due()}, nx=True)

        def parse(replies: list[Any]) -> tuple[str | None, HeldLock | None]:
            *taken, locked = replies[0]
            if not int(locked):
                return _duplicate_of(taken), None
            # Renewed with the claims from now on, not only once the turn holds it: what comes
            # first (Slack's status line or placeholder) may outlast one lease.
            lease.held[lock] = token
            return _duplicate_of(taken), HeldLock(token)

        return batch.step(parse)

    def queue_join(
        self,
        batch: Batch,
        lease: Lease,
        message: str,
        *,
        require_history: bool,
        stale_ms: int,
    ) -> Result[tuple[Queued, str | None]]:
        """For a reply inside a thread: take its place in the thread's queue, its claims, and
        journal it (see join.lua). `Queued.NOT_IN_THREAD` (with `require_history`, a thread the
        bot is not in) means nothing was done; the index entry added beside it is then taken
        back (`forget`)."""
        thread = lease.thread
        try:
            score = float(lease.ts)
        except ValueError:
            return batch.step(lambda _: (Queued.NOT_IN_THREAD, None))
        _JOIN.queue(
            batch.pipe,
            [
                self.keys.waiters(thread),
                self.keys.beats(thread),
                self.keys.order(thread),
                self.keys.engaged(thread),
                self.keys.lock(thread),
                lease.turn_key,
                *lease.claim_keys,
            ],
            [
                lease.ts,
                repr(score),
                int(self.clock() * 1000),
                stale_ms,
                1 if require_history else 0,
                lease.token,
                self.lease_ms,
                message,
                TURN_TTL,
            ],
        )
        batch.pipe.zadd(lease.index_key, {lease.member: self._due()}, nx=True)

        def parse(replies: list[Any]) -> tuple[Queued, str | None]:
            queued, *taken = replies[0]
            if not int(queued):
                return Queued.NOT_IN_THREAD, None
            return Queued(int(queued)), _duplicate_of(taken)

        return batch.step(parse)

    async def forget(self, lease: Lease) -> None:
        """Take back the index entry of a message that turned out not to be a turn."""
        # On failure the scan drops it later: its turn hash does not exist.
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.zrem(lease.index_key, lease.member)

    def queue_settle(self, batch: Batch, lease: Lease) -> None:
        """End a turn that saved nothing: claims `done` (if still ours), out of the journal."""
        _SETTLE.queue(batch.pipe, [lease.turn_key, *lease.claim_keys], [lease.token, self.done_ttl])
        batch.pipe.zrem(lease.index_key, lease.member)

    def hold(self, lease: Lease) -> None:
        self.live[lease.member] = lease

    def drop(self, lease: Lease) -> None:
        self.live.pop(lease.member, None)

    async def remember_placeholder(self, lease: Lease, ts: str) -> None:
        """Keep the ts of the turn's placeholder with it, for a takeover. Best effort."""
        try:
            await _PLACEHOLDER.run(self.redis, [lease.turn_key], [ts])
        except REDIS_ERRORS as exc:
            log.warning("could not keep the placeholder of %s (%s)", lease.member, exc)

    async def renew(self) -> None:
        """Renew every live turn's claims and held locks in one round trip; a turn whose
        message claim is no longer its own is marked `lost`."""
        # Ended turns (committed, settled) only wait to leave: `done` is not "taken over".
        leases = [lease for lease in self.live.values() if not lease.settled]
        if not leases:
            return
        batch = Batch(self.redis)
        results = []
        for lease in leases:
            keys = [*lease.claim_keys, *lease.held]
            tokens = [lease.token] * len(lease.claim_keys) + list(lease.held.values())
            _RENEW.queue(batch.pipe, keys, [self.lease_ms, *tokens])
            results.append(batch.step(lambda replies: bool(replies[0][0])))
        batch.pipe.zadd(self.keys.turns(), {lease.member: self._due() for lease in leases})
        try:
            await batch.run()
        except StoreUnavailable as exc:
            log.warning("could not renew %d leases (%s)", len(leases), exc)
            return
        for lease, renewed in zip(leases, results, strict=True):
            if not renewed.value and not lease.lost:
                lease.lost = True
                log.warning("turn %s was taken over by another replica", lease.member)

    async def take_over(self, limit: int = 20) -> list[Claimed]:
        """Turns whose owner stopped renewing, taken by this replica (at most `limit`)."""
        try:
            due = await self.redis.zrangebyscore(
                self.keys.turns(), "-inf", int(self.clock() * 1000), 0, limit
            )
        except REDIS_ERRORS as exc:
            log.warning("could not look for turns to take over (%s)", type(exc).__name__)
            return []
        taken: list[Claimed] = []
        for member in due:
            if member in self.live:
                continue
            claimed = await self._take(str(member))
            if claimed is not None:
                taken.append(claimed)
        return taken

    async def _take(self, member: str) -> Claimed | None:
        lease = self.from_member(member, secrets.token_hex(8))
        try:
            reply = await _TAKEOVER.run(
                self.redis, [lease.turn_key, *lease.claim_keys], [lease.token, self.lease_ms]
            )
            state = reply[0]
            if state in ("gone", "done"):
                await self.redis.zrem(self.keys.turns(), member)
                return None
            await self.redis.zadd(self.keys.turns(), {member: self._due()})
        except REDIS_ERRORS as exc:
            log.warning("could not take over %s (%s)", member, type(exc).__name__)
            return None
        if state != "taken" or not reply[1]:
            return None
        return Claimed(str(reply[1]), str(reply[2]) if reply[2] else None, lease)

    def _due(self) -> int:
        """When a turn's entry should be looked at again: after its lease."""
        return int(self.clock() * 1000) + self.lease_ms


def _duplicate_of(taken: list[Any]) -> str | None:
    if all(int(t) for t in taken):
        return None
    return "message" if not int(taken[0]) else "event"
