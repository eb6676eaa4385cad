"""Admission: which delivery of a Slack message may answer it, and what the turn reads first.

Slack redelivers events (`X-Slack-Retry-Num`), delivers a mention as both `app_mention` and
`message`, and may deliver one event to two replicas. Two dedup claims in Redis, on the message
(``team:channel:ts``) and on the event id, make exactly one replica answer each message
(`bot.store.Claims`). A claim first lives only as long as a turn may (`pending_ttl`), so if the
replica dies mid-turn, Slack's later redelivery is answered by another one; when the turn ends it
is kept for `done_ttl`, longer than Slack's whole retry schedule (~6 minutes).

The claims, the channel's settings and the user's usage today are read in the turn's first round
trip, together with one mode-specific step:

* a message that **starts a thread** takes the thread's lock there (it has no history to read);
* a **reply inside a thread** takes its place in the thread's queue, before Slack's request is
  acked, so messages written one after another are answered in that order even when different
  replicas handle them (`admit`); a follow-up without mention is queued only in a thread the bot
  is in (else it is none of the bot's business);
* a reply whose admission could not read Redis reads the rest in its turn, with no extra step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.channel_config import ConfigStore, Effective
from bot.chat_types import Usage
from bot.errors import StoreUnavailable
from bot.incoming import Incoming
from bot.store import Batch, Claims, HeldLock, Queued, Result, ThreadStore
from bot.usage import UsageLedger

log = logging.getLogger("bot.turn")


@dataclass(slots=True)
class Begun:
    """What a turn's first round trip read."""

    duplicate: str | None
    """None when this delivery was first; else which claim was taken already ("message" or
    "event", for the metrics)."""
    effective: Effective
    used_today: int
    lock: HeldLock | None = None
    """A new thread's lock, taken in the same round trip."""


@dataclass(slots=True)
class Admitted:
    """A message `Admission.admit` let through, with what it read before the ack."""

    msg: Incoming
    begun: Begun | None = None
    """The turn's first reads, when they rode in the ack path's round trip (replies)."""
    joined_queue: bool = False
    """This delivery put the message in its thread's queue: a duplicate takes it back."""


@dataclass(slots=True)
class _FirstReads:
    claims: Result[list[bool]]
    effective: Result[Effective]
    used_today: Result[int]

    def begun(self, lock: HeldLock | None = None) -> Begun:
        first = self.claims.value
        duplicate = None if all(first) else ("message" if not first[0] else "event")
        return Begun(duplicate, self.effective.value, self.used_today.value, lock)


class Admission:
    """Claims, the thread queue, and the bookkeeping that ends a turn."""

    def __init__(
        self,
        *,
        redis: Redis,
        store: ThreadStore,
        claims: Claims,
        config: ConfigStore,
        ledger: UsageLedger,
        pending_ttl: int = 180,
        done_ttl: int = 3600,
    ) -> None:
        self.redis = redis
        self.store = store
        self.claims = claims
        self.config = config
        self.ledger = ledger
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl

    async def admit(self, msg: Incoming) -> Admitted | None:
        """Before Slack's request is acked (see the module docstring). None: not for the bot."""
        if msg.starts_thread:
            return Admitted(msg)  # nothing to queue behind; its turn reads everything at once
        followup = msg.kind == "followup"
        try:
            queued, begun = await self._begin_reply(msg, require_history=followup)
        except StoreUnavailable:
            return None if followup else Admitted(msg)  # the turn itself will tell the user
        if queued is Queued.NOT_IN_THREAD and followup:
            return None
        return Admitted(msg, begun, joined_queue=queued is Queued.JOINED)

    async def begin(self, msg: Incoming) -> Begun:
        """The turn's first round trip, for a message `admit` read nothing for."""
        batch = Batch(self.redis)
        reads = self._queue_first_reads(batch, msg)
        lock = self.store.queue_take_new_thread(batch, msg.thread_id) if msg.starts_thread else None
        await batch.run()
        return reads.begun(lock.value if lock is not None else None)

    async def _begin_reply(self, msg: Incoming, *, require_history: bool) -> tuple[Queued, Begun]:
        batch = Batch(self.redis)
        reads = self._queue_first_reads(batch, msg)
        queued = self.store.queue_enqueue(
            batch, msg.thread_id, msg.ts, require_history=require_history
        )
        await batch.run()
        return queued.value, reads.begun()

    def _queue_first_reads(self, batch: Batch, msg: Incoming) -> _FirstReads:
        return _FirstReads(
            self.claims.queue_take(batch, msg.claim_names(), self.pending_ttl),
            self.config.queue_read(batch, msg.team, msg.channel),
            self.ledger.queue_user_today(batch, msg.team, msg.user),
        )

    def queue_answered(self, batch: Batch, msg: Incoming, usage: Usage | None) -> None:
        """Bookkeeping of an answered turn, added to the batch that saves its history: keep the
        claims past Slack's retries, record the usage. (Saved history marks the thread as one the
        bot is in.)"""
        self.claims.queue_keep(batch, msg.claim_names(), self.done_ttl)
        if usage is not None:
            self.ledger.queue_record(batch, msg.team, msg.channel, msg.user, usage)

    async def finish_unanswered(self, msg: Incoming) -> None:
        """One round trip for a turn that saved nothing: keep the claims, and mark the thread as
        one the bot answered in (if only with an error), so a plain "try again" is answered."""
        batch = Batch(self.redis)
        self.claims.queue_keep(batch, msg.claim_names(), self.done_ttl)
        self.store.queue_engage(batch, msg.thread_id)
        try:
            await batch.run()
        except StoreUnavailable as exc:
            # The pending TTL still covers Slack's quick retries.
            log.error("could not keep claims of %s (%s)", msg.thread_id, exc)

    async def leave(self, admitted: Admitted, begun: Begun | None, *, answered: bool) -> None:
        """After the turn: give back what it took and did not use. A new thread's lock that the
        answer never took over is released. A turn that did not answer leaves the thread's queue,
        except a duplicate that did not join it: that place belongs to the delivery being
        answered."""
        if begun is not None and begun.lock is not None and not begun.lock.taken_over:
            await self.store.release(admitted.msg.thread_id, begun.lock.token)
        duplicate = begun is not None and begun.duplicate is not None
        if not answered and (admitted.joined_queue or not duplicate):
            await self.store.dequeue(admitted.msg.thread_id, admitted.msg.ts)
