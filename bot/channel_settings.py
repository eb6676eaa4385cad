"""The settings an admin tunes per channel, each declared once, as one field of `ChannelSettings`.

A field is the whole declaration of a setting: its type and range (validation), a `description`
and one of its `examples` (for `/gpt help`, the modal's hints and the error messages), and
``json_schema_extra={"env": NAME}``, the environment variable its default comes from (read through
the `bot.settings.Settings` attribute of the same name in lower case), or ``"env": None`` when the
field's own default is the default. Everything else is derived from the fields:

- `SETTINGS`: each setting's name, help, example and validator, in declaration order, which is
  the order of `/gpt help`, `/gpt show` and the modal;
- `validate_value`: one value typed by an admin, or an `InvalidSetting` saying the valid range;
- `environment_layer`: the defaults, as a `ChannelSettings`, from the `Settings` object;
- `ChannelSettings.turn_settings`: what a turn sends to Azure.

Adding a setting means adding a field here, and reading its attribute where it acts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from bot.chat_types import ChatOptions
from bot.conversation import TurnSettings
from bot.errors import ConfigError
from bot.settings import ReasoningEffort

if TYPE_CHECKING:
    from bot.settings import Settings

SYSTEM_MAX_CHARS = 4000
ANSWER_HEADROOM = 256
"""Tokens of the context window kept free of the answer's budget, so a prompt always fits."""

_ON = ("on", "yes", "true", "1", "enabled")
_OFF = ("off", "no", "false", "0", "disabled")


