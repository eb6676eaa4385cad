"""Slash-command parsing and setting validation, without Slack."""

from __future__ import annotations

import pytest
from fakeredis import FakeAsyncRedis

from bot.channel_config import ConfigStore, InvalidSetting, validate_value
from bot.commands import parse
from bot.store import Keys


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
    assert (lambda p: (p.sub, p.key, p.value))(parse(text)) == (sub, key, value)


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
    ],
)
def test_validate_accepts_the_documented_ranges(key: str, raw: str, value: object) -> None:
    """Edges of each range are accepted and typed."""
    assert validate_value(key, raw) == value


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("temperature", "2.01"),
        ("top_p", "1.5"),
        ("max_tokens", "0"),
        ("context_window", "100"),
        ("system", "x" * 4001),
        ("system", "   "),
        ("deployment", "../etc"),
        ("nope", "1"),
    ],
)
def test_validate_rejects_with_the_expected_form(key: str, raw: str) -> None:
    """Out-of-range values raise InvalidSetting naming the key."""
    with pytest.raises(InvalidSetting, match=key if key != "nope" else "Unknown key"):
        validate_value(key, raw)


async def test_config_store_precedence_in_one_read() -> None:
    """Channel over workspace over environment; teams do not see each other's settings."""
    store = ConfigStore(
        FakeAsyncRedis(decode_responses=True), Keys(), {"temperature": None, "history": 20}
    )
    await store.set("T1", None, "history", 5)
    await store.set("T1", "C1", "temperature", 0.3)
    eff = await store.effective("T1", "C1")
    assert eff.values == {"temperature": 0.3, "history": 5}
    assert eff.sources == {"temperature": "channel", "history": "workspace"}
    other = await store.effective("T2", "C1")
    assert other.sources == {"temperature": "environment", "history": "environment"}
