"""The slash command and the settings modal, without Slack: parsing, texts, changes and the log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fakeredis import FakeAsyncRedis
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import AdminCheck
from bot.channel_config import ConfigStore
from bot.channel_settings import KEYS, SETTINGS, environment_layer
from bot.command_input import parse
from bot.commands import Commands
from bot.settings import load_settings
from bot.settings_modal import MODAL_ID, SettingsModal, read_submission, settings_view
from bot.store import Keys

ADMIN = "UADMIN001"
CLIENT = AsyncWebClient(token="xoxb-unused")
"""Never called: with an admin list, the admin check needs no users.info."""


class NoUsage:
    """A ledger for tests that never ask for usage."""

    async def report(self, team: str, channel: str, days: int) -> Any:
        raise AssertionError("not expected")


@pytest.fixture
def config() -> ConfigStore:
    settings = load_settings(
        _env_file=None, azure_openai_endpoint="https://r.openai.azure.com", azure_openai_key="k"
    )
    return ConfigStore(
        FakeAsyncRedis(decode_responses=True), Keys("t:"), environment_layer(settings)
    )


@pytest.fixture
def commands(config: ConfigStore) -> Commands:
    return Commands(config=config, ledger=NoUsage(), admins=AdminCheck([ADMIN]), command="/gpt")


async def run(commands: Commands, text: str, *, user: str = ADMIN, channel: str = "C1") -> str:
    body = {"team_id": "T1", "channel_id": channel, "user_id": user, "text": text}
    return await commands.handle(body, CLIENT)


@pytest.mark.parametrize(
    ("text", "sub", "key", "value"),
    [
        ("", "help", "", ""),
        ("  SET   Temperature\u00a0 0.2 ", "set", "temperature", "0.2"),
        ('set system "Be brief. Say \\"hi\\"."', "set", "system", 'Be brief. Say \\"hi\\".'),
        ("set system ‘single curly’", "set", "system", "single curly"),
        ("set system line one\nline two 🎉", "set", "system", "line one\nline two 🎉"),
        ("set context-window 8000", "set", "context_window", "8000"),
        ("set Reasoning-Effort high", "set", "reasoning_effort", "high"),
        ("usage 7d", "usage", "7d", ""),
        ('set system "unbalanced', "set", "system", '"unbalanced'),
    ],
)
def test_parse_keeps_values_verbatim(text: str, sub: str, key: str, value: str) -> None:
    """Extra and unicode spaces, quotes, newlines and emoji parse as a user means them."""
    p = parse(text)
    assert (p.sub, p.key, p.value) == (sub, key, value)


def test_help_lists_every_setting_with_its_description_and_example(commands: Commands) -> None:
    """Each declared setting has its line in `/gpt help`, in declaration order."""
    text = commands.help_text()
    for setting in SETTINGS.values():
        line = f"• `{setting.name}` – {setting.description}. e.g. `/gpt {setting.usage}`"
        assert line in text.splitlines()
    positions = [text.index(f"• `{name}` –") for name in KEYS]
    assert positions == sorted(positions)
    assert "reasoning deployments (o-series, gpt-5) only" in text


async def test_show_lists_every_setting_with_its_value_and_source(commands: Commands) -> None:
    """`/gpt show` has one line per declared setting: value (on/off for switches) and source."""
    await run(commands, "set followups off")
    await run(commands, "set-default history 4")
    await run(commands, "set-default reasoning_effort low")
    lines = (await run(commands, "show", user="UANYONE")).splitlines()
    assert lines[0] == "*Settings in <#C1>*"
    assert [line.split("`")[1] for line in lines[1:]] == list(KEYS)
    assert "• `followups` = off  _(channel)_" in lines
    assert "• `history` = 4  _(workspace)_" in lines
    assert "• `reasoning_effort` = low  _(workspace)_" in lines
    assert "• `temperature` = (model default)  _(environment)_" in lines


async def test_commands_every_change_is_logged(
    commands: Commands, caplog: pytest.LogCaptureFixture
) -> None:
    """set, set-default, unset and reset each leave one line: who, where, key, old and new."""
    caplog.set_level(logging.INFO, logger="bot.config")
    replies = [
        await run(commands, "set quota 5"),
        await run(commands, "set-default stream off"),
        await run(commands, "unset quota"),
        await run(commands, "set history 3"),
        await run(commands, "reset"),
    ]
    assert replies == [
        "Set `quota` for this channel: (model default) → 5.",
        "Set `stream` for the workspace default: (model default) → off.",
        "`quota` is no longer set for this channel (was 5).",
        "Set `history` for this channel: (model default) → 3.",
        "This channel now uses the workspace defaults. Removed: history.",
    ]
    prefix = f"settings change team=T1 user={ADMIN}"
    assert [r.getMessage() for r in caplog.records] == [
        f"{prefix} scope=C1 key=quota old='(model default)' new='5'",
        f"{prefix} scope=workspace key=stream old='(model default)' new='off'",
        f"{prefix} scope=C1 key=quota old='5' new='(model default)'",
        f"{prefix} scope=C1 key=history old='(model default)' new='3'",
        f"{prefix} scope=C1 key=* old=\"{{'history': 3}}\" new='(model default)'",
    ]


async def test_commands_refused_or_invalid_change_changes_nothing(
    commands: Commands, config: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-admin, an unknown key, a missing or an invalid value store and log nothing."""
    caplog.set_level(logging.INFO, logger="bot.config")
    replies = [
        await run(commands, "set quota 5", user="UOTHER"),
        await run(commands, "set colour blue"),
        await run(commands, "set max_tokens"),
        await run(commands, "set max_tokens lots"),
    ]
    assert replies[0].startswith("Only the bot's admins (<@UADMIN001>) can change settings.")
    assert replies[1].startswith("Unknown key `colour`. Keys: `system`, `deployment`")
    assert replies[2] == (
        "Give a value: `/gpt set max_tokens 800` "
        "(1 up to the context window; longest answer in tokens)."
    )
    assert replies[3].startswith("Nothing changed. `max_tokens`: Input should be a valid integer")
    assert set((await config.effective("T1", "C1")).sources.values()) == {"environment"}
    assert caplog.records == []


