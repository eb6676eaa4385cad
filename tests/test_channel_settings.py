"""Channel settings: one declaration per setting, the environment layer, the typed merged view."""

from __future__ import annotations

import pytest
from fakeredis import FakeAsyncRedis

from bot.channel_config import ConfigStore
from bot.channel_settings import (
    KEYS,
    SETTINGS,
    ChannelSettings,
    InvalidSetting,
    environment_layer,
    validate_value,
)
from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from bot.store import Batch, Keys

BASE = {"azure_openai_endpoint": "https://res.openai.azure.com/", "azure_openai_key": "k"}


def env_layer(**settings: object) -> ChannelSettings:
    return environment_layer(load_settings(_env_file=None, **{**BASE, **settings}))


def store(**settings: object) -> ConfigStore:
    return ConfigStore(FakeAsyncRedis(decode_responses=True), Keys("t:"), env_layer(**settings))


@pytest.mark.parametrize("name", KEYS)
def test_channel_settings_each_field_is_a_whole_declaration(name: str) -> None:
    """Every field has a description, an example that validates, and a real env source."""
    setting = SETTINGS[name]
    assert setting.description and setting.example
    validate_value(name, setting.example)
    assert setting.env is None or setting.env.lower() in Settings.model_fields


@pytest.mark.parametrize("name", [k for k in KEYS if SETTINGS[k].env])
def test_environment_layer_reads_each_setting_from_its_variable(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting a field's environment variable changes that field's default, and no other."""
    setting = SETTINGS[name]
    assert setting.env is not None
    before = env_layer()
    monkeypatch.setenv(setting.env, setting.example)
    after = env_layer()
    assert getattr(after, name) == validate_value(name, setting.example)
    assert getattr(after, name) != getattr(before, name)
    changed = {k for k in KEYS if getattr(after, k) != getattr(before, k)}
    assert changed == {name}


def test_environment_layer_sources_follow_the_contract() -> None:
    """The documented variables feed the documented settings; followups and vision have none and
    are on."""
    assert {k: SETTINGS[k].env for k in KEYS} == {
        "system": "BOT_SYSTEM_PROMPT",
        "deployment": "AZURE_OPENAI_DEPLOYMENT",
        "temperature": "BOT_TEMPERATURE",
        "top_p": "BOT_TOP_P",
        "max_tokens": "BOT_MAX_TOKENS",
        "history": "BOT_HISTORY_TURNS",
        "followups": None,
        "quota": "BOT_DAILY_QUOTA",
        "context_window": "BOT_CONTEXT_WINDOW",
        "stream": "BOT_STREAM",
        "reasoning_effort": "BOT_REASONING_EFFORT",
        "vision": None,
    }
    layer = env_layer()
    assert layer.followups is True and layer.vision is True
    assert layer.reasoning_effort is None and layer.temperature is None


def test_environment_layer_out_of_range_names_the_variable() -> None:
    """A default outside a setting's range fails at start with the variable's name."""
    with pytest.raises(ConfigError, match="BOT_DAILY_QUOTA: Input should be less than"):
        env_layer(bot_daily_quota=2_000_000_000)


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("temperature", "0", 0.0),
        ("temperature", "2", 2.0),
        ("top_p", "1", 1.0),
        ("followups", "OFF", False),
        ("stream", "on", True),
        ("quota", "0", 0),
        ("deployment", "my-gpt4o_2.1", "my-gpt4o_2.1"),
        ("history", "100", 100),
        ("reasoning_effort", "minimal", "minimal"),
        ("reasoning_effort", " High ", "high"),
    ],
)
def test_validate_accepts_the_documented_ranges(key: str, raw: str, value: object) -> None:
    """Edges of each range are accepted and typed."""
    assert validate_value(key, raw) == value


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("temperature", "2.01", "less than or equal to 2. Expected 0 to 2"),
        ("top_p", "1.5", "Expected 0 to 1"),
        ("max_tokens", "0", "greater than or equal to 1"),
        ("context_window", "100", "Expected 256 to 2,000,000"),
        ("system", "x" * 4001, "at most 4000 characters"),
        ("system", "   ", "at least 1 character"),
        ("deployment", "../etc", "Expected Azure deployment name"),
        ("followups", "maybe", "use on or off"),
        ("reasoning_effort", "max", "Expected minimal, low, medium or high"),
        ("nope", "1", "Unknown key `nope`"),
    ],
)
def test_validate_rejects_with_the_valid_range(key: str, raw: str, expected: str) -> None:
    """Invalid values raise InvalidSetting naming the key, the reason and the valid form."""
    with pytest.raises(InvalidSetting) as info:
        validate_value(key, raw)
    assert expected in str(info.value)
    if key in SETTINGS:
        assert str(info.value).startswith(f"`{key}`: ")
        assert f"e.g. `set {key} " in str(info.value)


def test_turn_settings_carry_every_model_option() -> None:
    """A turn gets the deployment, sampling, budget and reasoning effort of its settings."""
    layer = env_layer(
        azure_openai_deployment="o4-mini",
        bot_temperature="0.3",
        bot_top_p="0.8",
        bot_max_tokens=900,
        bot_reasoning_effort="medium",
        bot_system_prompt="Be brief.",
        bot_history_turns=4,
    )
    turn = layer.turn_settings()
    assert (turn.system_prompt, turn.history_turns, turn.context_window) == ("Be brief.", 4, 16_000)
    options = turn.options
    assert (options.deployment, options.temperature, options.top_p) == ("o4-mini", 0.3, 0.8)
    assert (options.max_tokens, options.reasoning_effort) == (900, "medium")


def test_turn_settings_cap_the_answer_below_the_context_window() -> None:
    """max_tokens never leaves the prompt less than 256 tokens of the context window."""
    turn = env_layer(bot_max_tokens=4000, bot_context_window=1000).turn_settings()
    assert turn.options.max_tokens == 744


async def test_config_store_precedence_in_one_read() -> None:
    """Channel over workspace over environment; teams do not see each other's settings."""
    config = store()
    await config.set("T1", None, "history", 5)
    await config.set("T1", None, "temperature", 0.9)
    await config.set("T1", "C1", "temperature", 0.3)
    eff = await config.effective("T1", "C1")
    assert (eff.settings.temperature, eff.settings.history, eff.settings.quota) == (0.3, 5, 0)
    assert (eff.sources["temperature"], eff.sources["history"]) == ("channel", "workspace")
    assert eff.sources["quota"] == "environment"
    other = await config.effective("T2", "C1")
    assert other.settings == config.environment
    assert set(other.sources.values()) == {"environment"}
    assert set(other.sources) == set(KEYS)


async def test_config_store_typed_values_round_trip() -> None:
    """Stored values come back with their types: switches as bool, numbers as numbers."""
    config = store()
    for key, raw in (("followups", "off"), ("stream", "no"), ("quota", "7"), ("top_p", "1")):
        await config.set("T1", "C1", key, validate_value(key, raw))
    await config.set("T1", "C1", "reasoning_effort", validate_value("reasoning_effort", "High"))
    s = (await config.effective("T1", "C1")).settings
    assert (s.followups, s.stream, s.quota, s.top_p) == (False, False, 7, 1.0)
    assert isinstance(s.top_p, float) and s.reasoning_effort == "high"
    assert s.turn_settings().options.reasoning_effort == "high"


async def test_config_store_ignores_values_no_longer_valid() -> None:
    """A stored value that is unknown, not JSON or out of range falls back to the next layer."""
    config = store()
    redis = config.redis
    await redis.hset(config.keys.workspace_settings("T1"), mapping={"history": "7", "colour": "1"})
    await redis.hset(
        config.keys.channel_settings("T1", "C1"),
        mapping={"history": "1000", "temperature": "not json", "quota": "3"},
    )
    eff = await config.effective("T1", "C1")
    assert (eff.settings.history, eff.sources["history"]) == (7, "workspace")
    assert (eff.settings.temperature, eff.sources["temperature"]) == (None, "environment")
    assert (eff.settings.quota, eff.sources["quota"]) == (3, "channel")


async def test_config_store_unset_and_reset_return_what_they_removed() -> None:
    """unset returns the old value; reset drops every channel override, not the workspace's."""
    config = store()
    await config.set("T1", None, "quota", 100)
    await config.set("T1", "C1", "quota", 5)
    await config.set("T1", "C1", "system", "Hi ✅")
    assert await config.unset("T1", "C1", "quota") == 5
    assert await config.unset("T1", "C1", "quota") is None
    assert await config.reset("T1", "C1") == {"system": "Hi ✅"}
    eff = await config.effective("T1", "C1")
    assert (eff.settings.quota, eff.sources["quota"]) == (100, "workspace")
    assert eff.sources["system"] == "environment"


async def test_config_store_reuses_settings_until_another_process_changes_them() -> None:
    """A process reads a channel's hashes once, then only the workspace's version; a change made
    by another process (another replica) bumps it and is read on the next turn."""
    redis = FakeAsyncRedis(decode_responses=True)
    mine, theirs = ConfigStore(redis, Keys(), env_layer()), ConfigStore(redis, Keys(), env_layer())

    async def read(store: ConfigStore) -> tuple[ChannelSettings | None, int]:
        batch = Batch(redis)
        effective = store.queue_read(batch, "T1", "C1")
        commands = len(batch.pipe)
        await batch.run()
        value = effective.value
        return (value.settings if value else None), commands

    first, commands = await read(mine)
    assert first is not None and first.temperature is None and commands == 3
    again, commands = await read(mine)
    assert again == first and commands == 1  # the version only
    await theirs.set("T1", "C1", "temperature", 0.3)
    stale, _ = await read(mine)
    assert stale is None  # changed elsewhere: the caller reads it again
    fresh = await mine.effective("T1", "C1")
    assert fresh.settings.temperature == 0.3
    reused, commands = await read(mine)
    assert reused is not None and reused.temperature == 0.3 and commands == 1
