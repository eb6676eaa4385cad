"""The bot's Lua programs (``bot/store/lua/*.lua``) and the one way they are called.

Each file opens with a comment that documents its KEYS and ARGV. Every call is an EVAL with the
script's text, in a pipeline or on its own: the text travels each time, so a Redis that restarted
(and lost its script cache) mid-turn still runs it, where EVALSHA would answer NOSCRIPT. Redis
caches the compiled script by its hash, so sending the text costs bytes, not CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

Arg = str | int | float


class Script:
    """One Lua program, loaded from ``lua/<name>.lua`` next to this module."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[Arg] = ()) -> None:
        """Add the call to `pipe`; its result is the pipeline's next result."""
        pipe.eval(self.source, len(keys), *keys, *args)

    async def run(self, redis: Redis, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        """Call it in a round trip of its own."""
        return await redis.eval(self.source, len(keys), *keys, *args)
