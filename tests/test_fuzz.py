"""Hostile input against POST /slack/events (hypothesis): no 5xx, no crash, no work when unsigned.

The real ASGI app is driven in-process through httpx's ASGITransport, with the fake Slack and
Azure servers behind it and the embedded store, so thousands of requests run in seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import SlackBot, build_asgi, build_slack_bot
from bot.settings import load_settings
from fakes.azure import FakeAzure
from fakes.slack import TEAM, FakeSlack
from fakes.slack_requests import SIGNING_SECRET, envelope, mention, sign

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
COUNTS: dict[str, int] = {}
HEADER_CHARS = st.characters(min_codepoint=32, max_codepoint=126)


@dataclass
class App:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    bot: SlackBot

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.loop.run_until_complete(
            self.client.post("/slack/events", content=body, headers=headers)
        )

    def finish_turns(self) -> None:
        """Let every turn started so far run to its end: the loop runs only inside `post`, so
        without this a turn a request wrongly started would not have reached Azure yet."""
        assert self.loop.run_until_complete(self.bot.runner.drain(10)) == 0


@pytest.fixture(scope="module")
def app(fake_azure: FakeAzure, fake_slack: FakeSlack) -> Iterator[App]:
    loop = asyncio.new_event_loop()
    settings_ = load_settings(
        _env_file=None,
        azure_openai_endpoint=fake_azure.endpoint,
        azure_openai_key=fake_azure.key,
        slack_bot_token=fake_slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.api_url,
        bot_admin_user_ids="UADMIN",
    )
    bot = build_slack_bot(settings_)
    loop.run_until_complete(bot.start())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_asgi(bot)), base_url="http://bot"
    )
    yield App(loop, client, bot)
    loop.run_until_complete(bot.runner.drain(10))
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(bot.shutdown())
    loop.close()
    print("\nfuzz cases per test:", COUNTS)


@pytest.fixture(autouse=True)
def _earlier_turns_finished(app: App) -> None:
    """Turns an earlier test started have ended before this test's journals are cleared."""
    app.finish_turns()


def count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def signed(
    body: bytes, content_type: str = "application/json", ts: int | None = None
) -> dict[str, str]:
    now = int(time.time()) if ts is None else ts
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(now),
        "X-Slack-Signature": sign(body.decode("utf-8", "replace"), now),
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
            "multipart/form-data",
        ]
    ),
)
def test_fuzz_unsigned_garbage_is_refused_without_work(
    app: App, azure: FakeAzure, slack: FakeSlack, body: bytes, content_type: str
) -> None:
    """Random bytes with no valid signature: 4xx, never 5xx, never an Azure call or a post."""
    count("unsigned")
    headers = {"Content-Type": content_type} if content_type else {}
    response = app.post(body, headers)
    assert 400 <= response.status_code < 500 or (
        response.status_code == 200 and body.startswith(b"ssl_check")
    )
    app.finish_turns()
    assert azure.completions == []
    assert slack.calls_to("chat.postMessage") == []


@FUZZ
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain"]
    ),
)
def test_fuzz_signed_garbage_never_5xx(app: App, body: bytes, content_type: str) -> None:
    """Correctly signed but malformed bodies: an answer below 500, and the app keeps serving."""
    count("signed_bytes")
    response = app.post(body, signed(body, content_type))
    assert response.status_code < 500


@FUZZ
@given(
    event=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "text",
                "user",
                "ts",
                "thread_ts",
                "channel",
                "subtype",
                "bot_id",
                "edited",
                "channel_type",
                "event_ts",
            ]
        ),
        json_values,
        max_size=8,
    ),
    top=st.dictionaries(
        st.sampled_from(["team_id", "event_id", "type", "authorizations"]), json_values, max_size=3
    ),
)
def test_fuzz_signed_events_with_wrong_types_never_5xx(app: App, event: dict, top: dict) -> None:  # type: ignore[type-arg]
    """Events with missing or wrongly typed fields and unknown types: 200 or 4xx, no crash."""
    count("signed_events")
    payload = envelope(event)
    payload.update(top)
    body = json.dumps(payload).encode()
    response = app.post(body, signed(body))
    assert response.status_code < 500


@FUZZ
@given(
    ts=st.one_of(st.text(HEADER_CHARS, max_size=12), st.integers(-(10**12), 10**12).map(str)),
    sig=st.one_of(st.text(HEADER_CHARS, max_size=80), st.just("v0=" + "0" * 64)),
)
def test_fuzz_bad_signatures_and_timestamps_get_401(
    app: App, azure: FakeAzure, slack: FakeSlack, ts: str, sig: str
) -> None:
    """Any timestamp/signature pair that is not Slack's gets 401, including non-integers."""
    count("bad_signature")
    body = json.dumps(envelope(mention("sneaky"))).encode()
    response = app.post(
        body,
        {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
        },
    )
    assert response.status_code == 401
    app.finish_turns()
    assert azure.completions == []
    assert slack.calls_to("chat.postMessage") == []


def test_replayed_request_outside_window_gets_401(
    app: App, azure: FakeAzure, slack: FakeSlack
) -> None:
    """A correctly signed request replayed 6 minutes later, or dated 6 minutes ahead, is refused."""
    body = json.dumps(envelope(mention("replay"))).encode()
    for offset in (-360, 360):
        assert app.post(body, signed(body, ts=int(time.time()) + offset)).status_code == 401
    app.finish_turns()
    assert azure.completions == []
    assert slack.calls_to("chat.postMessage") == []
    # the same request, signed now, is a turn: what the checks above would have caught
    assert app.post(body, signed(body)).status_code == 200
    app.finish_turns()
    assert [c.body["messages"][-1]["content"] for c in azure.completions] == ["Pat: replay"]


def test_oversized_body_gets_413(app: App) -> None:
    """Bodies over the size limit are refused before parsing."""
    body = b"{" + b" " * 1_200_000 + b"}"
    assert app.post(body, signed(body)).status_code == 413


def test_oversized_streamed_body_gets_413(app: App) -> None:
    """Without a Content-Length the limit still holds: reading stops at the first chunk past it."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 100_000

    response = app.loop.run_until_complete(
        app.client.post(
            "/slack/events", content=chunks(), headers={"Content-Type": "application/json"}
        )
    )
    assert response.status_code == 413
    assert response.json() == {"error": "request too large"}


def test_events_endpoint_answers_other_methods_with_405(app: App) -> None:
    """GET /slack/events is 405 with `Allow: POST`; other paths still reach their routes."""
    response = app.loop.run_until_complete(app.client.get("/slack/events"))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert app.loop.run_until_complete(app.client.get("/healthz")).text == "ok"
    assert app.loop.run_until_complete(app.client.get("/nowhere")).status_code == 404


@FUZZ
@given(text=st.text(max_size=300))
def test_fuzz_slash_command_text(app: App, text: str) -> None:
    """Any /gpt text from admin or user gets a 200 ephemeral reply and never a 5xx."""
    count("slash_text")
    for user in ("UADMIN", "UOTHER"):
        form = urlencode(
            {
                "token": "t",
                "team_id": TEAM,
                "channel_id": "CFUZZ",
                "user_id": user,
                "command": "/gpt",
                "text": text,
                "trigger_id": "1.2.3",
                "response_url": "https://hooks.slack.com/x",
            }
        ).encode()
        response = app.post(form, signed(form, "application/x-www-form-urlencoded"))
        assert response.status_code == 200, response.text
        assert response.json()["response_type"] == "ephemeral"
