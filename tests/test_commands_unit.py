"""The slash command without Slack: parsing, the help and show texts, changes and their log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fakeredis import FakeAsyncRedis
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel_config import ConfigStore
from bot.channel_settings import KEYS, SETTINGS, environment_layer
from bot.commands import AdminCheck, Commands, parse
from bot.settings import load_settings
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


async def test_show_lists_every_setting_with_its_value_and_source(commands: Commands) -> None:
    """`/gpt show` has one line per declared setting: value (on/off for switches) and source."""
    await run(commands, "set followups off")
    await run(commands, "set-default history 4")
    lines = (await run(commands, "show", user="UANYONE")).splitlines()
    assert lines[0] == "*Settings in <#C1>*"
    assert [line.split("`")[1] for line in lines[1:]] == list(KEYS)
    assert "• `followups` = off  _(channel)_" in lines
    assert "• `history` = 4  _(workspace)_" in lines
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
        f"{prefix} scope=channel:C1 key=* old=\"{{'history': 3}}\" new='(model default)'",
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
