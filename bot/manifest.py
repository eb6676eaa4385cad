"""The Slack app manifest for this configuration (`python -m bot manifest`).

Events and scopes come from `bot.slack_app.SUBSCRIPTIONS`, the slash command from the settings, so
the manifest always asks Slack for exactly what the code listens to. The *Forget this thread*
message shortcut is `bot.data_controls`'; in OAuth mode the redirect URL is listed too.
"""

from __future__ import annotations

from typing import Any

from bot.data_controls import FORGET_THREAD
from bot.slack_app import BASE_SCOPES, LISTENER_SUBSCRIPTIONS, SCOPES_FOR_EVENT, SUBSCRIPTIONS

FORGET_SHORTCUT = {
    "name": "Forget this thread",
    "type": "message",
    "callback_id": FORGET_THREAD,
    "description": "Delete what the assistant stored of this thread",
}


def bot_events() -> list[str]:
    tables = (SUBSCRIPTIONS, LISTENER_SUBSCRIPTIONS)
    return [event for table in tables for events in table.values() for event in events]


def bot_scopes() -> list[str]:
    needed = (SCOPES_FOR_EVENT[e] for e in bot_events() if e in SCOPES_FOR_EVENT)
    return sorted({*BASE_SCOPES, *needed})


def build_manifest(
    *,
    command: str,
    url: str | None,
    socket_mode: bool,
    name: str = "Azure GPT",
    redirect_url: str | None = None,
) -> dict[str, Any]:
    """HTTP mode needs `url` (https://host); every endpoint is its `/slack/events`.
    `redirect_url` (OAuth mode) is listed as the app's OAuth redirect URL."""
    endpoint = f"{url.rstrip('/')}/slack/events" if url and not socket_mode else None
    slash: dict[str, Any] = {
        "command": command,
        "description": "Configure the Azure OpenAI assistant for this channel",
        "usage_hint": "help | show | set <key> <value> | usage [7d] | config",
        "should_escape": False,
    }
    events: dict[str, Any] = {"bot_events": bot_events()}
    interactivity: dict[str, Any] = {"is_enabled": True}  # the settings form, 👍/👎, shortcut
    oauth: dict[str, Any] = {"scopes": {"bot": bot_scopes()}}
    if redirect_url and not socket_mode:
        oauth["redirect_urls"] = [redirect_url]
    if endpoint:
        slash["url"] = endpoint
        events["request_url"] = endpoint
        interactivity["request_url"] = endpoint
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Your team's Azure OpenAI deployment, answering in threads.",
            "background_color": "#0b5cab",
        },
        "features": {
            "bot_user": {"display_name": name.lower().replace(" ", "-"), "always_online": True},
            "slash_commands": [slash],
            "shortcuts": [FORGET_SHORTCUT],
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "assistant_view": {
                "assistant_description": (
                    "Your team's Azure OpenAI deployment: ask anything, or about the channel "
                    "you are looking at."
                ),
                "suggested_prompts": [],
            },
        },
        "oauth_config": oauth,
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
