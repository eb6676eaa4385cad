"""Slack's message markup, made readable for a model (pure functions, no I/O).

Slack's `text` field is "mrkdwn" with angle-bracket tokens: `<@U123>` (a user), `<@U123|alice>`,
`<#C123|general>` (a channel), `<!here>`, `<!subteam^S123|@team>`, `<https://x|label>` and
`<https://x>` (links), `<mailto:a@b|a@b>`; and `&`, `<`, `>` in plain text are escaped as `&amp;`,
`&lt;`, `&gt;` (only those three). A model reads `@Alice`, `#general` and `label (https://x)` far
better than ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"<([^<>]+)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def mentioned_users(text: str) -> set[str]:
    """The user ids mentioned in `text` (`<@U…>` tokens)."""
    return set(_USER.findall(text))


def addressed_to(text: str) -> str | None:
    """The user a message is addressed to: the one it starts by mentioning, if any."""
    match = _USER.match(text.lstrip())
    return match.group(1) if match else None


def readable(text: str, names: Mapping[str, str]) -> str:
    """`text` with Slack's tokens replaced by what a person sees; `names` maps user ids to
    display names (an unknown id stays as `@U123`)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        target, _, label = token.partition("|")
        if target.startswith("@"):
            user = target[1:]
            return "@" + (names.get(user) or label or user)
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            if target.startswith("!subteam^"):
                return label or "@group"
            return "@" + (label or target[1:]).lstrip("@")
        if target.startswith("mailto:"):
            return label or target[len("mailto:") :]
        if label and label != target:
            return f"{label} ({target})"
        return target

    out = _TOKEN.sub(replace, text)
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
