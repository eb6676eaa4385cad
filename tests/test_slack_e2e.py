"""End to end: `python -m bot serve`, a real redis-server, the fake Slack Web API and fake Azure.

Every request is signed exactly as Slack signs it (`fakes.slack_requests`): HMAC-SHA256 over
`v0:<timestamp>:<raw body>`, with events shaped as the Events API delivers them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from fakes.azure import BAD_KEY, DEPLOYMENT_NOT_FOUND, FakeAzure, Fault
from fakes.redis_server import RedisServer
from fakes.slack import BOT_ID, BOT_USER, FakeSlack, SlackFault, context_text, message_text
from fakes.slack_requests import SIGNING_SECRET, mention, message, new_ts, sign
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    stored_thread,
    turns,
    wait_for_turns,
    wait_until,
)


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    proc = BotProcess(
        bot_env(
            fake_azure,
            fake_slack,
            redis_server.url,
            AZURE_OPENAI_MAX_RETRIES="2",
            BOT_MAX_TOKENS="16000",
            BOT_CONTEXT_WINDOW="128000",
        )
    ).wait_ready()
    yield proc
    proc.stop()


def test_mention_gets_one_reply_in_thread_with_usage(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """@bot question → one reply in the mention's thread with the answer and three usage numbers."""
    before = turns(bot)
    event = mention("what is a monad?", channel="C1")
    assert bot.send_event(event).status_code == 200
    (reply,) = final_thread(slack, "C1", event["ts"])
    assert message_text(reply) == "Answer to: Pat: what is a monad?"
    usage = context_text(reply)
    assert "prompt " in usage and "completion " in usage and "total " in usage
    assert "gpt-35-turbo" in usage
    body = azure.completions[-1].body
    assert body["messages"][-1] == {"role": "user", "content": "Pat: what is a monad?"}
    assert len(body["user"]) == 32  # hashed Slack user id, not the id itself
    wait_for_turns(bot, before, ok=1)
    assert len(slack.thread("C1", event["ts"])) == 1
    assert len(azure.completions) == 1


