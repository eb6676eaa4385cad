"""No question lost when a replica dies: `python -m bot` replicas on one real redis-server, one of
them SIGKILLed after acking a mention (Slack never redelivers it), before acking one (Slack
retries it), or in Socket Mode; a live replica answers each exactly once, in the dead one's
placeholder when there is one. (That a dead replica's claims lapse within its lease, so a retry
is not refused for minutes, is pinned in tests/test_journal.py.)"""

from __future__ import annotations

import signal
import threading
from collections import Counter

import httpx

from fakes.azure import FakeAzure
from fakes.slack import FakeSlack, message_text
from fakes.slack_requests import envelope, mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, wait_for_turns, wait_until

LEASE = "2"
"""Seconds a dead replica's hold lasts; a takeover follows within about that plus a third."""


def replicas(
    azure: FakeAzure, slack: FakeSlack, redis_url: str, first_url: str | None = None
) -> tuple[BotProcess, BotProcess]:
    env = bot_env(azure, slack, redis_url, BOT_LEASE_SECONDS=LEASE, BOT_STREAM="false")
    first = BotProcess({**env, "REDIS_URL": first_url or redis_url}).wait_ready()
    return first, BotProcess(env).wait_ready()


def kill(bot: BotProcess) -> None:
    bot.proc.send_signal(signal.SIGKILL)
    bot.proc.wait(10)


