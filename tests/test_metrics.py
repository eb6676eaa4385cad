"""/metrics from the first second: every known series at 0, process and runtime metrics, and the
turn latency by phase once turns run."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bot.metrics import KNOWN_LABELS, PHASES, Metrics
from bot.outcome import Outcome
from fakes.azure import FakeAzure
from fakes.slack import FakeSlack
from fakes.slack_requests import mention
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    turns,
    wait_for_turns,
    wait_until,
)

RUNTIME = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "python_gc_objects_collected_total",
    "python_info",
)


def samples(text: str, name: str) -> dict[str, float]:
    """One metric's samples by their single label's value."""
    found = re.findall(rf'^{name}\{{\w+="([^"]*)"\}} (\S+)$', text, flags=re.MULTILINE)
    return {label: float(value) for label, value in found}


def test_metrics_new_registry_has_every_known_series_at_zero() -> None:
    """Before any turn: each outcome, dedup kind, token kind, retry reason, recorded action,
    redelivery reason and phase is a series at 0, beside the process and GC metrics."""
    text = Metrics().render().decode()
    turns_ = samples(text, "slackgpt_turns_total")
    assert turns_ == {outcome.value: 0.0 for outcome in Outcome}
    for name, attribute in [
        ("slackgpt_tokens_total", "tokens"),
        ("slackgpt_azure_retries_total", "retries"),
        ("slackgpt_dedup_hits_total", "dedup_hits"),
        ("slackgpt_recorded_total", "recorded"),
        ("slackgpt_slack_redeliveries_total", "slack_retries"),
        ("slackgpt_turn_phase_seconds_count", "phases"),
        ("slackgpt_azure_latency_seconds_count", "azure_latency"),
    ]:
        assert samples(text, name) == dict.fromkeys(KNOWN_LABELS[attribute], 0.0), name
    for name in RUNTIME:
        assert re.search(rf"^{name}(\{{[^}}]*\}})? ", text, flags=re.MULTILINE), name


@pytest.fixture
def fresh_bot(azure: FakeAzure, slack: FakeSlack) -> Iterator[BotProcess]:
    bot = BotProcess(bot_env(azure, slack, None)).wait_ready()
    yield bot
    bot.stop()


def test_metrics_fresh_replica_scrape_then_phases_of_a_streamed_turn(
    fresh_bot: BotProcess, slack: FakeSlack
) -> None:
    """A new replica's first scrape has the known series and its CPU and memory; one streamed
    turn then shows in each of the five phases."""
    first = fresh_bot.http.get("/metrics").text
    assert samples(first, "slackgpt_turns_total")["ok"] == 0.0
    assert float(re.search(r"^process_resident_memory_bytes (\S+)$", first, re.M).group(1)) > 0  # type: ignore[union-attr]
    before = turns(fresh_bot)
    event = mention("how long did this take?", channel="CMET1")
    fresh_bot.send_event(event)
    final_thread(slack, "CMET1", event["ts"])
    wait_for_turns(fresh_bot, before, ok=1)

    def phases() -> dict[str, float] | None:
        counts = samples(fresh_bot.http.get("/metrics").text, "slackgpt_turn_phase_seconds_count")
        return counts if all(counts[p] >= 1 for p in PHASES) else None

    counts = wait_until(phases)
    assert set(counts) == set(PHASES)
