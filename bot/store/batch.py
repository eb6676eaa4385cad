"""One Redis round trip made of several steps, each read back through a typed handle; and the
batches of concurrent turns sent together.

A step queues its commands on `Batch.pipe` and returns a `Result[T]` that knows which of the
pipeline's replies are its own and how to read them. After `Batch.run()`, `result.value` is the
step's typed answer; nobody reads a pipeline's replies by position.

Under load, hundreds of turns each run a batch at about the same moment. Each pipeline costs the
client a fixed price whatever its size (a pooled connection taken and given back, a write, the
reply loop, timeouts), which the benchmark's profile put at about a fifth of the bot's CPU with
1,000 turns in flight. So batches share pipelines when they would otherwise queue (`_Sender`):
up to `MAX_PIPELINES_IN_FLIGHT` go at once, each on its own, so a lone batch waits for nothing;
the batches that come while those are out wait, and when one comes back they go together, up to
`MAX_GROUPED_COMMANDS` commands per pipeline, each batch handed its own replies, in order. The
busier the bot, the longer a round trip takes and the more batches share the next one.
Grouping changes no command's meaning (the pipelines were never MULTI/EXEC; each step's
atomicity is its own script's), and an error in one batch's reply is raised to that batch only.
On Redis Cluster each batch is its own cluster pipeline, as before (the cluster client splits a
pipeline by node itself).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import DataError

from bot.errors import redis_unavailable

UNENCODABLE = (DataError, UnicodeEncodeError)
"""What redis-py raises for a command it cannot encode, before anything is written."""

MAX_GROUPED_COMMANDS = 200
"""Commands per grouped pipeline: bounds one write and the replies one batch may wait behind."""
MAX_PIPELINES_IN_FLIGHT = 4
"""Pipelines sent at once per client before batches wait to go together."""

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
            if isinstance(self.pipe, Pipeline) and not self.pipe.scripts:
                replies = await _sender_of(self.pipe).send(self.pipe.command_stack)
                first_error = next((r for r in replies if isinstance(r, Exception)), None)
                if first_error is not None:
                    raise first_error
            else:  # a cluster pipeline
                replies = await self.pipe.execute()
        for result in self._results:
            result._fill(replies)


Command = tuple[tuple[Any, ...], Mapping[str, Any]]
"""A queued command as redis-py's `Pipeline.command_stack` holds it: (args, options)."""


Waiter = tuple[list[Command], asyncio.Future[list[Any]]]


class _Sender:
    """Sends batches on one client: at once while fewer than `MAX_PIPELINES_IN_FLIGHT` are in
    flight, else together with the others that wait, as one pipeline, when one comes back."""

    def __init__(self, pipeline: Callable[[], Pipeline]) -> None:
        self._pipeline = pipeline
        self._in_flight = 0
        self._waiting: deque[Waiter] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def send(self, commands: list[Command]) -> list[Any]:
        """The replies to `commands` (errors as exception objects)."""
        if self._in_flight < MAX_PIPELINES_IN_FLIGHT and not self._waiting:
            self._in_flight += 1
            try:
                return await self._execute(commands)
            finally:
                self._done()
        replies: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, replies))
        return await replies

    async def _execute(self, commands: list[Command]) -> list[Any]:
        pipe = self._pipeline()
        pipe.command_stack.extend(commands)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    def _done(self) -> None:
        """A pipeline came back: the batches waiting go, as groups of at most
        `MAX_GROUPED_COMMANDS` commands, while there is room in flight."""
        self._in_flight -= 1
        while self._waiting and self._in_flight < MAX_PIPELINES_IN_FLIGHT:
            group: list[Waiter] = []
            size = 0
            while self._waiting and (
                not group or size + len(self._waiting[0][0]) <= MAX_GROUPED_COMMANDS
            ):
                waiter = self._waiting.popleft()
                group.append(waiter)
                size += len(waiter[0])
            self._in_flight += 1
            task = asyncio.ensure_future(self._send_group(group))
            self._running.add(task)
            # A callback, not a `finally`: it runs even for a task cancelled before it started.
            task.add_done_callback(functools.partial(self._group_done, group))

    def _group_done(self, group: list[Waiter], task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if task.cancelled():
            for _, waiter in group:
                waiter.cancel()
        self._done()

    async def _send_group(self, group: list[Waiter]) -> None:
        try:
            replies = await self._execute([c for commands, _ in group for c in commands])
        except UNENCODABLE:
            # Nothing was sent (commands are encoded before the write): each batch goes alone,
            # so only the one that cannot be encoded fails.
            for commands, waiter in group:
                try:
                    alone = await self._execute(commands)
                except Exception as exc:
                    _settle(waiter, exc)
                else:
                    _settle(waiter, alone)
            return
        except Exception as exc:
            for _, waiter in group:
                _settle(waiter, exc)
            return
        start = 0
        for commands, waiter in group:
            stop = start + len(commands)
            _settle(waiter, replies[start:stop])
            start = stop


def _settle(waiter: asyncio.Future[list[Any]], outcome: list[Any] | Exception) -> None:
    """Hand a waiting batch its replies or its error (unless it was cancelled meanwhile; its
    commands ran all the same)."""
    if waiter.done():
        return
    if isinstance(outcome, Exception):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)


_senders: weakref.WeakKeyDictionary[Any, _Sender] = weakref.WeakKeyDictionary()


def _sender_of(pipe: Pipeline) -> _Sender:
    """The sender shared by every batch on the same connection pool (one per Redis client)."""
    pool = pipe.connection_pool
    sender = _senders.get(pool)
    if sender is None:
        # The sender holds its pool weakly: a value that held its key would keep both forever.
        kind, callbacks, held = type(pipe), pipe.response_callbacks, weakref.ref(pool)

        def pipeline() -> Pipeline:
            live = held()
            if live is None:
                raise RuntimeError("the Redis client is gone")  # a store error, like any other
            return kind(live, callbacks, False, None)

        sender = _senders[pool] = _Sender(pipeline)
    return sender