def test_followup_without_mention_sees_earlier_turns(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A plain reply in an engaged thread is answered with the earlier turns, in order."""
    before = turns(bot)
    first = mention("first question", channel="C2")
    bot.send_event(first)
    final_thread(slack, "C2", first["ts"])
    bot.send_event(message("second question", channel="C2", thread_ts=first["ts"]))
    final_thread(slack, "C2", first["ts"], count=2)
    wait_for_turns(bot, before, ok=2)
    sent = [m["content"] for m in azure.completions[-1].body["messages"]]
    assert sent[1:] == [
        "Pat: first question",
        "Answer to: Pat: first question",
        "Pat: second question",
    ]


def test_plain_message_in_unengaged_thread_is_ignored(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Thread replies where the bot never answered are not the bot's business."""
    before = turns(bot)
    parent = new_ts()
    assert bot.send_event(message("chatting", channel="C3", thread_ts=parent)).status_code == 200
    # A mention later in the same thread queues behind anything the reply started, so once it
    # is answered the reply has been dealt with.
    bot.send_event(mention("now you", channel="C3", thread_ts=parent))
    (reply,) = final_thread(slack, "C3", parent)
    wait_for_turns(bot, before, ok=1)
    assert message_text(reply) == "Answer to: Pat: now you"
    (call,) = azure.completions
    assert call.body["messages"][-1]["content"] == "Pat: now you"


def test_redelivery_is_answered_once(bot: BotProcess, slack: FakeSlack, azure: FakeAzure) -> None:
    """The same event_id redelivered with X-Slack-Retry-Num gets no second answer."""
    before = turns(bot)
    redeliveries = bot.counter("slackgpt_slack_redeliveries_total")
    event = mention("retry me", channel="C4")
    assert bot.send_event(event, event_id="EvRETRY0001").status_code == 200
    assert (
        bot.send_event(event, event_id="EvRETRY0001", retry=(1, "http_timeout")).status_code == 200
    )
    assert bot.send_event(event, event_id="EvRETRY0001", retry=(2, "http_error")).status_code == 200
    final_thread(slack, "C4", event["ts"])
    wait_for_turns(bot, before, ok=1, duplicate=2)
    assert len(slack.thread("C4", event["ts"])) == 1
    assert len(azure.completions) == 1
    counted = bot.counter("slackgpt_slack_redeliveries_total") - redeliveries
    assert counted == {"http_timeout": 1, "http_error": 1}
    logs = bot.logs()
    assert "retry=1 retry_reason=http_timeout" in logs
    assert "retry=2 retry_reason=http_error" in logs


@pytest.mark.parametrize("stop", ["redelivered_after_answer", "empty_mention"])
def test_turn_that_stops_early_leaves_its_new_thread_unlocked(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, stop: str
) -> None:
    """A message that starts a thread takes the thread's lock in its first round trip. A turn
    that stops before answering (a redelivery that arrives after the answer, an empty mention)
    gives it back at once: the next question in the thread is answered in seconds, not after
    the lock's timeout (120 s here)."""
    channel = f"CEARLY{len(stop)}"
    before = turns(bot)
    first = mention("" if stop == "empty_mention" else "first", channel=channel)
    bot.send_event(first, event_id=f"EvEARLY{len(stop)}")
    final_thread(slack, channel, first["ts"])
    if stop == "redelivered_after_answer":
        bot.send_event(first, event_id=f"EvEARLY{len(stop)}", retry=(1, "http_timeout"))
        stopped = Counter(ok=1, duplicate=1)
    else:
        stopped = Counter(empty=1)
    wait_for_turns(bot, before, **stopped)
    bot.send_event(mention("next", channel=channel, thread_ts=first["ts"]))
    replies = final_thread(slack, channel, first["ts"], count=2, timeout=10)
    assert message_text(replies[-1]) == "Answer to: Pat: next"
    wait_for_turns(bot, before, **(stopped + Counter(ok=1)))


def test_late_redelivery_of_a_reply_does_not_hold_up_the_thread(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A reply joins its thread's queue when it arrives. Slack redelivering it after it was
    answered must not leave it queued again: the thread's next reply is answered at once, not
    after the queue's stale-waiter timeout (5 s)."""
    before = turns(bot)
    first = mention("start", channel="CLATE")
    bot.send_event(first)
    final_thread(slack, "CLATE", first["ts"])
    reply = mention("second", channel="CLATE", thread_ts=first["ts"])
    bot.send_event(reply, event_id="EvLATE0001")
    final_thread(slack, "CLATE", first["ts"], count=2)
    bot.send_event(reply, event_id="EvLATE0001", retry=(1, "http_timeout"))
    wait_for_turns(bot, before, ok=2, duplicate=1)
    started = time.monotonic()
    bot.send_event(mention("third", channel="CLATE", thread_ts=first["ts"]))
    final_thread(slack, "CLATE", first["ts"], count=3)
    assert time.monotonic() - started < 3
    wait_for_turns(bot, before, ok=3, duplicate=1)


def test_mention_in_thread_arrives_twice_answered_once(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """app_mention + message for one message inside an engaged thread → one answer."""
    before = turns(bot)
    first = mention("start", channel="C5")
    bot.send_event(first)
    final_thread(slack, "C5", first["ts"])
    ts = new_ts()
    again = mention("and now?", channel="C5", ts=ts, thread_ts=first["ts"])
    plain = message(again["text"], channel="C5", ts=ts, thread_ts=first["ts"])
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda e: bot.send_event(e).status_code, [plain, again]))
    assert codes == [200, 200]
    final_thread(slack, "C5", first["ts"], count=2)
    # A reply sent afterwards queues behind whatever either delivery started in the thread.
    bot.send_event(message("and then?", channel="C5", thread_ts=first["ts"]))
    msgs = final_thread(slack, "C5", first["ts"], count=3)
    wait_for_turns(bot, before, ok=3)
    assert [message_text(m) for m in msgs] == [
        "Answer to: Pat: start",
        "Answer to: Pat: and now?",
        "Answer to: Pat: and then?",
    ]
    assert len(azure.completions) == 3
    sent = [m["content"] for m in azure.completions[-1].body["messages"]]
    assert sent[1:] == [
        "Pat: start",
        "Answer to: Pat: start",
        "Pat: and now?",
        "Answer to: Pat: and now?",
        "Pat: and then?",
    ]


@pytest.mark.parametrize(
    "variant", ["own", "other_bot", "edit", "delete", "join", "edited_mention"]
)
def test_ignored_events_get_200_and_no_answer(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, variant: str
) -> None:
    """Bots (itself included), edits, deletions and joins are acked with 200 and not answered."""
    before = turns(bot)
    first = mention("engage", channel="C6")
    bot.send_event(first)
    final_thread(slack, "C6", first["ts"])
    azure.clear()
    t = first["ts"]
    events = {
        "own": message("my own reply", channel="C6", thread_ts=t, user=BOT_USER, bot_id=BOT_ID),
        "other_bot": message(
            "beep",
            channel="C6",
            thread_ts=t,
            user="UOTHERBOT",
            bot_id="B999",
            app_id="A999",
            bot_profile={"id": "B999"},
        ),
        "edit": {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": "C6",
            "ts": new_ts(),
            "event_ts": new_ts(),
            "channel_type": "channel",
            "message": {
                "type": "message",
                "text": "edited",
                "user": "U0000USER",
                "thread_ts": t,
                "edited": {"user": "U0000USER", "ts": "1710000000.000000"},
            },
            "previous_message": {"type": "message", "text": "orig", "user": "U0000USER", "ts": t},
        },
        "delete": {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": "C6",
            "ts": new_ts(),
            "deleted_ts": t,
            "event_ts": new_ts(),
            "channel_type": "channel",
            "previous_message": {"type": "message", "text": "gone", "user": "U0000USER", "ts": t},
        },
        "join": message(
            "<@U9> has joined the channel", channel="C6", subtype="channel_join", user="U9"
        ),
        "edited_mention": {
            **mention("engage", channel="C6", ts=first["ts"]),
            "edited": {"user": "U0000USER", "ts": "1710000000.000000"},
        },
    }
    response = bot.send_event(events[variant])
    assert response.status_code == 200
    # A reply sent afterwards queues behind anything the ignored event started in the thread.
    bot.send_event(message("still there?", channel="C6", thread_ts=t))
    msgs = final_thread(slack, "C6", t, count=2)
    wait_for_turns(bot, before, ok=2)
    assert [message_text(m) for m in msgs] == [
        "Answer to: Pat: engage",
        "Answer to: Pat: still there?",
    ]
    (call,) = azure.completions
    assert call.body["messages"][-1]["content"] == "Pat: still there?"


def test_unknown_event_type_gets_200(bot: BotProcess, slack: FakeSlack, azure: FakeAzure) -> None:
    """An event type the bot has no listener for is acked with 200, so Slack does not retry."""
    before = turns(bot)
    event = {
        "type": "reaction_added",
        "user": "U1",
        "reaction": "eyes",
        "event_ts": new_ts(),
        "item": {"type": "message", "channel": "C7", "ts": new_ts()},
    }
    assert bot.send_event(event).status_code == 200
    rate_limited = json.dumps(
        {
            "token": "x",
            "type": "app_rate_limited",
            "team_id": "T0000TEAM",
            "minute_rate_limited": 1518467820,
            "api_app_id": "A0000APP1",
        }
    )
    assert bot.post_raw(rate_limited).status_code == 200
    # A mention sent afterwards is a turn of its own: once it has ended, so has anything the
    # two requests above started.
    after = mention("after those", channel="C7")
    bot.send_event(after)
    final_thread(slack, "C7", after["ts"])
    wait_for_turns(bot, before, ok=1)
    (call,) = azure.completions
    assert call.body["messages"][-1]["content"] == "Pat: after those"
    assert [c.args["thread_ts"] for c in slack.calls_to("chat.postMessage")] == [after["ts"]]


def test_concurrent_messages_in_one_thread_all_answered_in_order(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_server: RedisServer
) -> None:
    """10 messages sent at once into one thread → 10 answers; history complete, pairs intact."""
    before = turns(bot)
    first = mention("root", channel="C8")
    bot.send_event(first)
    final_thread(slack, "C8", first["ts"])
    events = [message(f"q{i}", channel="C8", thread_ts=first["ts"]) for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda e: bot.send_event(e).status_code, events))
    assert codes == [200] * 10
    msgs = final_thread(slack, "C8", first["ts"], count=11, timeout=30)
    wait_for_turns(bot, before, ok=11)
    assert sorted(message_text(m) for m in msgs[1:]) == sorted(
        f"Answer to: Pat: q{i}" for i in range(10)
    )
    history = stored_thread(redis_server.url, f"T0000TEAM:C8:{first['ts']}")
    assert len(history) == 22
    for q, a in zip(history[::2], history[1::2], strict=True):
        assert q["role"] == "user" and a["role"] == "assistant"
        assert a["content"] == f"Answer to: Pat: {q['content']}"
    # each turn saw every turn before it: the prompts grow by one exchange each time
    sizes = sorted(len(r.body["messages"]) for r in azure.completions)
    assert sizes == list(range(2, 2 + 2 * 11, 2))


