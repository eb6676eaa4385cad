"""The first-run rules of `bot.settings`: the Azure endpoint, what the chosen Slack mode needs,
the Redis connection settings, `.env.example`'s placeholders, and the one message that lists
every problem at once.

Someone setting the bot up should fix their configuration in one go, not one error per run: every
check here runs as a field validator (`Settings`), so pydantic collects all of them with the type
errors, and `problems_text` words the lot, each with where to find the value.
"""

from __future__ import annotations

import ipaddress
import os
from contextvars import ContextVar
from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, ValidationError

SlackMode = Literal["http", "socket", "auto"]
"""Which Slack tokens a command needs: HTTP (bot token, signing secret), Socket Mode (bot and app
tokens), or `auto`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (`python -m bot`)."""

SLACK_MODE: ContextVar[SlackMode | None] = ContextVar("slack_mode", default=None)
"""The mode `load_settings` validates for. pydantic-settings passes no validation context, and
the Slack requirements must be checked with the other fields to be listed with them."""

OPTIONAL = (
    *("azure_openai_key", "azure_openai_key_2", "azure_openai_ad_token"),
    *("slack_bot_token", "slack_signing_secret", "slack_app_token"),
    *("slack_client_id", "slack_client_secret", "bot_public_url", "slack_redirect_uri"),
    *("redis_url", "redis_cluster", "redis_ca_file"),
    *("bot_temperature", "bot_top_p", "bot_reasoning_effort"),
)
"""The settings that may be unset: blank (or a placeholder) means unset, not the empty value."""

PLACEHOLDERS = frozenset({"xoxb-", "xapp-", "https://YOUR-RESOURCE.openai.azure.com/"})
"""`.env.example`'s values that stand for "fill me in": read as not set."""

SLACK_TOKENS = {
    "slack_bot_token": "SLACK_BOT_TOKEN is not set: the xoxb-... Bot User OAuth Token from your "
    "Slack app's OAuth & Permissions page (or, to install the app in many workspaces, "
    "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET from Basic Information > App Credentials)",
    "slack_signing_secret": "SLACK_SIGNING_SECRET is not set (HTTP mode): Basic Information > "
    "App Credentials > Signing Secret",
    "slack_app_token": "SLACK_APP_TOKEN is not set (Socket Mode): an xapp-... token from Basic "
    "Information > App-Level Tokens, scope connections:write",
}


OAUTH_CREDENTIALS = ("slack_client_id", "slack_client_secret")
"""With both (and no bot token) HTTP mode is OAuth distribution: tokens come from installations."""


def slack_requirements(mode: SlackMode, present: set[str]) -> list[str]:
    """What `mode` needs and is not `present` (field names), each saying where to find it.
    HTTP mode with the app's OAuth credentials needs no bot token; Socket Mode always does."""
    if mode == "auto":
        mode = "socket" if "slack_app_token" in present else "http"
    needed = ["slack_app_token" if mode == "socket" else "slack_signing_secret"]
    if mode == "socket" or not set(OAUTH_CREDENTIALS) <= present:
        needed.insert(0, "slack_bot_token")
    return [SLACK_TOKENS[name] for name in needed if name not in present]


V1_SUFFIX = "/openai/v1"

PORTAL_HINT = (
    "Find it in the Azure portal: open your Azure OpenAI resource, then "
    "Resource Management > Keys and Endpoint."
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(value: str) -> str:
    """The endpoint as the client joins it: no trailing `/`, no `/openai/v1`."""
    value = value.strip()
    if not value or value in PLACEHOLDERS:
        raise ValueError(
            "AZURE_OPENAI_ENDPOINT is not set. It looks like "
            f"https://YOUR-RESOURCE.openai.azure.com/. {PORTAL_HINT}"
        )
    # The quickstart's endpoint ends in '/'; joining it naively gives '//openai' and a 404.
    value = value.rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            f"AZURE_OPENAI_ENDPOINT must be a URL such as https://YOUR-RESOURCE.openai.azure.com/"
            f" (got {value!r}). {PORTAL_HINT}"
        )
    if not _safe_scheme(parts):
        raise ValueError(
            "AZURE_OPENAI_ENDPOINT must use https:// (plain http is only allowed for a local "
            "test server on 127.0.0.1 or localhost); the key would travel in clear text."
        )
    # Azure's v1 samples use `{endpoint}/openai/v1/` as the base URL: accept it as pasted.
    value = value.removesuffix(V1_SUFFIX)
    path = urlsplit(value).path
    if path.rstrip("/").endswith("/openai") or "/openai/" in path + "/":
        raise ValueError(
            "AZURE_OPENAI_ENDPOINT should be the resource URL only, without '/openai/...' "
            "(e.g. https://YOUR-RESOURCE.openai.azure.com/; '.../openai/v1' is accepted too)."
        )
    return value


def _safe_scheme(parts: SplitResult) -> bool:
    """https, or plain http to a loopback host only (a local test server)."""
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname is not None and _is_loopback(parts.hostname)
    )


def check_public_url(value: str | None) -> str | None:
    """BOT_PUBLIC_URL / SLACK_REDIRECT_URI: https (plain http on loopback only), no trailing /."""
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if not parts.hostname or not _safe_scheme(parts):
        raise ValueError(
            "must be an https:// URL Slack can reach, such as https://bot.example.com "
            "(plain http only on 127.0.0.1 or localhost)"
        )
    return value.strip().rstrip("/")


PublicUrl = Annotated[str | None, AfterValidator(check_public_url)]


def check_redis_url(url: str) -> None:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "REDIS_URL must start with redis:// or rediss:// (TLS), e.g. rediss://:ACCESS-KEY@"
            "NAME.redis.cache.windows.net:6380/0 (Azure portal: your cache > Settings > "
            "Authentication > Access keys); leave it empty for the embedded store"
        )


def check_ca_file(path: str, url: str | None) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"REDIS_CA_FILE: no such file {path!r} (a PEM file of CA certificates)")
    if url is None or not url.startswith("rediss://"):
        raise ValueError("REDIS_CA_FILE is only used with TLS: make REDIS_URL rediss://...")


def problems_text(exc: ValidationError) -> str:
    """One line per problem; a message that opens with the variable's name stands alone, others
    get it as a prefix (pydantic's own messages, e.g. "Input should be a valid number")."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]).upper()
        for message in err["msg"].removeprefix("Value error, ").splitlines():
            alone = not name or message.split(" ", 1)[0].rstrip(":").isupper()
            lines.append(message if alone else f"{name}: {message}")
    plural = "s" if len(lines) > 1 else ""
    return (
        f"{len(lines)} configuration problem{plural}:\n  "
        + "\n  ".join(lines)
        + "\nSet the values in the environment or in .env (see .env.example)."
    )
