"""Several replicas, Redis outages, graceful shutdown and Socket Mode, end to end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from fakes.azure import FakeAzure, Fault
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, SlackFault, context_text, message_text
from fakes.slack_requests import envelope, mention, message
from tests.conftest import _need_redis_server
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    wait_for_turns,
    wait_until,
)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, so it can be stopped and restarted."""
    _need_redis_server()
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def test_same_event_to_two_replicas_is_answered_once(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """One event delivered to two processes sharing Redis, at the same moment → one answer."""
    a = BotProcess(bot_env(azure, slack, redis_url))
    b = BotProcess(bot_env(azure, slack, redis_url))
    try:
        a.wait_ready()
        b.wait_ready()
        events = [mention(f"shared {i}", channel="CR1") for i in range(10)]
        with ThreadPoolExecutor(4) as pool:
            jobs = []
            for i, ev in enumerate(events):
                jobs.append(pool.submit(a.send_event, ev, event_id=f"EvDUAL{i:04d}"))
                jobs.append(
                    pool.submit(
                        b.send_event, ev, event_id=f"EvDUAL{i:04d}", retry=(1, "http_timeout")
                    )
                )
            assert [j.result().status_code for j in jobs] == [200] * 20
        # every delivery has ended as a turn of one replica or the other
        wait_for_turns([a, b], Counter(), ok=10, duplicate=10)
        assert all(len(slack.thread("CR1", ev["ts"])) == 1 for ev in events)
        assert all(final_thread(slack, "CR1", ev["ts"], timeout=0) for ev in events)
        assert len(azure.completions) == 10
    finally:
        a.stop()
        b.stop()


def test_redis_outage_is_reported_and_service_resumes(
    azure: FakeAzure, slack: FakeSlack, own_redis: RedisServer
) -> None:
    """Redis lost under load: acks still 200 in time, every user told, /readyz 503, process
    alive; Redis back: answers resume."""
    bot = BotProcess(bot_env(azure, slack, own_redis.url)).wait_ready("/readyz")
    try:
        azure.first_token_delay = 1.5  # Azure answers the first turns after Redis has gone
        before = [mention(f"before {i}", channel="CR2") for i in range(20)]
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda e: bot.send_event(e).status_code, before)) == {200}
        wait_until(lambda: len(azure.completions) == 20)  # every turn is waiting on Azure
        own_redis.stop()
        assert not [r for r in azure.completions if r.finished], "Azure answered before Redis left"
        wait_until(lambda: bot.http.get("/readyz").status_code == 503)
        during = [mention(f"during {i}", channel="CR2") for i in range(20)]
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda e: bot.send_event(e).status_code, during))
        assert codes == [200] * 20
        assert time.monotonic() - started < 3
        for event in during:
            (reply,) = final_thread(slack, "CR2", event["ts"])
            assert "can't reach my memory" in message_text(reply)
        for event in before:  # Azure answered, but the turn could not be saved: the user is told
            (reply,) = final_thread(slack, "CR2", event["ts"])
            assert "can't reach my memory" in message_text(reply)
        assert bot.proc.poll() is None
        assert bot.http.get("/readyz").status_code == 503
        own_redis.start()
        wait_until(lambda: bot.http.get("/readyz").status_code == 200, timeout=20)
        azure.first_token_delay = 0.0
        again = mention("and now?", channel="CR2")
        bot.send_event(again)
        (reply,) = final_thread(slack, "CR2", again["ts"])
        assert message_text(reply) == "Answer to: Pat: and now?"
    finally:
        bot.stop()


