"""Admission: which delivery of a Slack message answers it, once, durably; and what the turn reads
first.

Slack redelivers events (`X-Slack-Retry-Num`), delivers a mention as both `app_mention` and
`message` (different event ids), and may deliver one event to two replicas. Two dedup claims in
Redis, on the message (its ts) and on the event id, make exactly one delivery the owner of the
turn; the owner's turn is journaled in the same step, written with Slack's ack (`bot.web`), so a
replica that dies with the turn in flight is replaced (`bot.store.journal`: leases, takeover).

All of it is one round trip, with the channel's settings and the user's usage today, plus one
step that depends on where the message is:

* a message that **starts a thread** takes the thread's lock there (it has no history to read);
* a **reply inside a thread** takes its place in the thread's queue, so messages written one
  after another are answered in that order even when different replicas handle them; a
  follow-up without mention is taken only in a thread the bot is in (else it is none of the
  bot's business, and nothing is claimed).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.channel_config import ConfigStore, Effective
from bot.chat_types import Usage
from bot.errors import StoreUnavailable
from bot.incoming import Incoming
from bot.store import Batch, HeldLock, Queued, Result, ThreadStore
from bot.store.journal import Claimed, Lease, TurnJournal
from bot.usage import UsageLedger

log = logging.getLogger("bot.turn")


@dataclass(slots=True)
class Begun:
    """What a turn's first round trip read."""

    duplicate: str | None
    """None when this delivery owns the turn; else which claim was taken already ("message" or
    "event", for the metrics)."""
    effective: Effective
    used_today: int
    lease: Lease
    lock: HeldLock | None = None
    """A new thread's lock, taken in the same round trip."""


@dataclass(slots=True)
class Admitted:
    """A message `Admission.admit` let through, with what its round trip read."""

    msg: Incoming
    begun: Begun | None = None
    """The turn's first reads; None when Redis could not be reached (the turn says so)."""
    joined_queue: bool = False
    """This delivery put the message in its thread's queue: a duplicate takes it back."""
    placeholder: str | None = None
    """A taken-over turn's placeholder, posted by the replica that died."""


