"""`python -m bot doctor`: check every setting and connection, and say how to fix each failure.

One line per check, ✓ or ✗ (⚠ for a working setup that will surprise you later), and for each ✗
the fix. The exit code is 0 only when nothing failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.azure_openai import AzureOpenAIClient
from bot.chat_types import ChatOptions
from bot.errors import REDIS_ERRORS, AzureOpenAIError, ReasoningBudgetExhausted
from bot.manifest import bot_scopes
from bot.settings import Settings
from bot.slack_app import SCOPE_PURPOSES
from bot.store.connect import describe, info_per_node

SAFE_POLICIES = ("noeviction",)
"""Every key the bot writes has a TTL, so volatile-* policies evict history as readily as
allkeys-*: only noeviction makes a full Redis fail loudly instead of forgetting threads."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False

    def line(self) -> str:
        mark = "⚠" if self.warning else ("✓" if self.ok else "✗")
        text = f"{mark} {self.name}: {self.detail}"
        return text + (
            f"\n    fix: {self.fix}"
            if (self.fix and not self.ok) or (self.warning and self.fix)
            else ""
        )


def check_settings(settings: Settings) -> list[Check]:
    checks = [Check("settings", True, f"loaded; endpoint {settings.azure_openai_endpoint}")]
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        checks.append(
            Check(
                "slack mode",
                False,
                "neither SLACK_SIGNING_SECRET (HTTP) nor SLACK_APP_TOKEN (Socket Mode) is set",
                "set SLACK_SIGNING_SECRET (Basic Information > App Credentials) for HTTP mode, or "
                "SLACK_APP_TOKEN (xapp-..., scope connections:write) for Socket Mode",
            )
        )
    else:
        mode = (
            "Socket Mode (SLACK_APP_TOKEN)"
            if settings.slack_app_token
            else "HTTP (signing secret set)"
        )
        checks.append(Check("slack mode", True, mode))
    return checks


async def check_azure(settings: Settings, azure: AzureOpenAIClient) -> Check:
    """A 1-token completion proves auth, endpoint, deployment and api-version together.

    The line names the surface it tested (v1 or the deployment API at its api-version) and,
    with AZURE_OPENAI_AUTH=entra, that the token came from the identity. A reasoning deployment
    spends a 1-token budget reasoning and answers with no text: that still proves the call works.
    """
    surface = azure.surface.name
    auth = "Entra ID token" if settings.azure_openai_auth == "entra" else "key"
    try:
        result = await azure.complete(
            [{"role": "user", "content": "Reply with OK."}], ChatOptions(max_tokens=1)
        )
    except ReasoningBudgetExhausted as exc:
        return Check(
            "azure",
            True,
            f"{surface}, {auth}: deployment {settings.azure_openai_deployment!r} answers "
            f"(reasoning model {exc.model or '?'}; the 1-token test budget went to reasoning)",
        )
    except AzureOpenAIError as exc:
        return Check(
            "azure",
            False,
            f"{surface}, {auth}, deployment {settings.azure_openai_deployment!r}: "
            f"{type(exc).__name__} (HTTP {exc.status or '-'})",
            exc.user_message,
        )
    used = f", {result.usage.total_tokens} tokens" if result.usage else ""
    return Check(
        "azure",
        True,
        f"{surface}, {auth}: deployment {result.deployment!r} answers "
        f"(model {result.model or '?'}{used})",
    )


async def check_slack(settings: Settings, client: AsyncWebClient) -> list[Check]:
    if settings.oauth_mode:
        from bot.oauth_checks import check_oauth  # (it imports this module)

        return check_oauth(settings)
    if settings.slack_bot_token is None:
        return [
            Check(
                "slack",
                False,
                "SLACK_BOT_TOKEN is not set",
                "copy the Bot User OAuth Token (xoxb-...) from OAuth & Permissions",
            )
        ]
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        return [
            Check(
                "slack",
                False,
                f"auth.test failed: {exc.response.get('error')}",
                "check SLACK_BOT_TOKEN (xoxb-...) and that the app is installed; "
                "reinstall it from OAuth & Permissions if the token was revoked",
            )
        ]
    checks = [
        Check(
            "slack",
            True,
            f"token works: team {response.get('team')!r} as <@{response.get('user_id')}>",
        )
    ]
    granted = {
        s.strip() for s in str(response.headers.get("x-oauth-scopes", "")).split(",") if s.strip()
    }
    missing = [s for s in bot_scopes() if s not in granted]
    if missing:
        checks.append(
            Check(
                "slack scopes",
                False,
                "missing "
                + ", ".join(
                    f"{s} ({SCOPE_PURPOSES[s]})" if s in SCOPE_PURPOSES else s for s in missing
                ),
                "add them under OAuth & Permissions > Bot Token Scopes (or recreate the app from "
                "`python -m bot manifest`), then reinstall the app to the workspace",
            )
        )
    else:
        checks.append(Check("slack scopes", True, ", ".join(bot_scopes())))
    return checks


async def check_redis(settings: Settings, redis: Redis) -> list[Check]:
    if settings.redis_url is None:
        return [
            Check(
                "redis",
                True,
                "not configured: using the embedded in-memory store",
                "set REDIS_URL so history survives restarts and replicas share it",
                warning=True,
            )
        ]
    try:
        await redis.ping()
        nodes = await info_per_node(redis, "server")
        memories = await info_per_node(redis, "memory")
    except REDIS_ERRORS as exc:
        return [
            Check(
                "redis",
                False,
                f"cannot connect ({type(exc).__name__})",
                "check REDIS_URL (host, port, password, rediss:// for TLS) and that the "
                "server is running and reachable from here",
            )
        ]
    kind = describe(redis, settings.redis_url.get_secret_value())
    if len(nodes) > 1:
        kind = kind.replace("cluster", f"cluster of {len(nodes)} masters")
    version = nodes[0].get("redis_version", "?")
    checks = [Check("redis", True, f"reachable ({kind}), version {version}")]
    # The weakest node's policy and limit speak for the whole cluster.
    risky = [
        m
        for m in memories
        if int(m.get("maxmemory", 0) or 0)
        and str(m.get("maxmemory_policy", "noeviction")) not in SAFE_POLICIES
    ]
    worst = (risky or memories)[0]
    policy = str(worst.get("maxmemory_policy", "noeviction"))
    limit = int(worst.get("maxmemory", 0) or 0)
    if limit and policy not in SAFE_POLICIES:
        checks.append(
            Check(
                "redis eviction",
                False,
                f"maxmemory {limit // (1024 * 1024)} MB with policy {policy}: a full Redis would "
                "silently drop thread history, dedup claims and settings",
                "set maxmemory-policy noeviction (redis.conf or CONFIG SET; Azure Cache for Redis: "
                "Advanced settings > maxmemory-policy)",
            )
        )
    else:
        checks.append(
            Check(
                "redis eviction",
                True,
                f"policy {policy}" + ("" if limit else " (no maxmemory limit)"),
            )
        )
    return checks
