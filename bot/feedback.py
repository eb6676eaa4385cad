"""👍/👎 on answers: the buttons on each answer's last message, the votes in Redis, the click's
acknowledgement, and the counts `/gpt usage` shows.

Slack facts this relies on:

* A `context_actions` block holds up to 5 elements; a `feedback_buttons` element has an
  `action_id` and a `positive_button` and a `negative_button`. Each button has a `text`
  (plain_text, up to 75 characters), a `value` (up to 2,000 characters, sent back on a click)
  and an optional `accessibility_label` (up to 75).
* A click is an interactivity request, which needs interactivity turned on in the app (the
  manifest does that). Over HTTP it is a form-encoded `payload=<JSON>`, signed like events; in
  Socket Mode it comes as an `interactive` envelope. The payload is a `block_actions` one:
  `user.id`, `team.id`, `channel.id`, `container.message_ts` (the clicked message),
  `container.thread_ts` or `message.thread_ts`, and `actions[0]` = `{"type":
  "feedback_buttons", "action_id", "block_id", "value", "text", "action_ts"}`. It must be acked
  within 3 seconds; Bolt's `ack()` does that, and the work comes after.
* `chat.postEphemeral(channel, user, text, thread_ts)` shows a message to that user only.

The button's value carries the vote and the answer's deployment (`up:gpt-4o`), because the
payload's copy of the message does not reliably carry its metadata. A vote is kept on the day of
the answer (UTC, from the answer's ts), so a vote changed days later replaces the same record.
Redis: one hash per team and day (`Keys.feedback_day`), kept 90 days, with fields
``v:<channel>:<answer ts>:<user>`` (`up` or `down`: one vote per person per answer) and the
counters ``n:<channel>:<deployment>:up`` / ``:down``. `feedback.lua` changes a vote and moves its
counter in one step.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from redis.asyncio import Redis
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import StoreUnavailable, redis_unavailable
from bot.formatting import SlackMessage
from bot.metrics import Metrics
from bot.store import Keys, Script
from bot.usage import RETENTION_SECONDS, utc_now

log = logging.getLogger(__name__)

ACTION_ID = "answer_feedback"
_VOTE = Script("feedback")
Vote = Literal["up", "down"]
EMOJI: dict[Vote, str] = {"up": "👍", "down": "👎"}
THANKS: dict[int, str] = {
    0: "Your {emoji} on this answer was already recorded.",
    1: "Thanks! Your {emoji} on this answer is recorded.",
    2: "Thanks! Your vote on this answer is now {emoji}.",
}
"""The acknowledgement for each result of `feedback.lua` (same, new, changed)."""


def feedback_block(deployment: str) -> dict[str, Any]:
    """The 👍/👎 block for an answer of `deployment`."""

    def button(vote: Vote, label: str) -> dict[str, Any]:
        return {
            "text": {"type": "plain_text", "text": EMOJI[vote]},
            "value": f"{vote}:{deployment}"[:2000],
            "accessibility_label": label,
        }

    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ACTION_ID,
                "positive_button": button("up", "This answer was helpful"),
                "negative_button": button("down", "This answer was not helpful"),
            }
        ],
    }


def with_feedback(message: SlackMessage, deployment: str) -> SlackMessage:
    """The answer's last message with the 👍/👎 block after its usage line."""
    return replace(message, blocks=[*message.blocks, feedback_block(deployment)])


@dataclass(frozen=True, slots=True)
class Click:
    """One person's vote on one answer, as a `block_actions` payload tells it."""

    team: str
    channel: str
    answer_ts: str
    thread_ts: str | None
    user: str
    vote: Vote
    deployment: str

    @classmethod
    def from_payload(cls, body: Mapping[str, Any]) -> Click | None:
        """None when the payload is not a vote the bot can record."""
        actions = body.get("actions") or [{}]
        action = actions[0] if isinstance(actions[0], dict) else {}
        value = str(action.get("value") or "")
        vote, _, deployment = value.partition(":")
        container = body.get("container") or {}
        message = body.get("message") or {}
        team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        answer_ts = container.get("message_ts") or message.get("ts")
        user = (body.get("user") or {}).get("id")
        if vote not in EMOJI or not (team and channel and answer_ts and user):
            return None
        thread_ts = container.get("thread_ts") or message.get("thread_ts")
        return cls(
            str(team),
            str(channel),
            str(answer_ts),
            str(thread_ts) if thread_ts else None,
            str(user),
            "up" if vote == "up" else "down",
            deployment,
        )


