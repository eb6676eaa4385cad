"""`python -m bot doctor` in OAuth distribution mode: the app credentials, the redirect URL, the
scopes asked for at install, and a Redis that keeps installations. There is no bot token to try
(each installation brings its own), so no `auth.test` is made.
"""

from __future__ import annotations

import re

from bot.doctor import Check
from bot.manifest import bot_scopes
from bot.oauth import REDIRECT_PATH, install_scopes, redirect_uri
from bot.settings import Settings

_CLIENT_ID = re.compile(r"\d+\.\d+")
APP_CREDENTIALS = "Basic Information > App Credentials"


def check_oauth(settings: Settings) -> list[Check]:
    """The OAuth mode's checks (one line each, as the rest of the doctor)."""
    checks = [_credentials(settings), _redirect(settings), _scopes(settings)]
    if settings.redis_url is None:
        checks.append(
            Check(
                "oauth store",
                False,
                "REDIS_URL is not set: installations would live in memory and be lost on restart",
                "set REDIS_URL (installations, tokens and OAuth states are kept in Redis)",
            )
        )
    return checks


def _credentials(settings: Settings) -> Check:
    client_id = settings.slack_client_id or ""
    if not _CLIENT_ID.fullmatch(client_id):
        return Check(
            "slack oauth",
            False,
            f"SLACK_CLIENT_ID {client_id!r} does not look like a client id (digits.digits)",
            f"copy the Client ID from {APP_CREDENTIALS}",
        )
    # Slack has no call that checks the secret without a real install code, so a wrong secret
    # shows at the first install, as the failure page's `invalid_code`/`bad_client_secret`.
    return Check(
        "slack oauth",
        True,
        f"OAuth distribution: client id {client_id}, secret set (Slack checks it at install)",
    )


def _redirect(settings: Settings) -> Check:
    url = redirect_uri(settings)
    if url is None:
        return Check(
            "oauth redirect",
            False,
            "neither BOT_PUBLIC_URL nor SLACK_REDIRECT_URI is set",
            f"set BOT_PUBLIC_URL=https://YOUR-HOST (the redirect URL is then "
            f"https://YOUR-HOST{REDIRECT_PATH}) and add it under OAuth & Permissions > Redirect "
            "URLs (`python -m bot manifest` lists it)",
        )
    return Check("oauth redirect", True, f"{url} (must be one of the app's Redirect URLs)")


def _scopes(settings: Settings) -> Check:
    missing = [s for s in bot_scopes() if s not in install_scopes(settings)]
    if missing:
        return Check(
            "oauth scopes",
            False,
            "SLACK_SCOPES lacks " + ", ".join(missing),
            "leave SLACK_SCOPES empty (the manifest's scopes) or add the missing ones",
        )
    return Check("oauth scopes", True, ", ".join(install_scopes(settings)))
