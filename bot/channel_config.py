"""Per-channel and per-workspace settings: the pydantic model, validation, and the Redis store.

Two Redis hashes per channel (`Keys.workspace_settings`, `Keys.channel_settings`), setting name →
JSON value. A turn reads both hashes in the same pipeline as its dedup claims (see `bot.turns`), so settings
cost no extra round trip. Precedence: channel, then workspace, then the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.asyncio import Redis

from bot.chat_types import ChatOptions
from bot.conversation import TurnSettings
from bot.errors import redis_unavailable
from bot.store import Batch, Keys, Result

SYSTEM_MAX_CHARS = 4000

KEY_HELP: dict[str, tuple[str, str]] = {
    "system": (
        "system prompt, free text up to 4,000 characters",
        'set system "You are a terse SRE."',
    ),
    "deployment": ("Azure deployment name (not the model name)", "set deployment my-gpt4o"),
    "temperature": ("0 to 2; lower is more focused", "set temperature 0.2"),
    "top_p": ("0 to 1", "set top_p 0.9"),
    "max_tokens": ("1 up to the context window; longest answer in tokens", "set max_tokens 800"),
    "history": ("0 to 100; question/answer pairs remembered per thread", "set history 10"),
    "followups": ("on/off; answer thread replies that do not mention the bot", "set followups off"),
    "quota": ("daily tokens per user, 0 = unlimited", "set quota 50000"),
    "context_window": (
        "256 to 2,000,000; the deployment's context size in tokens",
        "set context_window 128000",
    ),
    "stream": ("on/off; show the answer growing while Azure writes it", "set stream off"),
}


class ChannelSettings(BaseModel):
    """The keys an admin may set. Every field is optional: unset means "inherit"."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    system: str | None = Field(default=None, min_length=1, max_length=SYSTEM_MAX_CHARS)
    deployment: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=128_000)
    history: int | None = Field(default=None, ge=0, le=100)
    followups: bool | None = None
    quota: int | None = Field(default=None, ge=0, le=1_000_000_000)
    context_window: int | None = Field(default=None, ge=256, le=2_000_000)
    stream: bool | None = None

    @field_validator("followups", "stream", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("on", "yes", "true", "1", "enabled"):
                return True
            if word in ("off", "no", "false", "0", "disabled"):
                return False
            raise ValueError("use on or off")
        return value


KEYS = tuple(ChannelSettings.model_fields)


class InvalidSetting(ValueError):
    """A value that does not validate; the message says the valid range or form."""


def validate_value(key: str, raw: str) -> Any:
    """Parse one `key value` pair; raise InvalidSetting with the range or form on failure."""
    if key not in KEYS:
        raise InvalidSetting(f"Unknown key `{key}`. Keys: {', '.join(KEYS)}.")
    try:
        model = ChannelSettings.model_validate({key: raw})
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidSetting(
            f"`{key}`: {reason}. Expected {KEY_HELP[key][0]}, e.g. `{KEY_HELP[key][1]}`."
        ) from None
    return getattr(model, key)


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "(model default)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


@dataclass(frozen=True)
class Effective:
    """Each key's value and where it came from: "channel", "workspace" or "environment"."""

    values: dict[str, Any]
    sources: dict[str, str]

    @property
    def settings(self) -> Any:
        # Interim typed-looking view; replaced by the one-declaration settings model.
        from types import SimpleNamespace

        return SimpleNamespace(**self.values)

    def turn_settings(self) -> TurnSettings:
        v = self.values
        window = int(v["context_window"])
        return TurnSettings(
            system_prompt=str(v["system"]),
            history_turns=int(v["history"]),
            context_window=window,
            options=ChatOptions(
                deployment=v["deployment"],
                temperature=v["temperature"],
                top_p=v["top_p"],
                max_tokens=min(int(v["max_tokens"]), max(1, window - 256)),
            ),
        )


def environment_defaults(
    *,
    system: str,
    deployment: str,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int,
    history: int,
    context_window: int,
    stream: bool,
    quota: int = 0,
) -> dict[str, Any]:
    return {
        "system": system,
        "deployment": deployment,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "history": history,
        "followups": True,
        "quota": quota,
        "context_window": context_window,
        "stream": stream,
    }


class ConfigStore:
    """Reads and writes channel/workspace settings in Redis."""

    def __init__(self, redis: Redis, keys: Keys, defaults: Mapping[str, Any]) -> None:
        self.redis = redis
        self.keys = keys
        self.defaults = dict(defaults)

    def workspace_key(self, team: str) -> str:
        return self.keys.workspace_settings(team)

    def channel_key(self, team: str, channel: str) -> str:
        return self.keys.channel_settings(team, channel)

    def queue_read(self, batch: Batch, team: str, channel: str) -> Result[Effective]:
        """Add the reads of the settings in effect in a channel to `batch`."""
        batch.pipe.hgetall(self.channel_key(team, channel))
        batch.pipe.hgetall(self.workspace_key(team))
        return batch.step(lambda replies: self.effective_from(replies[0], replies[1]))

    def effective_from(
        self, channel_raw: Mapping[str, str], team_raw: Mapping[str, str]
    ) -> Effective:
        values = dict(self.defaults)
        sources = dict.fromkeys(values, "environment")
        for scope, raw in (("workspace", team_raw), ("channel", channel_raw)):
            for key, encoded in raw.items():
                if key in values:
                    try:
                        values[key] = json.loads(encoded)
                    except ValueError:
                        continue
                    sources[key] = scope
        return Effective(values, sources)

    async def effective(self, team: str, channel: str) -> Effective:
        batch = Batch(self.redis)
        effective = self.queue_read(batch, team, channel)
        await batch.run()
        return effective.value

    async def set(self, team: str, channel: str | None, key: str, value: Any) -> Any:
        """Store one value (channel when given, else workspace); returns the old stored value."""
        hkey = self.channel_key(team, channel) if channel else self.workspace_key(team)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(hkey, key)
                pipe.hset(hkey, key, json.dumps(value, ensure_ascii=False))
                old, _ = await pipe.execute()
        return json.loads(old) if old is not None else None

    async def unset(self, team: str, channel: str | None, key: str) -> Any:
        hkey = self.channel_key(team, channel) if channel else self.workspace_key(team)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(hkey, key)
                pipe.hdel(hkey, key)
                old, _ = await pipe.execute()
        return json.loads(old) if old is not None else None

    async def reset(self, team: str, channel: str) -> dict[str, Any]:
        """Remove every channel override; returns what was removed."""
        hkey = self.channel_key(team, channel)
        with redis_unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(hkey)
                pipe.delete(hkey)
                old, _ = await pipe.execute()
        return {k: json.loads(v) for k, v in old.items()}
