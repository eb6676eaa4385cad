"""Prometheus metrics, on a registry of the bot's own (so tests and two apps in one process do not
collide). `Metrics` also serves as the Azure client's observer."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from bot.chat_types import Usage


class Metrics:
    """Counters and histograms named `slackgpt_*`; `render()` gives the text exposition format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "slackgpt_turns",
            "Turns by outcome (ok or the error class)",
            ["outcome"],
            registry=self.registry,
        )
        self.azure_latency = Histogram(
            "slackgpt_azure_latency_seconds",
            "Azure OpenAI call duration, retries included",
            ["outcome"],
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.tokens = Counter(
            "slackgpt_tokens", "Tokens used, from Azure's usage", ["kind"], registry=self.registry
        )
        self.retries = Counter(
            "slackgpt_azure_retries",
            "Azure calls retried, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.dedup_hits = Counter(
            "slackgpt_dedup_hits",
            "Events skipped as already handled",
            ["kind"],
            registry=self.registry,
        )
        self.recorded = Counter(
            "slackgpt_recorded",
            "Thread messages recorded, edited or deleted from Slack's message events",
            ["action"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "slackgpt_feedback",
            "Votes on answers recorded (new or changed), by vote",
            ["vote"],
            registry=self.registry,
        )
        self.slack_retries = Counter(
            "slackgpt_slack_redeliveries",
            "Requests carrying X-Slack-Retry-Num",
            ["reason"],
            registry=self.registry,
        )

    # ClientObserver
    def retried(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def finished(self, seconds: float, outcome: str) -> None:
        self.azure_latency.labels(outcome).observe(seconds)

    def used(self, usage: Usage) -> None:
        self.tokens.labels("prompt").inc(usage.prompt_tokens)
        self.tokens.labels("completion").inc(usage.completion_tokens)
        self.tokens.labels("total").inc(usage.total_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
