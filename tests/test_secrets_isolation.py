"""Secrets never leave the process; teams never see each other's threads, settings or usage."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import redis as redis_sync

from fakes.azure import FakeAzure, Fault, count_tokens
from fakes.slack import FakeSlack, SlackFault
from fakes.slack_requests import SIGNING_SECRET, envelope, mention, sign
from tests.slackbot_harness import BotProcess, bot_env, final_thread, wait_for_turns, wait_until

WRONG_KEY = "sk-RECOGNISABLE-wrong-azure-key-7d1e"


def test_secrets_absent_from_logs_posts_metrics_and_errors(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """Run turns, errors and debug logging; no key, token or signing secret appears anywhere."""
    secrets = [azure.key, slack.token, SIGNING_SECRET, WRONG_KEY]
    env = bot_env(azure, slack, redis_url, BOT_LOG_LEVEL="DEBUG", AZURE_OPENAI_KEY_2=WRONG_KEY)
    bot = BotProcess(env).wait_ready()
    outputs: list[str] = []
    try:
        for fault in (
            None,
            Fault(
                "status", status=401, body={"error": {"code": "401", "message": "Access denied"}}
            ),
            Fault("content_filter"),
            Fault("server_error"),
            Fault("bad_json"),
        ):
            if fault:
                azure.push(fault)
            event = mention("tell me a secret", channel="CSEC")
            bot.send_event(event)
            final_thread(slack, "CSEC", event["ts"], timeout=20)
        slack.fail("chat.postMessage", SlackFault(error="invalid_auth"))
        bot.send_event(mention("after invalid auth", channel="CSEC"))
        wait_until(lambda: "invalid_auth" in bot.logs())
        outputs.append(bot.http.get("/metrics").text)
        bad = bot.post_raw(json.dumps(envelope(mention("x"))), signature=sign("x", 1, "wrong"))
        outputs.append(bad.text)
    finally:
        bot.stop()
    outputs.append(bot.logs())
    outputs.append(json.dumps([c.args for c in slack.calls]))
    # the command line tools print errors too
    cli_env = bot_env(azure, slack, redis_url, AZURE_OPENAI_KEY=WRONG_KEY)
    for args in (["ask", "hi"], ["doctor"], ["manifest", "--url", "https://x.example"]):
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        outputs += [done.stdout, done.stderr]
    text = "\n".join(outputs)
    assert "outcome=ok" in text and "AuthenticationFailed" in text  # the run really did both
    for secret in secrets:
        assert secret not in text, f"secret leaked: {secret[:6]}…"


def test_teams_are_isolated(
    fake_azure: FakeAzure, slack: FakeSlack, redis_server, redis_url: str
) -> None:  # type: ignore[no-untyped-def]
    """Same channel id and thread ts in two workspaces: separate history, settings and usage."""
    fake_azure.clear()
    bot = BotProcess(
        bot_env(fake_azure, slack, redis_url, BOT_ADMIN_USER_IDS="UADMIN")
    ).wait_ready()
    try:
        ts = "1710099999.000100"

        def send(
            team: str, text: str, thread_ts: str | None = None, new_ts: str | None = None
        ) -> None:
            event = mention(text, channel="CSHARED", ts=new_ts or ts, thread_ts=thread_ts)
            body = envelope(event)
            body["team_id"] = team
            body["authorizations"][0]["team_id"] = team
            body["event_id"] = f"Ev{team}{new_ts or ts}"
            raw = json.dumps(body)
            assert bot.post_raw(raw).status_code == 200

        send("TAAAA", "alpha secret plan")
        wait_for_turns(bot, Counter(), ok=1)  # answered, and its usage recorded
        send("TBBBB", "beta question")
        wait_for_turns(bot, Counter(), ok=2)
        assert len(fake_azure.completions) == 2
        b_prompt = [m["content"] for m in fake_azure.completions[-1].body["messages"]]
        assert "alpha secret plan" not in json.dumps(b_prompt)
        form = "token=t&team_id=TAAAA&channel_id=CSHARED&user_id=UADMIN&command=%2Fgpt&text=set+temperature+0.3"
        assert (
            "→ 0.3"
            in bot.post_raw(form, content_type="application/x-www-form-urlencoded").json()["text"]
        )
        show_b = "token=t&team_id=TBBBB&channel_id=CSHARED&user_id=UX&command=%2Fgpt&text=show"
        assert (
            "`temperature` = (model default)  _(environment)_"
            in bot.post_raw(show_b, content_type="application/x-www-form-urlencoded").json()["text"]
        )
        usage_b = "token=t&team_id=TBBBB&channel_id=CSHARED&user_id=UX&command=%2Fgpt&text=usage"
        reply = bot.post_raw(usage_b, content_type="application/x-www-form-urlencoded").json()[
            "text"
        ]
        client = redis_sync.Redis(port=redis_server.port, decode_responses=True)
        keys = client.keys("bot:v1:*")
        client.close()
        assert any("TAAAA" in k for k in keys) and any("TBBBB" in k for k in keys)
        assert sum(1 for k in keys if k.startswith("bot:v1:usage:TAAAA")) == 1
        b_body = fake_azure.completions[1].body
        b_total = sum(count_tokens(m["content"]) + 4 for m in b_body["messages"]) + count_tokens(
            "Answer to: Pat: beta question"
        )
        assert f"• workspace: {b_total:,} tokens" in reply
    finally:
        bot.stop()