@pytest.mark.parametrize("case", ["bad", "missing", "stale", "future"])
def test_unsigned_or_stale_requests_get_401(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, case: str
) -> None:
    """Bad or missing signatures and timestamps over 5 minutes off get 401 and no work."""
    from fakes.slack_requests import envelope

    before = turns(bot)
    sneaky = mention("sneaky", channel="C9")
    body = json.dumps(envelope(sneaky))
    now = int(time.time())
    if case == "bad":
        response = bot.post_raw(body, signature=sign(body, now, "wrong-secret"))
    elif case == "missing":
        response = bot.http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/json"}
        )
    elif case == "stale":
        response = bot.post_raw(body, timestamp=now - 360)
    else:
        response = bot.post_raw(body, timestamp=now + 360)
    assert response.status_code == 401
    # A signed mention in the thread the refused one would have started queues behind any turn
    # it started: once it is answered, the refused request has been dealt with.
    bot.send_event(mention("signed", channel="C9", thread_ts=sneaky["ts"]))
    (reply,) = final_thread(slack, "C9", sneaky["ts"])
    wait_for_turns(bot, before, ok=1)
    assert message_text(reply) == "Answer to: Pat: signed"
    (call,) = azure.completions
    assert call.body["messages"][-1]["content"] == "Pat: signed"