async def test_modal_has_one_input_per_setting(config: ConfigStore) -> None:
    """The form's inputs are the declared settings: hint = description, channel value prefilled."""
    await config.set("T1", "C1", "stream", False)
    view = settings_view(await config.effective("T1", "C1"), "C1")
    assert view["callback_id"] == MODAL_ID
    assert json.loads(view["private_metadata"]) == {"channel": "C1"}
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert list(blocks) == list(KEYS)
    for name, block in blocks.items():
        assert block["hint"]["text"] == SETTINGS[name].description[:150]
        assert block["element"]["multiline"] is (name == "system")
    assert blocks["stream"]["element"]["initial_value"] == "off"
    assert "initial_value" not in blocks["quota"]["element"]
    assert blocks["quota"]["element"]["placeholder"]["text"] == "inherit: 0"


def submission(values: dict[str, str], channel: str = "C1") -> dict[str, Any]:
    state = {k: {"value": {"type": "plain_text_input", "value": v}} for k, v in values.items()}
    return {
        "team": {"id": "T1"},
        "user": {"id": ADMIN},
        "view": {"private_metadata": json.dumps({"channel": channel}), "state": {"values": state}},
    }


def test_modal_submission_is_validated_per_input() -> None:
    """Each filled input is validated by its setting; blank ones are skipped."""
    view = submission({"temperature": "9", "quota": "12", "system": "  ", "stream": "off"})["view"]
    values, errors = read_submission(view)
    assert values == {"quota": 12, "stream": False}
    assert list(errors) == ["temperature"]
    assert errors["temperature"].startswith("`temperature`: Input should be less than or equal")


async def test_modal_saves_all_or_nothing_and_logs_each_change(
    config: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid input saves nothing; a valid form sets its values and clears emptied ones."""
    caplog.set_level(logging.INFO, logger="bot.config")
    modal = SettingsModal(config=config, admins=AdminCheck([ADMIN]), command="/gpt")
    await config.set("T1", "C1", "history", 3)
    errors = await modal.submit(submission({"quota": "9", "top_p": "2"}), CLIENT)
    assert list(errors) == ["top_p"]
    assert (await config.effective("T1", "C1")).sources["quota"] == "environment"
    form = {"quota": "9", "stream": "off", "reasoning_effort": "high"}
    assert await modal.submit(submission(form), CLIENT) == {}
    eff = await config.effective("T1", "C1")
    assert (eff.settings.quota, eff.settings.stream, eff.settings.reasoning_effort) == (
        9,
        False,
        "high",
    )
    assert eff.sources["history"] == "environment"
    logged = sorted(r.getMessage().split(" key=")[1].split(" ")[0] for r in caplog.records)
    assert logged == ["history", "quota", "reasoning_effort", "stream"]

    # Saved again untouched (the form shows the channel's values): nothing is written, so the
    # workspace's settings version, which every replica's cache follows, does not move.
    version = await config.redis.get(config.keys.settings_version("T1"))
    assert await modal.submit(submission(form), CLIENT) == {}
    assert await config.redis.get(config.keys.settings_version("T1")) == version


async def test_modal_refuses_non_admins_and_lost_channels(config: ConfigStore) -> None:
    """A non-admin's or channel-less submission is answered with an error and stores nothing."""
    modal = SettingsModal(config=config, admins=AdminCheck([ADMIN]), command="/gpt")
    body = submission({"quota": "9"})
    body["user"] = {"id": "UOTHER"}
    assert "Only the bot's admins" in (await modal.submit(body, CLIENT))["system"]
    lost = await modal.submit(submission({"quota": "9"}, channel=""), CLIENT)
    assert "lost its channel" in lost["system"]
    assert (await config.effective("T1", "C1")).sources["quota"] == "environment"
