"""One Redis round trip made of several steps, each read back through a typed handle.

A step queues its commands on `Batch.pipe` and returns a `Result[T]` that knows which of the
pipeline's replies are its own and how to read them. After `Batch.run()`, `result.value` is the
step's typed answer; nobody reads a pipeline's replies by position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.errors import redis_unavailable

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
_UNSET: Any = object()


class Result(Generic[T_co]):
    """The answer of one step of a `Batch`, available once the batch has run (read-only, so a
    `Result[X]` is a `Result[X | None]` too)."""

    __slots__ = ("_parse", "_start", "_stop", "_value")

    def __init__(self, start: int, stop: int, parse: Callable[[list[Any]], T_co]) -> None:
        self._start, self._stop, self._parse = start, stop, parse
        self._value: T_co = _UNSET

    @property
    def value(self) -> T_co:
        if self._value is _UNSET:
            raise RuntimeError("the batch holding this step has not run yet")
        return self._value

    def _fill(self, replies: list[Any]) -> None:
        self._value = self._parse(replies[self._start : self._stop])


class Batch:
    """Steps for one pipelined round trip (not a MULTI: each step's own atomicity is its
    script's). `run()` raises `StoreUnavailable` when Redis cannot be reached."""

    def __init__(self, redis: Redis) -> None:
        self.pipe: Pipeline = redis.pipeline(transaction=False)
        self._results: list[Result[Any]] = []
        self._mark = 0

    def step(self, parse: Callable[[list[Any]], T]) -> Result[T]:
        """Close the step whose commands were queued since the previous one; `parse` gets their
        replies, in order."""
        stop = len(self.pipe)
        result = Result(self._mark, stop, parse)
        self._results.append(result)
        self._mark = stop
        return result

    async def run(self) -> None:
        with redis_unavailable():
            replies = await self.pipe.execute()
        for result in self._results:
            result._fill(replies)
