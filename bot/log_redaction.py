"""A logging filter that blanks Slack tokens and given secrets out of every log line.

The bot never logs a secret itself, but at DEBUG slack_sdk logs every request's parameters and
every response's body, and in OAuth mode those carry tokens: `oauth.v2.access` answers with the
bot token and, with token rotation, a refresh token, and a rotation sends the refresh token.
slack_sdk already blanks the `Authorization` header. Slack's tokens have recognisable prefixes
(`xoxb-` bot, `xoxp-` user, `xoxa-`/`xoxr-`/`xoxs-`/`xoxo-` older kinds, `xapp-` app-level,
`xoxe.xoxb-` rotating, `xoxe-` refresh), so they are replaced wherever they appear.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

TOKEN = re.compile(r"\b(?:xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]+")
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Rewrites each record's message with Slack tokens and `secrets` replaced."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = TOKEN.sub(REDACTED, message)
        for secret in self.secrets:
            clean = clean.replace(secret, REDACTED)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(secrets: Iterable[str] = ()) -> None:
    """Add the filter to every handler of the root logger (set up by `logging.basicConfig`)."""
    redact = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
