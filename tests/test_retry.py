"""The retry policy: server-directed delays first, bounded jittered backoff otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from bot.retry import RetryPolicy, is_retryable_status, server_delay


def test_server_delay_prefers_retry_after_ms() -> None:
    """`retry-after-ms` wins over `retry-after` (Azure sends both)."""
    assert server_delay({"retry-after-ms": "1500", "retry-after": "2"}) == 1.5


def test_server_delay_reads_seconds_and_http_dates() -> None:
    """`retry-after` may be seconds (even fractional) or an HTTP date."""
    assert server_delay({"Retry-After": "2.5"}) == 2.5
    when = datetime(2030, 1, 1, tzinfo=UTC)
    date = format_datetime(when, usegmt=True)
    assert server_delay({"retry-after": date}, now=lambda: when.timestamp() - 7) == pytest.approx(7)


def test_server_delay_falls_back_to_the_message_text() -> None:
    """Azure has sent 429s without the header but with 'Please retry after N seconds'."""
    assert server_delay({}, "... Please retry after 6 seconds. Please go here") == 6
    assert server_delay({}, "no hint") is None


def test_backoff_doubles_with_bounded_jitter() -> None:
    """0.5 s doubling, capped at 8 s, minus at most 25 % jitter."""
    top = RetryPolicy(rand=lambda: 0.0)
    low = RetryPolicy(rand=lambda: 1.0)
    assert [top.backoff(n) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert [low.backoff(n) for n in range(3)] == [0.375, 0.75, 1.5]


def test_delay_for_stops_after_max_retries_and_total_wait() -> None:
    """Attempts and total wait are both bounded; an over-long server delay is not waited for."""
    policy = RetryPolicy(max_retries=2, max_total_wait=5, max_server_delay=3, rand=lambda: 0.0)
    assert policy.delay_for(0, 0, None) == 0.5
    assert policy.delay_for(2, 0, None) is None
    assert policy.delay_for(0, 4.9, 1.0) is None
    assert policy.delay_for(0, 0, 2.0) == 2.0
    assert policy.delay_for(0, 0, 30.0) is None


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (401, False),
        (404, False),
        (409, False),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    """408, 429 and 5xx are retried; other 4xx never are."""
    assert is_retryable_status(status) is retry
