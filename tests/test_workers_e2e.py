"""`WEB_CONCURRENCY=2`: `python -m bot serve` runs two worker processes on one port, each a
replica of its own on the shared Redis; every mention is answered exactly once."""

from __future__ import annotations

import re

from fakes.azure import FakeAzure
from fakes.slack import FakeSlack, message_text
from fakes.slack_requests import mention
from tests.slackbot_harness import BotProcess, bot_env, final_thread, wait_until


def test_two_workers_share_the_port_and_answer_each_mention_once(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """Two worker processes serve; twelve mentions, redelivered once each, get twelve answers;
    SIGTERM stops them all."""
    bot = BotProcess(bot_env(azure, slack, redis_url, WEB_CONCURRENCY="2")).wait_ready()
    try:
        workers = wait_until(
            lambda: len(set(re.findall(r"Started server process \[(\d+)\]", bot.logs()))) == 2
        )
        assert workers
        events = [mention(f"question {i}", channel="CWORK") for i in range(12)]
        for i, event in enumerate(events):
            assert bot.send_event(event, event_id=f"EvWORK{i}").status_code == 200
            retry = (1, "http_timeout")
            assert bot.send_event(event, event_id=f"EvWORK{i}", retry=retry).status_code == 200
        for i, event in enumerate(events):
            (reply,) = final_thread(slack, "CWORK", event["ts"])
            assert message_text(reply) == f"Answer to: Pat: question {i}"
        assert len(azure.completions) == 12
    finally:
        code = bot.stop()
    assert code in (0, -15), bot.logs()[-2000:]
    assert "Traceback" not in bot.logs()
