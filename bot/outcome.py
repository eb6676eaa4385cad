"""How a turn ended (`Outcome`) and its one log line (`TurnLog`)."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BotError


class Outcome(enum.StrEnum):
    """How a turn ended; the value is the `outcome` label of the turn metric and log line."""

    OK = "ok"
    DUPLICATE = "duplicate"
    FOLLOWUPS_OFF = "followups_off"
    EMPTY = "empty"
    QUOTA_EXCEEDED = "quota_exceeded"
    SLACK_ERROR = "slack_error"
    STORE_UNAVAILABLE = "store_unavailable"
    INTERNAL_ERROR = "internal_error"
    TAKEN_OVER = "taken_over"
    """This replica paused past its lease; another one answered the turn."""
    # The answer failed with an error of `bot.errors`: the label is its class name.
    CONFIG_ERROR = "ConfigError"
    THREAD_BUSY = "ThreadBusy"
    AZURE_ERROR = "AzureOpenAIError"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    API_VERSION_UNSUPPORTED = "ApiVersionUnsupported"
    CONTENT_FILTERED = "ContentFiltered"
    CONTEXT_TOO_LONG = "ContextTooLong"
    INVALID_REQUEST = "InvalidRequest"
    RATE_LIMITED = "RateLimited"
    AZURE_UNAVAILABLE = "AzureUnavailable"
    STREAM_INTERRUPTED = "StreamInterrupted"

    @classmethod
    def for_error(cls, exc: BotError) -> Outcome:
        """The outcome of an answer that failed with `exc`: its class, or the nearest ancestor
        that has an outcome of its own."""
        for klass in type(exc).__mro__:
            if klass.__name__ == "StoreUnavailable":
                return cls.STORE_UNAVAILABLE
            try:
                return cls(klass.__name__)
            except ValueError:
                continue
        return cls.INTERNAL_ERROR


@dataclass
class TurnLog:
    """Timings and facts of one turn, logged as one `key=value` line."""

    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    _mark: float = 0.0

    def step(self, name: str) -> None:
        """Record the time since the previous step (or the start) as `<name>_ms`."""
        now = time.perf_counter()
        self.fields[f"{name}_ms"] = round((now - (self._mark or self.started)) * 1000, 1)
        self._mark = now

    def line(self) -> str:
        self.fields["total_ms"] = round((time.perf_counter() - self.started) * 1000, 1)
        return " ".join(f"{k}={v}" for k, v in self.fields.items())
