"""Token usage accounting per day, team, channel and user, and the daily per-user quota.

One hash per team per UTC day (`Keys.usage_day`), expiring after 90 days. Fields:

| field                     | counts                                    |
|---------------------------|-------------------------------------------|
| ``ch:{channel}:p`` / ``:c`` / ``:t``        | one channel's prompt/completion/total   |
| ``u:{user}:t``                              | one user, whole workspace (the quota)   |
| ``cu:{channel}:{user}:t``                   | one user in one channel                 |

Recording is queued onto the pipeline that ends a turn, and the quota read onto the one that starts
it, so accounting adds no round trip of its own.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.chat_types import Usage
from bot.errors import redis_unavailable
from bot.store import Batch, Keys, Result, Script

RETENTION_SECONDS = 90 * 86_400
COUNTED_MARK_SECONDS = 3_600
"""How long a turn's "usage counted" mark lives: far beyond any re-send of its pipeline."""
_RECORD = Script("record_usage")
PERIODS = {"today": 1, "7d": 7, "30d": 30}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def seconds_until_reset(now: dt.datetime) -> int:
    """Seconds until the next UTC midnight, when daily quotas reset."""
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()))


def human_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{max(1, minutes)} min"


@dataclass
class Report:
    """Summed usage over a period."""

    days: int
    workspace: Usage = field(default_factory=Usage)
    channel: Usage = field(default_factory=Usage)
    top_users: list[tuple[str, int]] = field(default_factory=list)
    top_channel_users: list[tuple[str, int]] = field(default_factory=list)
    top_channels: list[tuple[str, int]] = field(default_factory=list)


class UsageLedger:
    """Records and reports token usage; every I/O object is injected."""

    def __init__(
        self, redis: Redis, keys: Keys, *, now: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.now = now

    def queue_user_today(self, batch: Batch, team: str, user: str) -> Result[int]:
        """Add the read of the user's tokens today (for the quota) to `batch`."""
        batch.pipe.hget(self.keys.usage_day(team, self.now().date()), f"u:{user}:t")
        return batch.step(lambda replies: self.tokens_from(replies[0]))

    async def user_today(self, team: str, user: str) -> int:
        """The user's tokens today, in a round trip of its own."""
        batch = Batch(self.redis)
        used = self.queue_user_today(batch, team, user)
        await batch.run()
        return used.value

    @staticmethod
    def tokens_from(raw: object) -> int:
        try:
            return int(str(raw)) if raw is not None else 0
        except ValueError:
            return 0

    def queue_record(
        self, batch: Batch, team: str, channel: str, user: str, usage: Usage, turn: str
    ) -> None:
        """Add the turn's counters (the fields in the module docstring) to `batch`; `turn` (its
        token) makes them count once however often the pipeline is sent."""
        day = self.now().date()
        _RECORD.queue(
            batch.pipe,
            [self.keys.usage_day(team, day), self.keys.usage_done(team, day, turn)],
            [
                channel,
                user,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                RETENTION_SECONDS,
                COUNTED_MARK_SECONDS,
            ],
        )

    async def report(self, team: str, channel: str, days: int, top: int = 5) -> Report:
        today = self.now().date()
        keys = [self.keys.usage_day(team, today - dt.timedelta(days=i)) for i in range(days)]
        with redis_unavailable():
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                raws: list[Mapping[str, str]] = await pipe.execute()
        sums: Counter[str] = Counter()
        for raw in raws:
            for name, value in raw.items():
                sums[name] += self.tokens_from(value)
        report = Report(days)
        # The workspace total is the sum of its channels (one counter fewer per turn).
        kinds = {
            s: sum(v for k, v in sums.items() if k.startswith("ch:") and k.endswith(f":{s}"))
            for s in "pct"
        }
        report.workspace = Usage(kinds["p"], kinds["c"], kinds["t"])
        report.channel = Usage(
            sums[f"ch:{channel}:p"], sums[f"ch:{channel}:c"], sums[f"ch:{channel}:t"]
        )
        users = Counter({k[2:-2]: v for k, v in sums.items() if k.startswith("u:")})
        prefix = f"cu:{channel}:"
        channel_users = Counter(
            {k[len(prefix) : -2]: v for k, v in sums.items() if k.startswith(prefix)}
        )
        channels = Counter(
            {k[3:-2]: v for k, v in sums.items() if k.startswith("ch:") and k.endswith(":t")}
        )
        report.top_users = users.most_common(top)
        report.top_channel_users = channel_users.most_common(top)
        report.top_channels = channels.most_common(top)
        return report

    async def user_days(self, team: str, user: str, days: int) -> list[int]:
        """A person's tokens in the workspace on each of the last `days` days, today first."""
        today = self.now().date()
        with redis_unavailable():
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in range(days):
                    pipe.hget(
                        self.keys.usage_day(team, today - dt.timedelta(days=i)), f"u:{user}:t"
                    )
                raws: list[str | None] = await pipe.execute()
        return [self.tokens_from(raw) for raw in raws]
