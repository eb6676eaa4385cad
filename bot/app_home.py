"""The App Home tab: how to use the bot, the viewer's tokens and quota, the workspace defaults,
and, for admins, the channels that use the most tokens.

Slack facts this relies on:

* `app_home_opened` (its own event subscription; no scope) arrives whenever a user opens one of
  the app's tabs: `{"type": "app_home_opened", "user", "channel" (their DM with the app),
  "tab": "home" | "messages", "view"? (what was published before), "event_ts"}`. Only the Home
  tab shows a published view, so only `tab: "home"` publishes one.
* `views.publish(user_id, view={"type": "home", "blocks": [...]})` sets what that one user sees
  on the Home tab: up to 100 blocks, a section's text up to 3,000 characters, a header's up to
  150. The manifest turns the tab on (`features.app_home.home_tab_enabled`).

The view is rebuilt at every opening from Redis (the usage ledger, the workspace settings) and
from what the bot learned about the default deployment, so it is always current; if Redis is
unreachable, the tab still explains the bot and says the figures are unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import AdminCheck
from bot.azure_deployments import DeploymentFacts
from bot.channel_config import ConfigStore
from bot.channel_settings import show_value
from bot.errors import StoreUnavailable
from bot.slack_identity import BotIdentity
from bot.usage import UsageLedger, human_duration, seconds_until_reset

log = logging.getLogger(__name__)

FactsOf = Callable[[str], Awaitable[DeploymentFacts]]
"""What the bot learned about a deployment (`bot.azure_deployments.Deployments.facts`)."""

HOW_TO = (
    "*In a channel:* mention me, e.g. {me} `why does my build fail?` — I answer in the "
    "thread and keep following it.\n"
    "*In a DM or the assistant pane:* just write; ask about *this channel* to have me read the "
    "channel you're looking at (where I'm a member).\n"
    "*Every answer* shows its token usage; 👍/👎 under it tells your admins how it went.\n"
    "*Settings:* `{command} help` in any channel."
)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def reasoning_text(facts: DeploymentFacts) -> str:
    """Whether the deployment is a reasoning one, as far as the bot knows."""
    model = f" ({facts.model})" if facts.model else ""
    if facts.reasoning is None and not facts.model:
        return "reasoning or not: not known yet (learned from its first answer)"
    kind = "a reasoning model" if facts.takes_reasoning_set else "a chat model (not reasoning)"
    return f"{kind}{model}"


class HomeTab:
    """Publishes the Home tab of whoever opens it; every I/O object is injected."""

    def __init__(
        self,
        *,
        config: ConfigStore,
        ledger: UsageLedger,
        admins: AdminCheck,
        facts_of: FactsOf,
        identity: BotIdentity | None,
        command: str,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.admins = admins
        self.facts_of = facts_of
        self.identity = identity
        self.command = command

    def register(self, app: AsyncApp) -> None:
        @app.event("app_home_opened")
        async def on_opened(
            event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
        ) -> None:
            if event.get("tab") == "home" and event.get("user"):
                team, user = str(context.team_id or ""), str(event["user"])
                await self.publish(team, user, client, bot_user=context.bot_user_id)

    async def publish(
        self, team: str, user: str, client: AsyncWebClient, *, bot_user: str | None = None
    ) -> None:
        """Build `user`'s Home tab and publish it (a refusal is logged, never raised).
        `bot_user`: the bot's user id in that workspace (Bolt's authorization knows it)."""
        view = {"type": "home", "blocks": await self.blocks(team, user, client, bot_user)}
        try:
            await client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed user=%s: %s", user, exc.response.get("error"))

    async def blocks(
        self, team: str, user: str, client: AsyncWebClient, bot_user: str | None = None
    ) -> list[dict[str, Any]]:
        if bot_user is None and self.identity is not None:
            bot_user = await self.identity.bot_user_id()
        me = f"<@{bot_user}>" if bot_user else "`@me`"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": "Azure OpenAI assistant"}},
            _section(HOW_TO.format(me=me, command=self.command)),
            {"type": "divider"},
        ]
        try:
            blocks += await self._figures(team, user, client)
        except StoreUnavailable as exc:
            log.warning("home tab without figures (%s)", exc)
            blocks.append(_section("_Usage and settings are unavailable right now (Redis)._"))
        return blocks

    async def _figures(self, team: str, user: str, client: AsyncWebClient) -> list[dict[str, Any]]:
        days = await self.ledger.user_days(team, user, 7)
        workspace = (await self.config.workspace(team)).settings
        quota = workspace.quota
        if quota:
            wait = human_duration(seconds_until_reset(self.ledger.now()))
            left = f"{max(0, quota - days[0]):,} of {quota:,} tokens left today (resets in {wait})"
        else:
            left = "no daily quota"
        deployment = workspace.deployment
        facts = await self.facts_of(deployment)
        blocks = [
            _section(
                f"*Your usage*\n• today: {days[0]:,} tokens\n• last 7 days: {sum(days):,} tokens"
                f"\n• quota: {left}"
            ),
            _section(
                "*Workspace defaults* (channels may change them with "
                f"`{self.command} set`)\n• deployment `{deployment}`: {reasoning_text(facts)}"
                f"\n• max tokens per answer: {workspace.max_tokens:,}"
                f"\n• history: {workspace.history} question/answer pairs per thread"
                f"\n• answers follow-ups without a mention: {show_value(workspace.followups)}"
            ),
        ]
        if await self.admins.allows(team, user, client):
            report = await self.ledger.report(team, "", 7)
            top = "\n".join(f"• <#{c}>: {n:,} tokens" for c, n in report.top_channels)
            blocks.append(_section("*Top channels, last 7 days* (admins only)\n" + (top or "none")))
        return blocks