def _on_off(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _ON:
            return True
        if word in _OFF:
            return False
        raise ValueError("use on or off")
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


OnOff = Annotated[bool, BeforeValidator(_on_off)]
"""A switch an admin writes as on/off (yes/no, true/false, enabled/disabled also work)."""


class ChannelSettings(BaseModel):
    """The settings in effect for a turn, or one layer of them (the environment's).

    A channel or the workspace stores any subset of these fields (see `bot.channel_config`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    system: str = Field(
        min_length=1,
        max_length=SYSTEM_MAX_CHARS,
        description="system prompt, free text up to 4,000 characters",
        examples=['"You are a terse SRE."'],
        json_schema_extra={"env": "BOT_SYSTEM_PROMPT", "multiline": True},
    )
    deployment: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Azure deployment name (not the model name)",
        examples=["my-gpt4o"],
        json_schema_extra={"env": "AZURE_OPENAI_DEPLOYMENT"},
    )
    temperature: float | None = Field(
        ge=0,
        le=2,
        description="0 to 2; lower is more focused",
        examples=["0.2"],
        json_schema_extra={"env": "BOT_TEMPERATURE"},
    )
    top_p: float | None = Field(
        ge=0,
        le=1,
        description="0 to 1",
        examples=["0.9"],
        json_schema_extra={"env": "BOT_TOP_P"},
    )
    max_tokens: int = Field(
        ge=1,
        le=128_000,
        description="1 up to the context window; longest answer in tokens",
        examples=["800"],
        json_schema_extra={"env": "BOT_MAX_TOKENS"},
    )
    history: int = Field(
        ge=0,
        le=100,
        description="0 to 100; question/answer pairs remembered per thread",
        examples=["10"],
        json_schema_extra={"env": "BOT_HISTORY_TURNS"},
    )
    followups: OnOff = Field(
        default=True,
        description="on/off; answer thread replies that do not mention the bot",
        examples=["off"],
        json_schema_extra={"env": None},
    )
    quota: int = Field(
        ge=0,
        le=1_000_000_000,
        description="daily tokens per user, 0 = unlimited",
        examples=["50000"],
        json_schema_extra={"env": "BOT_DAILY_QUOTA"},
    )
    context_window: int = Field(
        ge=256,
        le=2_000_000,
        description="256 to 2,000,000; the deployment's context size in tokens",
        examples=["128000"],
        json_schema_extra={"env": "BOT_CONTEXT_WINDOW"},
    )
    stream: OnOff = Field(
        description="on/off; show the answer growing while Azure writes it",
        examples=["off"],
        json_schema_extra={"env": "BOT_STREAM"},
    )
    reasoning_effort: Annotated[ReasoningEffort | None, BeforeValidator(_lower)] = Field(
        description=(
            "minimal, low, medium or high; how hard the model thinks, "
            "for reasoning deployments (o-series, gpt-5) only"
        ),
        examples=["low"],
        json_schema_extra={"env": "BOT_REASONING_EFFORT"},
    )
    vision: OnOff = Field(
        default=True,
        description="on/off; send images posted in the thread to the model",
        examples=["off"],
        json_schema_extra={"env": None},
    )

    def turn_settings(self) -> TurnSettings:
        """What a turn sends: the answer's budget is capped to leave room for the prompt."""
        return TurnSettings(
            system_prompt=self.system,
            history_turns=self.history,
            context_window=self.context_window,
            options=ChatOptions(
                deployment=self.deployment,
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=min(self.max_tokens, max(1, self.context_window - ANSWER_HEADROOM)),
                reasoning_effort=self.reasoning_effort,
            ),
        )


class InvalidSetting(ValueError):
    """A value that does not validate; the message says the valid range or form."""


@dataclass(frozen=True, slots=True)
class ChannelSetting:
    """One field of `ChannelSettings` as the command, the modal and the stores use it."""

    name: str
    description: str
    example: str
    """A value, as an admin would type it after `set <name>`."""
    env: str | None
    """The environment variable of the default (None: the field's own default)."""
    multiline: bool
    adapter: TypeAdapter[Any]

    @property
    def usage(self) -> str:
        return f"set {self.name} {self.example}"

    def validate(self, raw: object) -> Any:
        """The typed value of `raw` (text typed by an admin, or a stored JSON value)."""
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise InvalidSetting(
                f"`{self.name}`: {reason}. Expected {self.description}, e.g. `{self.usage}`."
            ) from None


def _setting(name: str, info: FieldInfo) -> ChannelSetting:
    extra = info.json_schema_extra
    if not (info.description and info.examples and isinstance(extra, dict) and "env" in extra):
        raise TypeError(f"ChannelSettings.{name} needs a description, an example and an env")
    env = extra["env"]
    # The field alone (its type, range and validators), to validate one value at a time.
    field_type: Any = Annotated[info.annotation, info]
    return ChannelSetting(
        name=name,
        description=info.description,
        example=str(info.examples[0]),
        env=env if isinstance(env, str) else None,
        multiline=extra.get("multiline") is True,
        adapter=TypeAdapter(field_type, config=ConfigDict(str_strip_whitespace=True)),
    )


SETTINGS: Mapping[str, ChannelSetting] = {
    name: _setting(name, info) for name, info in ChannelSettings.model_fields.items()
}
KEYS = tuple(SETTINGS)


def unknown_key(key: str) -> str | None:
    """What to tell someone who named a key that is not a setting; None for a setting."""
    if key in SETTINGS:
        return None
    return f"Unknown key `{key or '(none)'}`. Keys: {', '.join(f'`{k}`' for k in KEYS)}."


def validate_value(key: str, raw: object) -> Any:
    """Parse one `key value` pair; raise InvalidSetting with the range or form on failure."""
    if unknown := unknown_key(key):
        raise InvalidSetting(unknown)
    return SETTINGS[key].validate(raw)


def show_value(value: object) -> str:
    """A value as `/gpt show` and the change log print it: on/off, and long text cut short."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "(model default)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def environment_layer(settings: Settings) -> ChannelSettings:
    """The environment's layer: each setting's default, read from its `Settings` attribute.

    Raises `ConfigError` naming the variable when a value is outside a setting's range.
    """
    values = {s.name: getattr(settings, s.env.lower()) for s in SETTINGS.values() if s.env}
    try:
        return ChannelSettings.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"{SETTINGS[str(err['loc'][0])].env}: {err['msg']}"
            for err in exc.errors()
            if err["loc"]
        ]
        raise ConfigError("Configuration problem:\n  " + "\n  ".join(problems)) from None
