"""What a use of the slash command says: who, where, and the typed text as subcommand, key
and value.

Parsing keeps free text intact: in `set system <text>` everything after the key is the value, with
newlines, emoji and inner quotes; one pair of surrounding quotes (straight or curly, which Slack
clients produce) is removed. A value may contain the word "payload": Bolt's form parser takes any
body containing that substring for an interactivity payload, which `bot.web` works around.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}


@dataclass(frozen=True)
class Parsed:
    sub: str
    key: str
    value: str


def parse(text: str) -> Parsed:
    """`set  Temperature   0.2` → Parsed("set", "temperature", "0.2"); values keep their text."""
    text = text.strip()
    parts = re.split(r"\s+", text, maxsplit=1)
    sub = parts[0].lower() if parts and parts[0] else "help"
    rest = parts[1] if len(parts) > 1 else ""
    key_rest = re.split(r"\s+", rest.strip(), maxsplit=1) if rest.strip() else [""]
    key = key_rest[0].lower().replace("-", "_")
    value = key_rest[1] if len(key_rest) > 1 else ""
    value = value.strip()
    if len(value) >= 2 and _QUOTES.get(value[0]) == value[-1]:
        value = value[1:-1]
    return Parsed(sub, key, value)


@dataclass(frozen=True)
class Invocation:
    """One use of the command: who, where, and what they typed."""

    team: str
    channel: str
    user: str
    parsed: Parsed
    body: dict[str, Any]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Invocation:
        return cls(
            team=str(body.get("team_id", "")),
            channel=str(body.get("channel_id", "")),
            user=str(body.get("user_id", "")),
            parsed=parse(str(body.get("text", ""))),
            body=body,
        )

    @property
    def scope(self) -> str | None:
        """The channel a change applies to; None for the workspace default (`*-default`)."""
        return None if self.parsed.sub.endswith("default") else self.channel
