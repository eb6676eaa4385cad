"""The configuration slash command (`BOT_SLASH_COMMAND`, default `/gpt`).

Subcommands: help, show, set, set-default, unset, unset-default, reset, usage, config (the form, in
`bot.settings_modal`), forget-all (admins: delete the workspace's stored conversations,
`bot.purge`). Replies are ephemeral and sent in the ack, inside Slack's 3 seconds. Slack does not
let a custom slash command be invoked in a thread, so configuration is per channel and per
workspace, never per thread. The help and show texts list the settings declared in
`bot.channel_settings`, in their order.

What was typed is parsed in `bot.command_input`. Work that may outlast Slack's 3 s (forget-all)
is acked at once and answered through the command's `response_url`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import AdminCheck, log_change
from bot.channel_config import ConfigStore
from bot.channel_settings import KEYS, SETTINGS, InvalidSetting, show_value, unknown_key
from bot.chat_types import Usage
from bot.command_input import Invocation
from bot.errors import StoreUnavailable
from bot.feedback import FeedbackReport, feedback_lines
from bot.settings_modal import SettingsModal
from bot.usage import PERIODS, Report

log = logging.getLogger(__name__)

STORE_DOWN = "I can't reach my settings store (Redis) right now. Try again in a minute."


class UsageReports(Protocol):
    """What `usage` needs from the ledger (`bot.usage.UsageLedger` fits)."""

    async def report(self, team: str, channel: str, days: int) -> Report: ...


class FeedbackReports(Protocol):
    """What `usage` needs for the 👍/👎 counts (`bot.feedback.FeedbackStore` fits)."""

    async def report(self, team: str, channel: str, days: int) -> FeedbackReport: ...


def _tokens(u: Usage) -> str:
    return f"{u.total_tokens:,} tokens (prompt {u.prompt_tokens:,} · completion {u.completion_tokens:,})"


@dataclass(frozen=True)
class Later:
    """A reply in two parts: `now` with the ack, then what `then` returns, through the
    command's `response_url` (for work that may outlast Slack's 3 s)."""

    now: str
    then: Callable[[], Awaitable[str]]


class Forget(Protocol):
    """What `forget-all` needs (`bot.purge.Purger` fits)."""

    async def forget_history(self, team: str) -> int: ...


class Commands:
    """Handles the slash command; `config` hands over to the settings modal."""

    def __init__(
        self,
        *,
        config: ConfigStore,
        ledger: UsageReports,
        admins: AdminCheck,
        command: str,
        feedback: FeedbackReports | None = None,
        forget: Forget | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.feedback = feedback
        self.admins = admins
        self.command = command
        self.forget = forget
        self.modal = SettingsModal(config=config, admins=admins, command=command)
        self._changes: dict[str, Callable[[Invocation, AsyncWebClient], Awaitable[str | Later]]] = {
            "set": self._set,
            "set-default": self._set,
            "unset": self._unset,
            "unset-default": self._unset,
            "reset": self._reset,
            "config": self._config,
        }
        if forget is not None:
            self._changes["forget-all"] = self._forget_all

    def register(self, app: AsyncApp) -> None:
        @app.command(self.command)
        async def on_command(
            ack: Any, respond: Any, body: dict[str, Any], client: AsyncWebClient
        ) -> None:
            try:
                reply = await self.handle(body, client)
            except StoreUnavailable:
                reply = STORE_DOWN
            if isinstance(reply, str):
                await ack(response_type="ephemeral", text=reply)
                return
            await ack(response_type="ephemeral", text=reply.now)
            try:
                text = await reply.then()
            except StoreUnavailable:
                text = STORE_DOWN
            except Exception:
                log.exception("%s failed after its ack", self.command)
                text = "That did not finish because of an error on the bot's side; try again."
            try:
                await respond(response_type="ephemeral", replace_original=False, text=text)
            except Exception as exc:  # the response_url expired or Slack refused it
                log.warning("could not answer through response_url: %s", type(exc).__name__)

        self.modal.register(app)

    async def handle(self, body: dict[str, Any], client: AsyncWebClient) -> str | Later:
        """The reply to one use of the command."""
        call = Invocation.from_body(body)
        sub = call.parsed.sub
        if sub in ("help", "?"):
            return self.help_text()
        if sub == "show":
            return await self.show(call.team, call.channel)
        if sub == "usage":
            return await self.usage(call.team, call.channel, call.parsed.key or "today")
        change = self._changes.get(sub)
        if change is None:
            return f"Unknown subcommand `{sub}`.\n\n" + self.help_text()
        if not await self.admins.allows(call.team, call.user, client):
            c = self.command
            return (
                f"Only {self.admins.who()} can change settings. Everyone can use "
                f"`{c} show`, `{c} usage` and `{c} help`."
            )
        return await change(call, client)

    async def _forget_all(self, call: Invocation, _client: AsyncWebClient) -> Later:
        """Scanning a large Redis can outlast Slack's 3 s for the ack: acked at once, and the
        result follows through the command's `response_url`."""
        forget = self.forget
        assert forget is not None

        async def run() -> str:
            threads = await forget.forget_history(call.team)
            log_change(
                user=call.user, team=call.team, channel=None, key="history", old=threads, new=None
            )
            return (
                f"Deleted the stored conversations of {threads:,} threads in this workspace. "
                "Settings and usage counts are kept."
            )

        return Later("Deleting this workspace's stored conversations…", run)

    async def _config(self, call: Invocation, client: AsyncWebClient) -> str:
        return await self.modal.open(call.body, client)

    async def _reset(self, call: Invocation, _client: AsyncWebClient) -> str:
        old = await self.config.reset(call.team, call.channel)
        log_change(user=call.user, team=call.team, channel=call.channel, key="*", old=old, new=None)
        removed = f" Removed: {', '.join(sorted(old))}." if old else ""
        return "This channel now uses the workspace defaults." + removed

    @staticmethod
    def _where(scope: str | None) -> str:
        return "the workspace default" if scope is None else "this channel"

    async def _unset(self, call: Invocation, _client: AsyncWebClient) -> str:
        key, scope = call.parsed.key, call.scope
        if unknown := unknown_key(key):
            return unknown
        old = await self.config.unset(call.team, scope, key)
        log_change(user=call.user, team=call.team, channel=scope, key=key, old=old, new=None)
        return f"`{key}` is no longer set for {self._where(scope)} (was {show_value(old)})."

    async def _set(self, call: Invocation, _client: AsyncWebClient) -> str:
        key, scope = call.parsed.key, call.scope
        if unknown := unknown_key(key):
            return unknown
        setting = SETTINGS[key]
        if not call.parsed.value:
            return f"Give a value: `{self.command} {setting.usage}` ({setting.description})."
        try:
            value = setting.validate(call.parsed.value)
        except InvalidSetting as exc:
            return f"Nothing changed. {exc}"
        old = await self.config.set(call.team, scope, key, value)
        log_change(user=call.user, team=call.team, channel=scope, key=key, old=old, new=value)
        return f"Set `{key}` for {self._where(scope)}: {show_value(old)} → {show_value(value)}."

    def help_text(self) -> str:
        c = self.command
        lines = [
            f"*{c}* configures the assistant for this channel (replies only you can see).",
            f"• `{c} show` – the settings in effect here and where each comes from",
            f"• `{c} set <key> <value>` – set for this channel, e.g. `{c} set temperature 0.2`",
            f"• `{c} set-default <key> <value>` – set the workspace default",
            f"• `{c} unset <key>` / `{c} unset-default <key>` – remove a value",
            f"• `{c} reset` – this channel back to the workspace defaults",
            f"• `{c} usage [today|7d|30d]` – tokens used here and in the workspace, top users, "
            "👍/👎 per deployment",
            f"• `{c} config` – the same settings in a form",
        ]
        if self.forget is not None:
            lines.append(
                f"• `{c} forget-all` – delete every thread's stored conversation in this workspace"
                " (one thread: the *Forget this thread* message shortcut)"
            )
        lines += [
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
        label = "today (UTC)" if period == "today" else f"the last {PERIODS[period]} days"
        lines = [
            f"*Usage {label}*",
            f"• this channel: {_tokens(r.channel)}",
            f"• workspace: {_tokens(r.workspace)}",
        ]
        for title, top in (("top users here", r.top_channel_users), ("top users", r.top_users)):
            if top:
                lines.append(f"• {title}: " + ", ".join(f"<@{u}> {n:,}" for u, n in top))
        if self.feedback is not None:
            lines += feedback_lines(await self.feedback.report(team, channel, PERIODS[period]))
        return "\n".join(lines)
