"""`LeanWebClient`: slack_sdk's client with JSON POSTs sent directly, against the fake Web API —
same responses and errors, Slack's rate limits honoured, 5xx never retried."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from bot.slack_client import LeanWebClient
from fakes.slack import FakeSlack, SlackFault


async def client_for(slack: FakeSlack, **kw: object) -> LeanWebClient:
    client = LeanWebClient(token=slack.token, base_url=slack.api_url, **kw)  # type: ignore[arg-type]
    client.session = aiohttp.ClientSession()
    return client


async def test_lean_client_posts_json_with_the_token_and_defaults(slack: FakeSlack) -> None:
    """A JSON method posts its arguments (plus client defaults such as team_id) with the bot
    token, and returns slack_sdk's response."""
    client = await client_for(slack, team_id="T9")
    try:
        response = await client.chat_postMessage(channel="C1", thread_ts="1.1", text="hé")
    finally:
        await client.session.close()  # type: ignore[union-attr]
    assert response["ok"] is True and response["ts"]
    (call,) = slack.calls_to("chat.postMessage")
    assert call.args["text"] == "hé" and call.args["team_id"] == "T9"
    assert call.headers["Authorization"] == f"Bearer {slack.token}"
    assert call.headers["Content-Type"].startswith("application/json")


async def test_lean_client_raises_slack_api_error_and_never_retries_a_5xx(
    slack: FakeSlack,
) -> None:
    """`ok: false` raises SlackApiError with Slack's error; a 500 is raised, not retried (a
    retried post could post twice)."""
    client = await client_for(slack)
    slack.fail("chat.postMessage", SlackFault(error="channel_not_found"))
    slack.fail("chat.update", SlackFault(status=500))
    try:
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel="C1", text="x")
        with pytest.raises(SlackApiError) as broken:
            await client.chat_update(channel="C1", ts="1.1", text="x")
    finally:
        await client.session.close()  # type: ignore[union-attr]
    assert refused.value.response["error"] == "channel_not_found"
    assert broken.value.response.status_code == 500
    assert len(slack.calls_to("chat.update")) == 1


async def test_lean_client_waits_out_rate_limits_only_when_told_to(slack: FakeSlack) -> None:
    """A 429 is retried after Retry-After by the main client; the streaming one gives up."""
    patient = await client_for(slack)
    hasty = await client_for(slack, rate_limit_retries=0)
    slack.fail("chat.postMessage", SlackFault(status=429, retry_after=1))
    slack.fail("chat.update", SlackFault(status=429, retry_after=1))
    try:
        posted = await patient.chat_postMessage(channel="C1", text="after the wait")
        with pytest.raises(SlackApiError) as limited:
            await hasty.chat_update(channel="C1", ts=posted["ts"], text="now")
    finally:
        await patient.session.close()  # type: ignore[union-attr]
        await hasty.session.close()  # type: ignore[union-attr]
    assert posted["ok"] is True
    calls = slack.calls_to("chat.postMessage")
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 1.0
    assert limited.value.response["error"] == "ratelimited"
