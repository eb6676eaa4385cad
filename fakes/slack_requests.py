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
    return f"1710000{next(_ts):03d}.{next(_ts):06d}"


def envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0000APP1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM,
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
