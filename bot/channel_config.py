"""Where each channel's settings come from: the Redis store of overrides, and their merge.

Two Redis hashes (`Keys.workspace_settings`, `Keys.channel_settings`) map a setting's name to its
JSON value. Precedence: channel, then workspace, then the environment. The settings themselves are
declared in `bot.channel_settings`.

Settings change rarely and every turn needs them, so each process keeps the merged settings of
the channels it serves, with the workspace's settings version (`Keys.settings_version`, bumped by
every change): a turn reads only that version, in the same round trip as its dedup claims
(`ConfigStore.queue_read`), and the hashes only when the version moved, the channel is new to the
process, or `cache_seconds` passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True, slots=True)
class _Cached:
    effective: Effective
    version: str | None
    until: float


class ConfigStore:
    """Reads and writes channel/workspace settings in Redis over the environment's layer."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        environment: ChannelSettings,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.environment = environment
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[tuple[str, str], _Cached] = {}

    def cached(self, team: str, channel: str) -> Effective | None:
        """The settings this process last read for the channel (possibly stale), or None."""
        hit = self._cache.get((team, channel))
        return hit.effective if hit is not None else None

    def queue_read(self, batch: Batch, team: str, channel: str) -> Result[Effective | None]:
        """Add the read of the settings in effect in a channel to `batch`: the version only
        when this process holds them, else the hashes too. None: they changed since, read them
        with `effective`."""
        hit = self._cache.get((team, channel))
        if hit is None or hit.until <= self.clock():
            return self._queue_full_read(batch, team, channel)
        batch.pipe.get(self.keys.settings_version(team))
        return batch.step(lambda replies: hit.effective if replies[0] == hit.version else None)

    def _queue_full_read(self, batch: Batch, team: str, channel: str) -> Result[Effective]:
        """The version and both hashes, remembered with the version once read."""
        batch.pipe.get(self.keys.settings_version(team))
        batch.pipe.hgetall(self.keys.channel_settings(team, channel))
        batch.pipe.hgetall(self.keys.workspace_settings(team))
        return batch.step(lambda r: self._remember(team, channel, r[0], r[1], r[2]))

    def _remember(
        self,
        team: str,
        channel: str,
        version: str | None,
        channel_raw: Mapping[str, str],
        team_raw: Mapping[str, str],
    ) -> Effective:
        effective = self.effective_from(channel_raw, team_raw)
        if len(self._cache) > 10_000:
            self._cache.clear()
        until = self.clock() + self.cache_seconds
        self._cache[(team, channel)] = _Cached(effective, version, until)
        return effective

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
        """The settings in effect in a channel, read from Redis now."""
        batch = Batch(self.redis)
        effective = self._queue_full_read(batch, team, channel)
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
        await self._changed(team)
        return json.loads(old) if old is not None else None

    async def unset(self, team: str, channel: str | None, key: str) -> Any:
        """Remove one value (channel when given, else workspace); returns the old one."""
        hkey = self._hash(team, channel)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(hkey, key)
                pipe.hdel(hkey, key)
                old, _ = await pipe.execute()
        await self._changed(team)
        return json.loads(old) if old is not None else None

    async def reset(self, team: str, channel: str) -> dict[str, Any]:
        """Remove every channel override; returns what was removed."""
        hkey = self.keys.channel_settings(team, channel)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(hkey)
                pipe.delete(hkey)
                old, _ = await pipe.execute()
        await self._changed(team)
        return {k: json.loads(v) for k, v in old.items()}

    async def _changed(self, team: str) -> None:
        """Tell every process that the workspace's settings moved (a separate command: the
        version key and the hashes are in different Cluster slots)."""
        with redis_unavailable():
            await self.redis.incr(self.keys.settings_version(team))
        for key in [k for k in self._cache if k[0] == team]:
            del self._cache[key]