def test_replica_killed_after_its_ack_is_replaced_in_its_placeholder(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """A acks a mention, posts "Thinking…" (the workspace refuses Slack's status line), is
    killed while Azure thinks; B takes the turn over and answers in A's placeholder: one
    message, one answer, and a late redelivery is a duplicate."""
    slack.refuse("assistant.threads.setStatus", "missing_scope")
    a, b = replicas(azure, slack, redis_url)
    try:
        azure.first_token_delay = 30.0
        event = mention("will you survive?", channel="CTAKE1")
        assert a.send_event(event, event_id="EvTAKE1").status_code == 200
        wait_until(lambda: azure.completions and slack.thread("CTAKE1", event["ts"]))
        (placeholder,) = slack.thread("CTAKE1", event["ts"])
        kill(a)
        azure.first_token_delay = 0.0
        (reply,) = final_thread(slack, "CTAKE1", event["ts"], timeout=30)
        assert reply["ts"] == placeholder["ts"]
        assert message_text(reply) == "Answer to: Pat: will you survive?"
        assert b.metric("slackgpt_takeovers_total") == 1
        before = Counter({"ok": 1})
        wait_for_turns(b, Counter(), ok=1)
        assert b.send_event(event, event_id="EvTAKE1", retry=(3, "http_timeout")).status_code == 200
        wait_for_turns(b, before, duplicate=1)
        assert len(slack.thread("CTAKE1", event["ts"])) == 1
        assert len(slack.calls_to("chat.postMessage")) == 1  # A's placeholder, nothing more
    finally:
        a.stop(), b.stop()


def test_replica_killed_under_a_status_line_is_replaced_by_one_answer(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """Where Slack shows a status line instead of a placeholder, the taker answers with the one
    message of the turn: nothing of the dead replica's is left in the thread."""
    a, b = replicas(azure, slack, redis_url)
    try:
        azure.first_token_delay = 30.0
        event = mention("status, then gone", channel="CTAKE4")
        assert a.send_event(event).status_code == 200
        wait_until(lambda: azure.completions)
        assert slack.calls_to("assistant.threads.setStatus")
        assert slack.thread("CTAKE4", event["ts"]) == []
        kill(a)
        azure.first_token_delay = 0.0
        (reply,) = final_thread(slack, "CTAKE4", event["ts"], timeout=30)
        assert message_text(reply) == "Answer to: Pat: status, then gone"
        assert b.metric("slackgpt_takeovers_total") == 1
    finally:
        a.stop(), b.stop()


def test_replica_killed_before_its_ack_lets_slacks_retry_be_answered(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """A dies holding a request it never acked (over HTTP the ack goes out before the admission
    is written, so nothing of it is in Redis): Slack's retry to B is answered at once."""
    a, b = replicas(azure, slack, redis_url)
    try:
        event = mention("did you get that?", channel="CTAKE2")
        a.proc.send_signal(signal.SIGSTOP)  # A will never read the request
        failed: list[BaseException] = []

        def send() -> None:
            try:
                a.send_event(event, event_id="EvTAKE2")
            except httpx.HTTPError as exc:
                failed.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        wait_until(lambda: a.http_pending())
        kill(a)
        sender.join(10)
        assert failed  # Slack never got its 200: it retries
        assert b.send_event(event, event_id="EvTAKE2", retry=(1, "http_timeout")).status_code == 200
        (reply,) = final_thread(slack, "CTAKE2", event["ts"])
        assert message_text(reply) == "Answer to: Pat: did you get that?"
        assert b.metric("slackgpt_takeovers_total") == 0
    finally:
        a.stop(), b.stop()


def test_socket_mode_replica_killed_after_its_ack_is_replaced(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """The same holds for a Socket Mode replica: it acks the envelope, dies, and an HTTP
    replica on the same Redis answers in its placeholder."""
    slack.refuse("assistant.threads.setStatus", "missing_scope")
    env = bot_env(azure, slack, redis_url, BOT_LEASE_SECONDS=LEASE, BOT_STREAM="false")
    socket_env = {**env, "SLACK_APP_TOKEN": slack.app_token}
    socket_env.pop("SLACK_SIGNING_SECRET")
    a = BotProcess(socket_env, args=("socket",))
    b = BotProcess(env).wait_ready()
    try:
        slack.wait_for_socket(timeout=20)
        azure.first_token_delay = 30.0
        event = mention("socket, then gone", channel="CTAKE3")
        envelope_id = slack.push_envelope(envelope(event))
        wait_until(lambda: any(ack["envelope_id"] == envelope_id for ack in slack.socket_acks))
        wait_until(lambda: azure.completions and slack.thread("CTAKE3", event["ts"]))
        (placeholder,) = slack.thread("CTAKE3", event["ts"])
        kill(a)
        azure.first_token_delay = 0.0
        (reply,) = final_thread(slack, "CTAKE3", event["ts"], timeout=30)
        assert reply["ts"] == placeholder["ts"]
        assert message_text(reply) == "Answer to: Pat: socket, then gone"
    finally:
        a.stop(), b.stop()


def test_replica_killed_while_streaming_is_replaced_in_its_streamed_message(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """Under a status line a streamed answer posts a message of its own with its first words;
    a replica killed after that is replaced in that message (its ts is kept with the turn): the
    thread ends with one message, the full answer."""
    env = bot_env(azure, slack, redis_url, BOT_LEASE_SECONDS=LEASE, BOT_STREAM="true")
    a, b = BotProcess(env).wait_ready(), BotProcess(env).wait_ready()
    try:
        azure.token_delay = 0.5
        event = mention("tell me slowly", channel="CTAKE5")
        assert a.send_event(event).status_code == 200
        wait_until(lambda: slack.thread("CTAKE5", event["ts"]), timeout=30)
        (streamed,) = slack.thread("CTAKE5", event["ts"])
        wait_until(lambda: a.metric("slackgpt_turns_total") == 0 and _journaled(redis_url))
        kill(a)
        azure.token_delay = 0.0
        wait_until(lambda: b.metric("slackgpt_takeovers_total") == 1, timeout=30)
        wait_for_turns(b, Counter(), ok=1)
        (reply,) = slack.thread("CTAKE5", event["ts"])
        assert reply["ts"] == streamed["ts"]
        assert message_text(reply) == "Answer to: Pat: tell me slowly"
    finally:
        a.stop(), b.stop()


def _journaled(redis_url: str) -> bool:
    """The turn's journal entry holds the streamed message's ts (kept in the background)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return any(client.hget(key, "placeholder") for key in client.scan_iter("*:turn:{*"))
    finally:
        client.close()