def test_url_verification_is_answered(bot: BotProcess) -> None:
    """A signed url_verification gets its challenge back."""
    body = json.dumps(
        {
            "token": "t",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    response = bot.post_raw(body)
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ([Fault("status", status=401, body=BAD_KEY)], "rejected the bot's credentials"),
        ([Fault("status", status=404, body=DEPLOYMENT_NOT_FOUND)], "not the model name"),
        ([Fault("content_filter")], "content filter blocked your message (hate)"),
        ([Fault("rate_limit", retry_after_ms=200)], "Answer to: Pat: fault case"),
        ([Fault("server_error")] * 3, "unavailable"),
    ],
)
def test_azure_errors_become_their_message(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, faults: list[Fault], expected: str
) -> None:
    """Each Azure failure ends as its specific message (or the answer after a retried 429)."""
    azure.push(*faults)
    event = mention("fault case", channel="C10")
    bot.send_event(event)
    (reply,) = final_thread(slack, "C10", event["ts"], timeout=20)
    assert expected in message_text(reply)
    assert "Traceback" not in message_text(reply)
    assert azure.key not in json.dumps(reply)


def test_question_is_not_lost_after_an_error(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """After a failed turn, asking again in the thread works and history has no half turn."""
    first = mention("hello", channel="C11")
    bot.send_event(first)
    final_thread(slack, "C11", first["ts"])
    azure.push(Fault("content_filter"))
    bot.send_event(message("bad words", channel="C11", thread_ts=first["ts"]))
    final_thread(slack, "C11", first["ts"], count=2)
    bot.send_event(message("nicer words", channel="C11", thread_ts=first["ts"]))
    msgs = final_thread(slack, "C11", first["ts"], count=3)
    assert message_text(msgs[-1]) == "Answer to: Pat: nicer words"
    sent = [m["content"] for m in azure.completions[-1].body["messages"]]
    assert sent[1:] == ["Pat: hello", "Answer to: Pat: hello", "Pat: nicer words"]


def test_long_answer_arrives_complete_in_several_messages(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A 30,000-character answer is split under Slack's limits and nothing is lost."""
    paragraphs = [f"Paragraph {i}: " + ("lorem ipsum " * 40).strip() for i in range(60)]
    long = "\n\n".join(paragraphs)
    assert len(long) > 29_000
    azure.answer = lambda m: long
    event = mention("write a lot", channel="C12")
    bot.send_event(event)
    final_thread(slack, "C12", event["ts"], count=3, timeout=20)
    msgs = wait_until(lambda: (m := slack.thread("C12", event["ts"])) and context_text(m[-1]) and m)
    assert len(msgs) >= 3
    joined = "".join(message_text(m) for m in msgs)
    assert joined.replace("\n", "") == long.replace("\n", "")
    assert "total " in context_text(msgs[-1])
    assert all(context_text(m) == "" for m in msgs[:-1])


def test_slack_429_is_retried(bot: BotProcess, slack: FakeSlack, azure: FakeAzure) -> None:
    """chat.postMessage answering 429 with Retry-After is retried and the reply still arrives.
    (The placeholder's post: a streamed answer's own first post is a progress update, which is
    skipped rather than retried, so the status line is made to fail once, and not for good.)"""
    slack.fail("assistant.threads.setStatus", SlackFault(error="internal_error"))
    slack.fail("chat.postMessage", SlackFault(status=429, retry_after=1))
    event = mention("rate limited slack", channel="C13")
    bot.send_event(event)
    (reply,) = final_thread(slack, "C13", event["ts"], timeout=20)
    assert message_text(reply) == "Answer to: Pat: rate limited slack"
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) == 2 and posts[1].at - posts[0].at >= 0.9


def test_health_ready_and_metrics(bot: BotProcess, slack: FakeSlack, azure: FakeAzure) -> None:
    """/healthz and /readyz answer 200; /metrics exposes turns, latency, tokens and dedup."""
    event = mention("count me", channel="C14")
    bot.send_event(event)
    final_thread(slack, "C14", event["ts"])
    assert bot.http.get("/healthz").status_code == 200
    assert bot.http.get("/readyz").status_code == 200
    text = bot.http.get("/metrics").text
    for name in (
        "slackgpt_turns_total",
        "slackgpt_azure_latency_seconds_bucket",
        "slackgpt_tokens_total",
        "slackgpt_azure_retries_total",
        "slackgpt_dedup_hits_total",
    ):
        assert name in text
    assert 'slackgpt_turns_total{outcome="ok"}' in text


def test_secrets_never_in_logs(bot: BotProcess, slack: FakeSlack, azure: FakeAzure) -> None:
    """The process log holds no key, token or signing secret, after a turn of its own."""
    event = mention("log this", channel="C15")
    bot.send_event(event)
    final_thread(slack, "C15", event["ts"])
    logs = wait_until(lambda: event["ts"] in (text := bot.logs()) and text)  # its turn's line
    for secret in ("fake-azure-key-1", "xoxb-fake-bot-token", SIGNING_SECRET):
        assert secret not in logs


def test_direct_message_is_answered_without_mention(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """A DM (message.im) needs no mention; the answer starts a thread under it."""
    dm = message("hello in private", channel="D0000DM01", channel_type="im")
    assert bot.send_event(dm).status_code == 200
    (reply,) = final_thread(slack, "D0000DM01", dm["ts"])
    assert message_text(reply) == "Answer to: Pat: hello in private"