def test_sigterm_lets_in_flight_turns_finish(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """SIGTERM while Azure is still thinking: the answer is still posted, then the process exits.

    uvicorn re-raises the captured SIGTERM after its graceful shutdown, so the exit status is
    "terminated by SIGTERM" (-15), which is what process supervisors expect."""
    azure.first_token_delay = 1.5
    bot = BotProcess(bot_env(azure, slack, redis_url)).wait_ready()
    event = mention("slow one", channel="CR3")
    assert bot.send_event(event).status_code == 200
    wait_until(lambda: slack.statuses.get(("CR3", event["ts"])))  # the turn is under way
    code = bot.stop()
    assert code == -15
    assert "Application shutdown complete" in bot.logs()
    (reply,) = slack.thread("CR3", event["ts"])
    assert message_text(reply) == "Answer to: Pat: slow one"
    assert "total " in context_text(reply)


@pytest.mark.parametrize("error", ["channel_not_found", "invalid_auth", "not_in_channel"])
def test_slack_refusals_are_logged_not_fatal(
    azure: FakeAzure, slack: FakeSlack, redis_url: str, error: str
) -> None:
    """Slack refusing the channel (the status line, then the placeholder) is logged; no Azure
    call is wasted, the process keeps serving, and the status line is tried again next time."""
    bot = BotProcess(bot_env(azure, slack, redis_url)).wait_ready()
    try:
        slack.fail("assistant.threads.setStatus", SlackFault(error=error))
        slack.fail("chat.postMessage", SlackFault(error=error))
        event = mention("hello?", channel="CR4")
        assert bot.send_event(event).status_code == 200
        wait_for_turns(bot, Counter(), slack_error=1)
        assert error in bot.logs()
        assert azure.completions == []
        again = mention("hello again", channel="CR4")
        bot.send_event(again)
        (reply,) = final_thread(slack, "CR4", again["ts"])
        assert message_text(reply) == "Answer to: Pat: hello again"
        assert len(slack.calls_to("assistant.threads.setStatus")) == 2
    finally:
        bot.stop()


def test_slack_5xx_on_post_is_not_retried_forever(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """A 500 from Slack (status line, then placeholder) ends the turn with a log line, not a
    loop."""
    bot = BotProcess(bot_env(azure, slack, redis_url)).wait_ready()
    try:
        slack.fail("assistant.threads.setStatus", SlackFault(status=500))
        slack.fail("chat.postMessage", SlackFault(status=500))
        event = mention("server error", channel="CR5")
        bot.send_event(event)
        wait_for_turns(bot, Counter(), slack_error=1)
        assert len(slack.calls_to("chat.postMessage")) == 1
        assert azure.completions == []
        assert bot.proc.poll() is None
    finally:
        bot.stop()


def test_socket_mode_answers_a_mention(azure: FakeAzure, slack: FakeSlack, redis_url: str) -> None:
    """`python -m bot socket` connects via apps.connections.open and answers a pushed mention."""
    env = bot_env(azure, slack, redis_url, SLACK_APP_TOKEN=slack.app_token)
    env.pop("SLACK_SIGNING_SECRET")
    bot = BotProcess(env, args=("socket",))
    try:
        slack.wait_for_socket(timeout=20)
        event = mention("via websocket", channel="CS1")
        envelope_id = slack.push_envelope(envelope(event))
        (reply,) = final_thread(slack, "CS1", event["ts"])
        assert message_text(reply) == "Answer to: Pat: via websocket"
        wait_until(lambda: any(ack["envelope_id"] == envelope_id for ack in slack.socket_acks))
        assert len(slack.calls_to("apps.connections.open")) >= 1
    finally:
        assert bot.stop() == 0
    assert "Socket Mode: stopping" in bot.logs()


def test_python_m_bot_picks_socket_mode_when_app_token_set(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """`python -m bot` without a command uses Socket Mode when SLACK_APP_TOKEN is set."""
    # SLACK_SIGNING_SECRET is set too, so HTTP mode was possible.
    env = bot_env(azure, slack, redis_url, SLACK_APP_TOKEN=slack.app_token)
    bot = BotProcess(env, args=())  # no command after `python -m bot`
    try:
        wait_until(lambda: slack.socket_connections == 1, timeout=20)
        (opened,) = slack.calls_to("apps.connections.open")
        assert opened.headers["Authorization"] == f"Bearer {slack.app_token}"
    finally:
        assert bot.stop() == 0
    assert "Socket Mode: stopping" in bot.logs()


def test_serve_refuses_to_start_without_signing_secret(azure: FakeAzure, slack: FakeSlack) -> None:
    """HTTP mode without SLACK_SIGNING_SECRET exits 2 naming the setting."""
    env = bot_env(azure, slack, None)
    env.pop("SLACK_SIGNING_SECRET")
    bot = BotProcess(env)
    assert bot.proc.wait(30) == 2
    assert "SLACK_SIGNING_SECRET" in bot.logs()
    bot.stop()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("timeout"), "unavailable or timed out"),
        # streamed: what arrived before the filter stopped it stays, with a note in the usage line
        (Fault("completion_filter"), "the rest was blocked by the content filter"),
        (Fault("cut_stream", after_words=0), "cut off"),
    ],
)
def test_azure_faults_end_with_a_message_and_no_placeholder(
    azure: FakeAzure, slack: FakeSlack, redis_url: str, fault: Fault, expected: str
) -> None:
    """A timeout, a filtered completion and a stream cut at once: the placeholder becomes the
    specific message, and asking again in the thread works."""
    env = bot_env(azure, slack, redis_url, AZURE_OPENAI_TIMEOUT="1", AZURE_OPENAI_MAX_RETRIES="0")
    bot = BotProcess(env).wait_ready()
    try:
        azure.push(fault)
        event = mention("risky", channel="CR6")
        bot.send_event(event)
        (reply,) = final_thread(slack, "CR6", event["ts"], timeout=20)
        assert expected in message_text(reply) + context_text(reply)
        bot.send_event(message("again", channel="CR6", thread_ts=event["ts"]))
        msgs = final_thread(slack, "CR6", event["ts"], count=2, timeout=20)
        assert message_text(msgs[-1]) == "Answer to: Pat: again"
    finally:
        bot.stop()
