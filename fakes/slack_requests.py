"""Requests exactly as Slack sends them: the v0 signature, the Events API envelope, and the
`app_mention` / `message` events the bot receives (shapes as in Slack's Events API docs)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from fakes.slack import APP_ID, BOT_ID, BOT_USER, TEAM, next_ts

SIGNING_SECRET = "fake-signing-secret-8c1f"
_ids = itertools.count(1)


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature over `v0:{timestamp}:{raw body}`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_ts() -> str:
    """A Slack message ts (`fakes.slack.next_ts`: now, unique, in time order)."""
    return next_ts()


def envelope(
    event: dict[str, Any],
    event_id: str | None = None,
    *,
    team: str = TEAM,
    bot_user: str = BOT_USER,
    enterprise: str | None = None,
    org_install: bool = False,
) -> dict[str, Any]:
    """The Events API envelope; `authorizations[0]` names the installation that sees the event
    (for an org-wide install: the organisation, with no team)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": "A0000APP1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise,
                "team_id": None if org_install else team,
                "user_id": bot_user,
                "is_bot": True,
                "is_enterprise_install": org_install,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
    }


def mention(
    text: str,
    *,
    channel: str = "C0000CHAN",
    ts: str | None = None,
    thread_ts: str | None = None,
    user: str = "U0000USER",
    files: list[dict[str, Any]] | None = None,
    bot_user: str = BOT_USER,
    team: str = TEAM,
) -> dict[str, Any]:
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "client_msg_id": f"msg-{ts}",
        "type": "app_mention",
        "text": f"<@{bot_user}> {text}",
        "user": user,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "blocks": [
            {
                "type": "rich_text",
                "block_id": "b1",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "user", "user_id": bot_user},
                            {"type": "text", "text": f" {text}"},
                        ],
                    }
                ],
            }
        ],
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    if files:
        event.update(files=files, subtype="file_share")
    return event


def message(
    text: str,
    *,
    channel: str = "C0000CHAN",
    ts: str | None = None,
    thread_ts: str | None = None,
    user: str = "U0000USER",
    **extra: Any,
) -> dict[str, Any]:
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "channel",
        "team": TEAM,
        "client_msg_id": f"msg-{ts}",
    }
    if thread_ts:
        event.update(thread_ts=thread_ts, parent_user_id="U0000USER")
    event.update(extra)
    return event


def message_changed(original: dict[str, Any], text: str) -> dict[str, Any]:
    """The `message_changed` event Slack sends when `original` is edited to `text`."""
    ts = new_ts()
    edited = {k: v for k, v in original.items() if k not in ("channel", "event_ts", "type")}
    edited.update(type="message", text=text, edited={"user": original.get("user"), "ts": ts})
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": original["channel"],
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
        "message": edited,
        "previous_message": {k: v for k, v in original.items() if k != "channel"},
    }


def message_deleted(original: dict[str, Any]) -> dict[str, Any]:
    """The `message_deleted` event Slack sends when `original` is deleted."""
    ts = new_ts()
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": original["channel"],
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
        "deleted_ts": original["ts"],
        "previous_message": {k: v for k, v in original.items() if k != "channel"},
    }


def click_feedback(
    message: dict[str, Any], *, user: str = "U0000USER", positive: bool = True, team: str = TEAM
) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user` clicks 👍 (or 👎) on the feedback
    buttons of `message` (a message as the fake stored it): the action's id and value are read
    from the message's own `context_actions` block."""
    element = next(
        e
        for b in message.get("blocks") or []
        if b.get("type") == "context_actions"
        for e in b["elements"]
        if e.get("type") == "feedback_buttons"
    )
    button = element["positive_button" if positive else "negative_button"]
    channel, ts, thread_ts = message["channel"], message["ts"], message.get("thread_ts")
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "pat", "name": "pat", "team_id": team},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
            "thread_ts": thread_ts,
        },
        "trigger_id": f"{next(_ids)}.{int(time.time())}.f00dfeed",
        "team": {"id": team, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"},
        "message": {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "text": message.get("text"),
            "ts": ts,
            "thread_ts": thread_ts,
            "blocks": message.get("blocks"),
        },
        "state": {"values": {}},
        "response_url": f"https://hooks.slack.com/actions/{team}/1/x",
        "actions": [
            {
                "type": "feedback_buttons",
                "action_id": element["action_id"],
                "block_id": "feedback",
                "value": button["value"],
                "text": button["text"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def interactivity_form(payload: dict[str, Any]) -> str:
    """An interactivity request body as Slack posts it: form-encoded `payload=<JSON>`."""
    return urlencode({"payload": json.dumps(payload)})


def assistant_thread(
    kind: str, *, channel: str, thread_ts: str, user: str = "U0000USER", looking_at: str | None
) -> dict[str, Any]:
    """`assistant_thread_started` or `assistant_thread_context_changed`: the user's pane (their
    DM `channel` with the app, its `thread_ts`) and the channel they are looking at."""
    context: dict[str, Any] = {"team_id": TEAM, "enterprise_id": None}
    if looking_at:
        context["channel_id"] = looking_at
    return {
        "type": kind,
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": new_ts(),
    }


def app_home_opened(user: str = "U0000USER", tab: str = "home") -> dict[str, Any]:
    """`app_home_opened`: `user` opened the app's Home (or Messages) tab."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D0000HOME",
        "tab": tab,
        "event_ts": new_ts(),
    }


def message_shortcut(
    callback_id: str,
    message: dict[str, Any],
    *,
    channel: str,
    user: str = "U0000USER",
    team: str = TEAM,
) -> dict[str, Any]:
    """The interactivity payload of a message shortcut used on `message` (Slack's
    `message_action`); sent form-encoded as `payload=<json>`."""
    return {
        "type": "message_action",
        "token": "legacy-verification-token",
        "action_ts": new_ts(),
        "team": {"id": team, "domain": "fake"},
        "user": {"id": user, "username": "pat", "team_id": team},
        "channel": {"id": channel, "name": "general"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "response_url": "https://hooks.slack.com/app/T0000TEAM/1/x",
        "message_ts": message["ts"],
        "message": {k: v for k, v in message.items() if k not in ("channel", "event_ts")},
    }
