"""One Redis round trip made of several steps, each read back through a typed handle; and the
batches of concurrent turns sent together.

A step queues its commands on `Batch.pipe` and returns a `Result[T]` that knows which of the
pipeline's replies are its own and how to read them. After `Batch.run()`, `result.value` is the
step's typed answer; nobody reads a pipeline's replies by position.

Under load, hundreds of turns each run a batch at about the same moment. Each pipeline costs the
client a fixed price whatever its size (a pooled connection taken and given back, a write, the
reply loop, timeouts), which the benchmark's profile put at about a fifth of the bot's CPU with
1,000 turns in flight. So batches run in the same pass of the event loop are sent as one
pipeline (`_Sender`): up to `MAX_GROUPED_COMMANDS` commands on one connection, each batch's
replies handed back to it, in order. Nothing waits to fill a group: the group is sent at the end
of the pass in which its first batch ran, so a lone batch costs one `call_soon` more than before.
Grouping changes no command's meaning (the pipelines were never MULTI/EXEC; each step's atomicity
is its own script's), and an error in one batch's reply is raised to that batch only. On Redis
Cluster each batch is its own cluster pipeline, as before (the cluster client splits a pipeline
by node itself).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.errors import redis_unavailable

MAX_GROUPED_COMMANDS = 200
"""Commands per grouped pipeline: bounds one write and the replies one batch may wait behind."""

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


class _Sender:
    """Sends the batches run on one client in one pass of the event loop as one pipeline."""

    def __init__(self, pipeline: Callable[[], Pipeline]) -> None:
        self._pipeline = pipeline
        self._open: list[tuple[list[Command], asyncio.Future[list[Any]]]] | None = None
        """The group batches join now; its task sends it in the next pass of the loop."""
        self._open_commands = 0
        self._running: set[asyncio.Task[None]] = set()

    def send(self, commands: list[Command]) -> asyncio.Future[list[Any]]:
        """The replies to `commands` (errors as exception objects), once their group has run."""
        loop = asyncio.get_running_loop()
        replies: asyncio.Future[list[Any]] = loop.create_future()
        group = self._open
        if group is None:
            group = self._open = []
            self._open_commands = 0
            task = loop.create_task(self._execute(group))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        group.append((commands, replies))
        self._open_commands += len(commands)
        if self._open_commands >= MAX_GROUPED_COMMANDS:
            self._open = None  # full: the next batch opens a group of its own
        return replies

    async def _execute(self, group: list[tuple[list[Command], asyncio.Future[list[Any]]]]) -> None:
        # A task's first step runs in the next pass of the event loop: the group is complete.
        if self._open is group:
            self._open = None
        pipe = self._pipeline()
        for commands, _ in group:
            pipe.command_stack.extend(commands)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, waiter in group:
                waiter.cancel()
            raise
        except Exception as exc:
            for _, waiter in group:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        start = 0
        for commands, waiter in group:
            stop = start + len(commands)
            if not waiter.done():  # a waiter cancelled meanwhile; its commands ran all the same
                waiter.set_result(replies[start:stop])
            start = stop


_senders: weakref.WeakKeyDictionary[Any, _Sender] = weakref.WeakKeyDictionary()


def _sender_of(pipe: Pipeline) -> _Sender:
    """The sender shared by every batch on the same connection pool (one per Redis client)."""
    pool = pipe.connection_pool
    sender = _senders.get(pool)
    if sender is None:
        kind, callbacks = type(pipe), pipe.response_callbacks
        sender = _senders[pool] = _Sender(lambda: kind(pool, callbacks, False, None))
    return sender
