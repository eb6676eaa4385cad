"""Prometheus metrics, on a registry of the bot's own (so tests and two apps in one process do not
collide). `Metrics` also serves as the Azure client's observer.

A fresh replica's first scrape already has every series the bot knows in advance: each labelled
counter at 0 for every label value it can take (`KNOWN_LABELS`), the phase histogram for every
phase, and the process and runtime metrics (CPU, resident memory, open file descriptors, GC), so
dashboards show the replica at once and `rate()` has a starting point instead of missing the
first increment.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from bot.chat_types import Usage
from bot.outcome import Outcome
from bot.retry import RETRYABLE_STATUSES

PHASES = ("ack", "queue_wait", "azure_first_token", "azure_total", "slack_post")
"""The parts of a turn's latency (`slackgpt_turn_phase_seconds`): Slack's request until its ack;
the wait for the thread's lock (turns before it, plus reading the history); Azure's first streamed
token and its whole answer (retries included); posting the answer to Slack."""

KNOWN_LABELS: dict[str, tuple[str, ...]] = {
    # by `Metrics` attribute: slackgpt_turns, slackgpt_azure_latency_seconds, slackgpt_tokens
    "turns": tuple(outcome.value for outcome in Outcome),
    "azure_latency": ("ok", "error"),
    "tokens": ("prompt", "completion", "total"),
    # `bot.azure_http`: the status of a retried answer, a transport failure, the second key after
    # a 401; `bot.azure_openai`: the parameters a reasoning deployment takes.
    "retries": (
        *(str(status) for status in sorted(RETRYABLE_STATUSES)),
        "timeout",
        "connection",
        "secondary_key",
        "reasoning_params",
    ),
    "dedup_hits": ("message", "event"),
    "feedback": ("up", "down"),
    "recorded": ("record", "edit", "delete", "delete_answer"),
    # Slack's X-Slack-Retry-Reason values; "unknown" when a retry carries none.
    "slack_retries": (
        "http_timeout",
        "too_many_redirects",
        "connection_failed",
        "ssl_error",
        "http_error",
        "unknown_error",
        "unknown",
    ),
    "phases": PHASES,
}


class Metrics:
    """Counters and histograms named `slackgpt_*`; `render()` gives the text exposition format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        if GC_COLLECTOR is not None:  # CPython only
            GCCollector(registry=self.registry)
        self.turns = self._counter(
            "slackgpt_turns", "Turns by outcome (ok or the error class)", "outcome"
        )
        self.azure_latency = Histogram(
            "slackgpt_azure_latency_seconds",
            "Azure OpenAI call duration, retries included",
            ["outcome"],
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.tokens = self._counter("slackgpt_tokens", "Tokens used, from Azure's usage", "kind")
        self.retries = self._counter(
            "slackgpt_azure_retries", "Azure calls retried, by reason", "reason"
        )
        self.dedup_hits = self._counter(
            "slackgpt_dedup_hits", "Events skipped as already handled", "kind"
        )
        self.recorded = self._counter(
            "slackgpt_recorded",
            "Thread messages recorded, edited or deleted from Slack's message events",
            "action",
        )
        self.takeovers = self._counter(
            "slackgpt_takeovers", "Turns taken over from a replica that stopped renewing its leases"
        )
        self.feedback = self._counter(
            "slackgpt_feedback", "Votes on answers recorded (new or changed), by vote", "vote"
        )
        self.slack_retries = self._counter(
            "slackgpt_slack_redeliveries", "Requests carrying X-Slack-Retry-Num", "reason"
        )
        self.phases = Histogram(
            "slackgpt_turn_phase_seconds",
            "Turn latency by phase: " + ", ".join(PHASES),
            ["phase"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
        )
        self._known_at_zero()
        # The children every turn touches, looked up once (`labels()` validates and locks).
        self._phase = {name: self.phases.labels(name) for name in PHASES}
        self._tokens = tuple(self.tokens.labels(kind) for kind in KNOWN_LABELS["tokens"])
        self._outcomes = {value: self.turns.labels(value) for value in KNOWN_LABELS["turns"]}

    def _counter(self, name: str, documentation: str, label: str | None = None) -> Counter:
        labels = [label] if label else []
        return Counter(name, documentation, labels, registry=self.registry)

    def _known_at_zero(self) -> None:
        """Create every known labelled series now, at 0 (see the module docstring)."""
        for attribute, values in KNOWN_LABELS.items():
            metric: Counter | Histogram = getattr(self, attribute)
            for value in values:
                metric.labels(value)

    def phase(self, name: str, seconds: float) -> None:
        """Observe one phase of a turn (one of `PHASES`)."""
        child = self._phase.get(name)
        (self.phases.labels(name) if child is None else child).observe(seconds)

    def turn(self, outcome: str) -> None:
        """Count one turn by its outcome (an `Outcome` value)."""
        child = self._outcomes.get(outcome)
        (self.turns.labels(outcome) if child is None else child).inc()

    # ClientObserver
    def retried(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def finished(self, seconds: float, outcome: str) -> None:
        self.azure_latency.labels(outcome).observe(seconds)
        self.phase("azure_total", seconds)

    def first_token(self, seconds: float) -> None:
        self.phase("azure_first_token", seconds)

    def used(self, usage: Usage) -> None:
        prompt, completion, total = self._tokens
        prompt.inc(usage.prompt_tokens)
        completion.inc(usage.completion_tokens)
        total.inc(usage.total_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
