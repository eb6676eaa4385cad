"""The Bolt behaviours and internals the bot's HTTP fast path relies on, pinned.

`bot.web` works around Bolt's form parser and rebuilds Bolt's context with
`slack_bolt.request.async_internals.build_async_context`; `bot.slack_app.event_team` reads the
workspace the way Bolt's `extract_team_id` does; the events middleware returns a `BoltResponse`
and reads `context.bot_user_id`/`context.team_id`. If a Bolt upgrade changes any of these, a test
here fails, not production.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.web import bolt_request

COMMAND = {
    "token": "t",
    "team_id": "T1",
    "channel_id": "C1",
    "channel_name": "payloads",
    "user_id": "U1",
    "command": "/gpt",
    "text": "set system payload rules",
}


def test_bolt_still_misparses_form_bodies_containing_payload() -> None:
    """Bolt parses a command whose text contains `payload` to `{}` (the bug `bot.web` works
    around); when this fails, Bolt fixed it and the workaround can go."""
    raw = urlencode(COMMAND)
    request = AsyncBoltRequest(
        body=raw, headers={"content-type": ["application/x-www-form-urlencoded"]}
    )
    assert request.body == {}


def test_bolt_request_workaround_restores_the_command_and_its_context() -> None:
    """`bolt_request` gives Bolt the real form fields and a context built from them by Bolt's
    own `build_async_context`."""
    raw = urlencode(COMMAND)
    request = bolt_request(raw, "", {"content-type": "application/x-www-form-urlencoded"})
    assert request.body["text"] == "set system payload rules"
    assert request.body["command"] == "/gpt"
    assert (request.context.team_id, request.context.channel_id, request.context.user_id) == (
        "T1",
        "C1",
        "U1",
    )


def test_build_async_context_reads_team_channel_and_user_of_a_command() -> None:
    """The Bolt internal the workaround calls still fills the context from a command body."""
    context = build_async_context(AsyncBoltContext({}), COMMAND)
    assert (context.team_id, context.channel_id, context.user_id) == ("T1", "C1", "U1")


def test_bolt_request_leaves_json_and_real_payload_forms_alone() -> None:
    """Events (JSON) and interactivity (`payload=`) bodies are parsed by Bolt as usual."""
    event = json.dumps({"type": "event_callback", "team_id": "T1", "event": {"type": "x"}})
    as_json = bolt_request(event, "", {"content-type": "application/json"})
    assert as_json.body["team_id"] == "T1"
    action = urlencode({"payload": json.dumps({"type": "block_actions", "team": {"id": "T1"}})})
    interactive = bolt_request(action, "", {"content-type": "application/x-www-form-urlencoded"})
    assert interactive.body["type"] == "block_actions"
