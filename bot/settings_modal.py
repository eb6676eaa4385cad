"""The settings form that `/gpt config` opens: one input per setting, saved all or nothing.

Each input is derived from the setting's declaration (`bot.channel_settings.SETTINGS`): its name
is the block id and label, its description the hint, the value in effect the placeholder, and a
channel's own value the initial text. An empty input means "inherit": saving it removes the
channel's value.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import AdminCheck, log_change
from bot.channel_config import ConfigStore, Effective
from bot.channel_settings import KEYS, SETTINGS, InvalidSetting, show_value

MODAL_ID = "gpt_config"
SLACK_TEXT_LIMIT = 150
"""Slack's limit for a plain_text placeholder, hint and field error."""


def _as_typed(value: object) -> str:
    """A value as an admin would type it (on/off for switches)."""
    return show_value(value) if isinstance(value, bool) else str(value)


def _input(name: str, effective: Effective) -> dict[str, Any]:
    setting = SETTINGS[name]
    value = getattr(effective.settings, name)
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": setting.multiline,
        "placeholder": {
            "type": "plain_text",
            "text": f"inherit: {show_value(value)}"[:SLACK_TEXT_LIMIT],
        },
    }
    if effective.sources[name] == "channel":
        element["initial_value"] = _as_typed(value)
    return {
        "type": "input",
        "block_id": name,
        "optional": True,
        "label": {"type": "plain_text", "text": name},
        "hint": {"type": "plain_text", "text": setting.description[:SLACK_TEXT_LIMIT]},
        "element": element,
    }


def settings_view(effective: Effective, channel: str) -> dict[str, Any]:
    """The modal for one channel, showing what is in effect there."""
    return {
        "type": "modal",
        "callback_id": MODAL_ID,
        "title": {"type": "plain_text", "text": "Assistant settings"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"channel": channel}),
        "blocks": [_input(name, effective) for name in KEYS],
    }


def read_submission(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed values of the filled-in inputs, and an error per input that does not validate."""
    state = (view.get("state") or {}).get("values") or {}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in KEYS:
        raw = ((state.get(name) or {}).get("value") or {}).get("value")
        if raw is None or not str(raw).strip():
            continue
        try:
            values[name] = SETTINGS[name].validate(str(raw))
        except InvalidSetting as exc:
            errors[name] = str(exc)[:SLACK_TEXT_LIMIT]
    return values, errors


def _channel_of(view: dict[str, Any]) -> str:
    try:
        return str(json.loads(view.get("private_metadata") or "{}").get("channel", ""))
    except ValueError:
        return ""


class SettingsModal:
    """Opens the form and saves its submission, for admins only; every change is logged."""

    def __init__(self, *, config: ConfigStore, admins: AdminCheck, command: str) -> None:
        self.config = config
        self.admins = admins
        self.command = command

    def register(self, app: AsyncApp) -> None:
        @app.view(MODAL_ID)
        async def on_submit(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            errors = await self.submit(body, client)
            if errors:
                await ack(response_action="errors", errors=errors)
            else:
                await ack()

    async def open(self, body: dict[str, Any], client: AsyncWebClient) -> str:
        """Open the form (the caller checked the user is an admin); the reply for the command."""
        team, channel = str(body.get("team_id", "")), str(body.get("channel_id", ""))
        view = settings_view(await self.config.effective(team, channel), channel)
        try:
            await client.views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
        except SlackApiError as exc:
            error = exc.response.get("error")
            return f"Could not open the settings form ({error}). Use `{self.command} set`."
        return "Opening the settings form…"

    async def submit(self, body: dict[str, Any], client: AsyncWebClient) -> dict[str, str]:
        """Validate every input; store all or nothing. Returns the inputs' errors for Slack."""
        view = body.get("view") or {}
        team = str((body.get("team") or {}).get("id") or body.get("team_id") or "")
        user = str((body.get("user") or {}).get("id", ""))
        channel = _channel_of(view)
        if not channel:
            return {KEYS[0]: "This form lost its channel; run the command again."}
        if not await self.admins.allows(team, user, client):
            return {KEYS[0]: f"Only {self.admins.who()} can change settings."}
        values, errors = read_submission(view)
        if errors:
            return errors
        current = await self.config.effective(team, channel)
        for key in KEYS:
            kept = current.sources[key] == "channel"
            if key in values and kept and getattr(current.settings, key) == values[key]:
                continue  # pre-filled and untouched: no write, no settings version bump
            if key in values:
                old = await self.config.set(team, channel, key, values[key])
                if old != values[key]:
                    log_change(
                        user=user, team=team, channel=channel, key=key, old=old, new=values[key]
                    )
            elif kept:
                old = await self.config.unset(team, channel, key)
                log_change(user=user, team=team, channel=channel, key=key, old=old, new=None)
        return {}
