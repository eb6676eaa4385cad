"""Where each channel's settings come from: the Redis store of overrides, and their merge.

Two Redis hashes (`Keys.workspace_settings`, `Keys.channel_settings`) map a setting's name to its
JSON value. A turn reads both in the same round trip as its dedup claims (`ConfigStore.queue_read`),
so settings cost no extra round trip. Precedence: channel, then workspace, then the environment.
The settings themselves are declared in `bot.channel_settings`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from bot.channel_settings import SETTINGS, ChannelSettings
from bot.conversation import TurnSettings
from bot.errors import redis_unavailable
from bot.store import Batch, Keys, Result

Source = Literal["channel", "workspace", "environment"]


@dataclass(frozen=True, slots=True)
class Effective:
    """The settings in effect in a channel, and where each came from."""

    settings: ChannelSettings
    sources: Mapping[str, Source]
    """Setting name → "channel", "workspace" or "environment"."""

    def turn_settings(self) -> TurnSettings:
        return self.settings.turn_settings()


def _decode(name: str, encoded: str) -> Any:
    """A stored value, validated as if just set; raises ValueError when it no longer is."""
    return SETTINGS[name].validate(json.loads(encoded))


class ConfigStore:
    """Reads and writes channel/workspace settings in Redis over the environment's layer."""

    def __init__(self, redis: Redis, keys: Keys, environment: ChannelSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.environment = environment

    def queue_read(self, batch: Batch, team: str, channel: str) -> Result[Effective]:
        """Add the reads of the settings in effect in a channel to `batch`."""
        batch.pipe.hgetall(self.keys.channel_settings(team, channel))
        batch.pipe.hgetall(self.keys.workspace_settings(team))
        return batch.step(lambda replies: self.effective_from(replies[0], replies[1]))

    def effective_from(
        self, channel_raw: Mapping[str, str], team_raw: Mapping[str, str]
    ) -> Effective:
        """Merge the two stored hashes over the environment. A stored value that is unknown or
        no longer valid (a setting removed or its range narrowed) is ignored."""
        values: dict[str, Any] = {}
        sources: dict[str, Source] = dict.fromkeys(SETTINGS, "environment")
        layers: tuple[tuple[Source, Mapping[str, str]], ...] = (
            ("workspace", team_raw),
            ("channel", channel_raw),
        )
        for scope, raw in layers:
            for name, encoded in raw.items():
                if name not in SETTINGS:
                    continue
                try:
                    values[name] = _decode(name, encoded)
                except ValueError:  # not JSON, or no longer valid (InvalidSetting)
                    continue
                sources[name] = scope
        return Effective(self.environment.model_copy(update=values), sources)

    async def workspace(self, team: str) -> Effective:
        """The settings in effect wherever a channel sets nothing of its own."""
        with redis_unavailable():
            raw: Mapping[str, str] = await self.redis.hgetall(  # type: ignore[assignment]
                self.keys.workspace_settings(team)
            )
        return self.effective_from({}, raw)

    async def effective(self, team: str, channel: str) -> Effective:
        batch = Batch(self.redis)
        effective = self.queue_read(batch, team, channel)
        await batch.run()
        return effective.value

    def _hash(self, team: str, channel: str | None) -> str:
        if channel:
            return self.keys.channel_settings(team, channel)
        return self.keys.workspace_settings(team)

    async def set(self, team: str, channel: str | None, key: str, value: Any) -> Any:
        """Store one validated value (channel when given, else workspace); returns the old one."""
        hkey = self._hash(team, channel)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(hkey, key)
                pipe.hset(hkey, key, json.dumps(value, ensure_ascii=False))
                old, _ = await pipe.execute()
        return json.loads(old) if old is not None else None

    async def unset(self, team: str, channel: str | None, key: str) -> Any:
        """Remove one value (channel when given, else workspace); returns the old one."""
        hkey = self._hash(team, channel)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(hkey, key)
                pipe.hdel(hkey, key)
                old, _ = await pipe.execute()
        return json.loads(old) if old is not None else None

    async def reset(self, team: str, channel: str) -> dict[str, Any]:
        """Remove every channel override; returns what was removed."""
        hkey = self.keys.channel_settings(team, channel)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(hkey)
                pipe.delete(hkey)
                old, _ = await pipe.execute()
        return {k: json.loads(v) for k, v in old.items()}