class Admission:
    """Claims, the thread queue, the turn journal, and the bookkeeping that ends a turn."""

    def __init__(
        self,
        *,
        redis: Redis,
        store: ThreadStore,
        journal: TurnJournal,
        config: ConfigStore,
        ledger: UsageLedger,
    ) -> None:
        self.redis = redis
        self.store = store
        self.journal = journal
        self.config = config
        self.ledger = ledger
        self._forgetting: set[asyncio.Task[None]] = set()

    async def admit(self, msg: Incoming) -> Admitted | None:
        """Before Slack's request is acked (see the module docstring). None: not for the bot."""
        followup = msg.kind == "followup"
        lease = self.journal.lease(msg.thread_id, msg.ts, msg.event_id)
        batch = Batch(self.redis)
        reads = self._queue_reads(batch, msg)
        claimed: Result[tuple[str | None, HeldLock | None]] | None = None
        if msg.starts_thread:
            claimed = self.journal.queue_claim(batch, lease, msg.to_json())
        else:
            joined = self.journal.queue_join(
                batch, lease, msg.to_json(), require_history=followup, stale_ms=self.store.stale_ms
            )
        try:
            await batch.run()
            if claimed is not None:
                effective, used = await self._settle_reads(msg, *reads)
                duplicate, lock = claimed.value
                return Admitted(msg, Begun(duplicate, effective, used, lease, lock))
            queued, dup = joined.value
            if queued is Queued.NOT_IN_THREAD:
                self._forget(lease)
                return None if followup else Admitted(msg)
            effective, used = await self._settle_reads(msg, *reads)
        except StoreUnavailable as exc:
            if not followup:
                return Admitted(msg)  # the turn itself will tell the user
            # Whether the bot is in this thread is unknowable now, and Slack has its 200.
            log.warning("follow-up %s not admitted, Redis unreachable (%s)", msg.ts, exc)
            return None
        begun = Begun(dup, effective, used, lease)
        return Admitted(msg, begun, joined_queue=queued is Queued.JOINED)

    def _queue_reads(
        self, batch: Batch, msg: Incoming
    ) -> tuple[Result[Effective | None], Result[int] | None]:
        """The channel's settings, and the user's usage today where a quota may apply (unknown
        settings, or a quota in the ones this process holds)."""
        known = self.config.cached(msg.team, msg.channel)
        effective = self.config.queue_read(batch, msg.team, msg.channel)
        if known is not None and not known.settings.quota:
            return effective, None
        return effective, self.ledger.queue_user_today(batch, msg.team, msg.user)

    async def _settle_reads(
        self, msg: Incoming, effective: Result[Effective | None], used: Result[int] | None
    ) -> tuple[Effective, int]:
        """The reads' values; settings that changed since this process read them, and usage a
        new quota needs, cost a round trip of their own."""
        settings = effective.value
        if settings is None:
            settings = await self.config.effective(msg.team, msg.channel)
        if used is not None:
            return settings, used.value
        if not settings.settings.quota:
            return settings, 0
        return settings, await self.ledger.user_today(msg.team, msg.user)

    async def resume(self, claimed: Claimed) -> Admitted:
        """A turn taken over from a replica that died: its claims are this replica's now; read
        the settings and usage again (they may have changed)."""
        msg = Incoming.from_json(claimed.message)
        batch = Batch(self.redis)
        reads = self._queue_reads(batch, msg)
        await batch.run()
        effective, used = await self._settle_reads(msg, *reads)
        begun = Begun(None, effective, used, claimed.lease)
        return Admitted(msg, begun, placeholder=claimed.placeholder)

    def _forget(self, lease: Lease) -> None:
        task = asyncio.ensure_future(self.journal.forget(lease))
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    def queue_answered(
        self, batch: Batch, msg: Incoming, usage: Usage | None, lease: Lease
    ) -> None:
        """Bookkeeping of an answered turn, added to the batch that saves its history (which
        also ends its claims and journal entry): the usage, counted once per turn."""
        if usage is not None:
            self.ledger.queue_record(batch, msg.team, msg.channel, msg.user, usage, lease.token)

    async def finish_unanswered(self, msg: Incoming, lease: Lease, *, engage: bool = True) -> None:
        """One round trip for a turn that saved nothing: its claims kept past Slack's retries,
        out of the journal, and (`engage`) the thread marked as one the bot answered in (if only
        with an error), so a plain "try again" is answered."""
        batch = Batch(self.redis)
        self.journal.queue_settle(batch, lease)
        if engage:
            self.store.queue_engage(batch, msg.thread_id)
        try:
            await batch.run()
        except StoreUnavailable as exc:
            # Its leases lapse; a takeover then answers it after all.
            log.error("could not end the turn %s (%s)", lease.member, exc)
        lease.settled = True

    async def leave(self, admitted: Admitted, begun: Begun | None, *, answered: bool) -> None:
        """After the turn: give back what it took and did not use. A new thread's lock that the
        answer never took over is released. A turn that did not answer leaves the thread's queue,
        except a duplicate that did not join it: that place belongs to the delivery being
        answered. A turn of this replica's that ended without settling is settled."""
        msg = admitted.msg
        if begun is not None:
            self.journal.drop(begun.lease)
            if begun.lock is not None and not begun.lock.taken_over:
                await self.store.release(msg.thread_id, begun.lock.token)
            owned = begun.duplicate is None and not begun.lease.lost
            if owned and not answered and not begun.lease.settled:
                await self.finish_unanswered(msg, begun.lease, engage=False)
        duplicate = begun is not None and begun.duplicate is not None
        if not answered and (admitted.joined_queue or not duplicate):
            await self.store.dequeue(msg.thread_id, msg.ts)
