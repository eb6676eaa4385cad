"""Dedup claims: `SET NX EX` keys that let exactly one delivery of a Slack message do its work.

Slack redelivers events, delivers a mention as both `app_mention` and `message`, and may deliver
one event to two replicas; the first `SET NX` wins. A claim first lives as long as a turn may
(the pending TTL), so a replica that dies mid-turn does not block Slack's later redelivery; when
the work is done it is kept for the done TTL, longer than Slack's retry schedule (~6 minutes).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.store.batch import Batch, Result
from bot.store.keys import Keys


class Claims:
    """Queues claim commands onto a caller's `Batch`, so claims cost no round trip of their own."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def queue_take(
        self, batch: Batch, names: Sequence[str], ttl_seconds: int
    ) -> Result[list[bool]]:
        """One `SET NX EX` per name; the result says, per name, whether this caller was first."""
        for name in names:
            batch.pipe.set(self.keys.claim(name), "1", nx=True, ex=ttl_seconds)
        return batch.step(lambda replies: [bool(r) for r in replies])

    def queue_keep(self, batch: Batch, names: Sequence[str], ttl_seconds: int) -> None:
        """Extend claims whose work is done, past Slack's retries."""
        for name in names:
            batch.pipe.expire(self.keys.claim(name), ttl_seconds)
