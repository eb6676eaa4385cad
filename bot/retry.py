"""When to retry an Azure OpenAI call, and how long to wait first.

The rules are openai-python's, the SDK Azure's documentation uses: retry 408, 429, 5xx and
connection/read errors; never any other 4xx (content_filter, context_length_exceeded, 401, 403 and
404 answer the same every time). The server's own delay wins (`retry-after-ms`, then
`retry-after` in seconds or as an HTTP date, then the "retry after N seconds" text, since Azure
has sent 429s with neither header); otherwise jittered exponential backoff (0.5 s doubling,
capped). Attempts and the total wait are both bounded, because a Slack user is watching: a turn
that would wait a minute for quota is better told "rate limited" now.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def server_delay(
    headers: Mapping[str, str], body_text: str = "", *, now: Callable[[], float] = time.time
) -> float | None:
    """The delay the server asked for, in seconds, or None when it did not say."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - now())
    match = _RETRY_TEXT.search(body_text)
    if match:
        return float(match.group(1))
    return None


@dataclass
class RetryPolicy:
    """Bounded, jittered retries. `delay_for` returns None when the caller should give up."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_server_delay: float = 20.0
    """A server asking for longer than this is not worth waiting for inside a Slack turn."""
    max_total_wait: float = 30.0
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, retries_done: int) -> float:
        """openai-python's schedule: min(0.5 * 2**n, cap) minus up to 25 % jitter."""
        return min(self.base_delay * 2.0**retries_done, self.max_delay) * (1 - 0.25 * self.rand())

    def delay_for(self, retries_done: int, waited: float, asked: float | None) -> float | None:
        """Seconds to sleep before retry number `retries_done + 1`, or None to stop."""
        if retries_done >= self.max_retries:
            return None
        if asked is not None:
            if asked > self.max_server_delay:
                return None
            delay = asked
        else:
            delay = self.backoff(retries_done)
        if waited + delay > self.max_total_wait:
            return None
        return delay