def day_of(ts: str, fallback: dt.date) -> dt.date:
    """The UTC day of a Slack ts (epoch seconds with microseconds)."""
    try:
        return dt.datetime.fromtimestamp(float(ts), dt.UTC).date()
    except (ValueError, OverflowError, OSError):
        return fallback


@dataclass
class FeedbackReport:
    """Votes over a period, per deployment: deployment → Counter(up=n, down=m)."""

    channel: dict[str, Counter[str]] = field(default_factory=dict)
    workspace: dict[str, Counter[str]] = field(default_factory=dict)


class FeedbackStore:
    """Records votes and sums them; every I/O object is injected."""

    def __init__(
        self, redis: Redis, keys: Keys, *, now: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.now = now

    async def record(self, click: Click) -> int:
        """0: the same vote again, 1: a new vote, 2: a changed vote (see `feedback.lua`)."""
        day = day_of(click.answer_ts, self.now().date())
        with redis_unavailable():
            result = await _VOTE.run(
                self.redis,
                [self.keys.feedback_day(click.team, day)],
                [
                    f"v:{click.channel}:{click.answer_ts}:{click.user}",
                    click.vote,
                    f"n:{click.channel}:{click.deployment}:",
                    RETENTION_SECONDS,
                ],
            )
        return int(result)

    async def report(self, team: str, channel: str, days: int) -> FeedbackReport:
        """The votes on answers of the last `days` days (today included), here and everywhere."""
        today = self.now().date()
        with redis_unavailable():
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in range(days):
                    pipe.hgetall(self.keys.feedback_day(team, today - dt.timedelta(days=i)))
                raws: list[Mapping[str, str]] = await pipe.execute()
        report = FeedbackReport()
        for raw in raws:
            for name, count in raw.items():
                if not name.startswith("n:"):
                    continue
                where, _, rest = name[2:].partition(":")
                deployment, _, vote = rest.rpartition(":")
                n = int(count or 0)
                report.workspace.setdefault(deployment, Counter())[vote] += n
                if where == channel:
                    report.channel.setdefault(deployment, Counter())[vote] += n
        return report


def feedback_lines(report: FeedbackReport) -> list[str]:
    """`/gpt usage` lines: `👍 n · 👎 m` per deployment, here and in the workspace."""

    def votes(by_deployment: dict[str, Counter[str]]) -> str:
        return ", ".join(
            f"`{name or '?'}` 👍 {c['up']:,} · 👎 {c['down']:,}"
            for name, c in sorted(by_deployment.items())
            if c["up"] or c["down"]
        )

    here, everywhere = votes(report.channel), votes(report.workspace)
    if not everywhere:
        return ["• feedback on answers: none yet"]
    lines = [f"• feedback here: {here}"] if here else []
    return [*lines, f"• feedback in the workspace: {everywhere}"]


class Feedback:
    """The Bolt listener for clicks on the buttons."""

    def __init__(self, store: FeedbackStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    def register(self, app: AsyncApp) -> None:
        @app.action(ACTION_ID)
        async def on_click(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()  # within Slack's 3 seconds; the vote is recorded after
            await self.click(body, client)

    async def click(self, body: Mapping[str, Any], client: AsyncWebClient) -> None:
        """Record the vote and tell the voter (only them) that it counted."""
        click = Click.from_payload(body)
        if click is None:
            log.warning("feedback click without a vote or a place: %s", body.get("actions"))
            return
        try:
            result = await self.store.record(click)
        except StoreUnavailable as exc:
            log.error("could not record feedback (%s)", exc)
            await self._tell(client, click, "Sorry, I could not record your vote right now.")
            return
        if result:
            self.metrics.feedback.labels(click.vote).inc()
        await self._tell(client, click, THANKS[result].format(emoji=EMOJI[click.vote]))

    async def _tell(self, client: AsyncWebClient, click: Click, text: str) -> None:
        try:
            await client.chat_postEphemeral(
                channel=click.channel, user=click.user, text=text, thread_ts=click.thread_ts
            )
        except SlackApiError as exc:
            log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))
