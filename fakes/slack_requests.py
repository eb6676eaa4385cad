"""Requests exactly as Slack sends them: the v0 signature, the Events API envelope, and the
`app_mention` / `message` events the bot receives (shapes as in Slack's Events API docs)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from typing import Any

from fakes.slack import BOT_USER, TEAM

SIGNING_SECRET = "fake-signing-secret-8c1f"
_ids = itertools.count(1)
_ts = itertools.count(1)


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature over `v0:{timestamp}:{raw body}`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_ts() -> str:
    """A Slack message ts: always 10 digits, a dot and 6 digits, so text order is time order."""
    n = next(_ts)
    return f"{1_710_000_000 + n}.{n % 1_000_000:06d}"


def envelope(
    event: dict[str, Any], event_id: str | None = None, *, team: str = TEAM
) -> dict[str, Any]:
    """The Events API envelope of `event`, for the workspace `team`."""
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
                "enterprise_id": None,
                "team_id": team,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
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
) -> dict[str, Any]:
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "client_msg_id": f"msg-{ts}",
        "type": "app_mention",
        "text": f"<@{BOT_USER}> {text}",
        "user": user,
        "ts": ts,
        "team": TEAM,
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
                            {"type": "user", "user_id": BOT_USER},
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
