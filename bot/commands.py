"""The configuration slash command (`BOT_SLASH_COMMAND`, default `/gpt`) and its modal.

Subcommands: help, show, set, set-default, unset, unset-default, reset, usage, config. Replies are
ephemeral and sent in the ack, inside Slack's 3 seconds. Slash commands cannot be used in threads
(reference/slack.md §4), so configuration is per channel and per workspace.

Parsing keeps free text intact: in `set system <text>` everything after the key is the value, with
newlines, emoji and inner quotes; one pair of surrounding quotes (straight or curly, which Slack
clients produce) is removed.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel_config import ConfigStore
from bot.channel_settings import KEYS, SETTINGS, InvalidSetting, show_value, validate_value
from bot.errors import StoreUnavailable
from bot.usage import PERIODS, UsageLedger

log = logging.getLogger("bot.config")

MODAL_ID = "gpt_config"
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}
ADMIN_CACHE_SECONDS = 60.0


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


class AdminCheck:
    """Who may change settings: BOT_ADMIN_USER_IDS, or, when empty, workspace admins/owners."""

    def __init__(self, admin_ids: Collection[str]) -> None:
        self.admin_ids = frozenset(admin_ids)
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    def who(self) -> str:
        if self.admin_ids:
            return "the bot's admins (" + ", ".join(f"<@{u}>" for u in sorted(self.admin_ids)) + ")"
        return "workspace admins and owners"

    async def allows(self, team: str, user: str, client: AsyncWebClient) -> bool:
        if self.admin_ids:
            return user in self.admin_ids
        cached = self._cache.get((team, user))
        if cached and time.monotonic() - cached[0] < ADMIN_CACHE_SECONDS:
            return cached[1]
        try:
            info = await client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user, exc.response.get("error"))
            return False
        u = info.get("user") or {}
        allowed = bool(u.get("is_admin") or u.get("is_owner") or u.get("is_primary_owner"))
        self._cache[(team, user)] = (time.monotonic(), allowed)
        return allowed


class Commands:
    """Handles the slash command and the settings modal."""

    def __init__(
        self, *, config: ConfigStore, ledger: UsageLedger, admins: AdminCheck, command: str
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.admins = admins
        self.command = command

    def register(self, app: AsyncApp) -> None:
        @app.command(self.command)
        async def on_command(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            try:
                reply = await self.handle(body, client)
            except StoreUnavailable:
                reply = "I can't reach my settings store (Redis) right now. Try again in a minute."
            await ack(response_type="ephemeral", text=reply)

        @app.view(MODAL_ID)
        async def on_submit(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            errors = await self.submit(body, client)
            if errors:
                await ack(response_action="errors", errors=errors)
            else:
                await ack()

    async def handle(self, body: dict[str, Any], client: AsyncWebClient) -> str:
        team, channel = str(body.get("team_id", "")), str(body.get("channel_id", ""))
        user = str(body.get("user_id", ""))
        p = parse(str(body.get("text", "")))
        if p.sub in ("help", "?"):
            return self.help_text()
        if p.sub == "show":
            return await self.show(team, channel)
        if p.sub == "usage":
            return await self.usage(team, channel, p.key or "today")
        if p.sub not in ("set", "set-default", "unset", "unset-default", "reset", "config"):
            return f"Unknown subcommand `{p.sub}`.\n\n" + self.help_text()
        if not await self.admins.allows(team, user, client):
            return (
                f"Only {self.admins.who()} can change settings. Everyone can use "
                f"`{self.command} show`, `{self.command} usage` and `{self.command} help`."
            )
        if p.sub == "config":
            return await self.open_modal(body, client)
        if p.sub == "reset":
            old = await self.config.reset(team, channel)
            self._log(user, team, f"channel:{channel}", "*", old, None)
            return "This channel now uses the workspace defaults." + (
                f" Removed: {', '.join(sorted(old))}." if old else ""
            )
        if p.key not in KEYS:
            return f"Unknown key `{p.key or '(none)'}`. Keys: {', '.join(f'`{k}`' for k in KEYS)}."
        scope = None if p.sub.endswith("default") else channel
        where = "the workspace default" if scope is None else "this channel"
        if p.sub.startswith("unset"):
            old = await self.config.unset(team, scope, p.key)
            self._log(user, team, scope, p.key, old, None)
            return f"`{p.key}` is no longer set for {where} (was {show_value(old)})."
        if not p.value:
            setting = SETTINGS[p.key]
            return f"Give a value: `{self.command} {setting.usage}` ({setting.description})."
        try:
            value = validate_value(p.key, p.value)
        except InvalidSetting as exc:
            return f"Nothing changed. {exc}"
        old = await self.config.set(team, scope, p.key, value)
        self._log(user, team, scope, p.key, old, value)
        return f"Set `{p.key}` for {where}: {show_value(old)} → {show_value(value)}."

    def _log(self, user: str, team: str, scope: str | None, key: str, old: Any, new: Any) -> None:
        log.info(
            "settings change team=%s user=%s scope=%s key=%s old=%r new=%r",
            team,
            user,
            scope or "workspace",
            key,
            show_value(old),
            show_value(new),
        )

    def help_text(self) -> str:
        c = self.command
        lines = [
            f"*{c}* configures the assistant for this channel (replies only you can see).",
            f"• `{c} show` – the settings in effect here and where each comes from",
            f"• `{c} set <key> <value>` – set for this channel, e.g. `{c} set temperature 0.2`",
            f"• `{c} set-default <key> <value>` – set the workspace default",
            f"• `{c} unset <key>` / `{c} unset-default <key>` – remove a value",
            f"• `{c} reset` – this channel back to the workspace defaults",
            f"• `{c} usage [today|7d|30d]` – tokens used here and in the workspace, top users",
            f"• `{c} config` – the same settings in a form",
            "*Keys*",
        ]
        lines += [
            f"• `{s.name}` – {s.description}. e.g. `{c} {s.usage}`" for s in SETTINGS.values()
        ]
        lines.append(f"Changing settings is for {self.admins.who()}.")
        return "\n".join(lines)

    async def show(self, team: str, channel: str) -> str:
        eff = await self.config.effective(team, channel)
        lines = [f"*Settings in <#{channel}>*"]
        for key in KEYS:
            value = show_value(getattr(eff.settings, key))
            lines.append(f"• `{key}` = {value}  _({eff.sources[key]})_")
        return "\n".join(lines)

    async def usage(self, team: str, channel: str, period: str) -> str:
        if period not in PERIODS:
            return f"Use `{self.command} usage today`, `7d` or `30d`."
        r = await self.ledger.report(team, channel, PERIODS[period])

        def fmt(u: Any) -> str:
            return (
                f"{u.total_tokens:,} tokens (prompt {u.prompt_tokens:,} · "
                f"completion {u.completion_tokens:,})"
            )

        label = "today (UTC)" if period == "today" else f"the last {PERIODS[period]} days"
        lines = [
            f"*Usage {label}*",
            f"• this channel: {fmt(r.channel)}",
            f"• workspace: {fmt(r.workspace)}",
        ]
        for title, top in (("top users here", r.top_channel_users), ("top users", r.top_users)):
            if top:
                lines.append(f"• {title}: " + ", ".join(f"<@{u}> {n:,}" for u, n in top))
        return "\n".join(lines)

    async def open_modal(self, body: dict[str, Any], client: AsyncWebClient) -> str:
        team, channel = str(body.get("team_id", "")), str(body.get("channel_id", ""))
        eff = await self.config.effective(team, channel)
        blocks = []
        for key in KEYS:
            value = getattr(eff.settings, key)
            element: dict[str, Any] = {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": SETTINGS[key].multiline,
                "placeholder": {
                    "type": "plain_text",
                    "text": f"inherit: {show_value(value)}"[:150],
                },
            }
            if eff.sources[key] == "channel":
                element["initial_value"] = (
                    show_value(value) if isinstance(value, bool) else str(value)
                )
            blocks.append(
                {
                    "type": "input",
                    "block_id": key,
                    "optional": True,
                    "label": {"type": "plain_text", "text": key},
                    "hint": {"type": "plain_text", "text": SETTINGS[key].description[:150]},
                    "element": element,
                }
            )
        view = {
            "type": "modal",
            "callback_id": MODAL_ID,
            "title": {"type": "plain_text", "text": "Assistant settings"},
            "submit": {"type": "plain_text", "text": "Save"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "private_metadata": json.dumps({"channel": channel}),
            "blocks": blocks,
        }
        try:
            await client.views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
        except SlackApiError as exc:
            return f"Could not open the settings form ({exc.response.get('error')}). Use `{self.command} set`."
        return "Opening the settings form…"

    async def submit(self, body: dict[str, Any], client: AsyncWebClient) -> dict[str, str]:
        """Validate every field; store all or nothing. Returns field errors for Slack."""
        view = body.get("view") or {}
        team = str((body.get("team") or {}).get("id") or body.get("team_id") or "")
        user = str((body.get("user") or {}).get("id", ""))
        try:
            channel = str(json.loads(view.get("private_metadata") or "{}").get("channel", ""))
        except ValueError:
            channel = ""
        if not channel:
            return {KEYS[0]: "This form lost its channel; run the command again."}
        if not await self.admins.allows(team, user, client):
            return {KEYS[0]: f"Only {self.admins.who()} can change settings."}
        state = (view.get("state") or {}).get("values") or {}
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for key in KEYS:
            raw = ((state.get(key) or {}).get("value") or {}).get("value")
            if raw is None or not str(raw).strip():
                continue
            try:
                values[key] = validate_value(key, str(raw))
            except InvalidSetting as exc:
                errors[key] = str(exc)[:150]
        if errors:
            return errors
        current = await self.config.effective(team, channel)
        for key in KEYS:
            if key in values:
                old = await self.config.set(team, channel, key, values[key])
                if old != values[key]:
                    self._log(user, team, channel, key, old, values[key])
            elif current.sources[key] == "channel":
                old = await self.config.unset(team, channel, key)
                self._log(user, team, channel, key, old, None)
        return {}
