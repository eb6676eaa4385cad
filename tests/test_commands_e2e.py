"""The /gpt slash command and settings modal, end to end with signed form-encoded requests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import TEAM, FakeSlack, context_text, message_text
from fakes.slack_requests import mention, message
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    turns,
    wait_for_turns,
    wait_until,
)

ADMIN = "UADMIN001"
USER = "UUSER0001"


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    proc = BotProcess(
        bot_env(fake_azure, fake_slack, redis_server.url, BOT_ADMIN_USER_IDS=ADMIN)
    ).wait_ready()
    yield proc
    proc.stop()


def command(bot: BotProcess, text: str, *, user: str = ADMIN, channel: str = "CCMD1") -> str:
    fields = {
        "token": "legacy",
        "team_id": TEAM,
        "team_domain": "fake",
        "channel_id": channel,
        "channel_name": "payloads",
        "user_id": user,
        "user_name": "someone",
        "command": "/gpt",
        "text": text,
        "api_app_id": "A0000APP1",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T0000TEAM/1/x",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }
    response = bot.send_command(fields)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


def ask(
    bot: BotProcess, slack: FakeSlack, text: str, channel: str = "CCMD1", user: str = USER
) -> dict:  # type: ignore[type-arg]
    event = mention(text, channel=channel, user=user)
    bot.send_event(event)
    (reply,) = final_thread(slack, channel, event["ts"])
    return reply  # type: ignore[no-any-return]


def test_help_lists_subcommands_and_keys(bot: BotProcess, slack: FakeSlack) -> None:
    """Anyone gets help with every subcommand and key, each with an example."""
    text = command(bot, "help", user=USER)
    for word in (
        "show",
        "set-default",
        "unset",
        "reset",
        "usage",
        "config",
        "system",
        "temperature",
        "top_p",
        "max_tokens",
        "history",
        "followups",
        "quota",
        "context_window",
        "stream",
        "reasoning_effort",
    ):
        assert f"`/gpt {word}" in text or f"`{word}`" in text


def test_set_temperature_changes_the_next_azure_request(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """An admin's `set temperature 0.2` is stored and sent with the next turn."""
    assert "→ 0.2" in command(bot, "set temperature 0.2", channel="CCMD2")
    ask(bot, slack, "hot or cold?", channel="CCMD2")
    assert azure.completions[-1].body["temperature"] == 0.2
    shown = command(bot, "show", user=USER, channel="CCMD2")
    assert "`temperature` = 0.2  _(channel)_" in shown
    assert "`deployment` = gpt-35-turbo  _(environment)_" in shown


def test_set_system_keeps_quotes_emoji_newlines_and_payload(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Free text with quotes, emoji, a newline and the word `payload` is stored verbatim."""
    prompt = 'You review "payload" rules 🚀\nAnswer in one line.'
    reply = command(bot, f"set system “{prompt}”", channel="CCMD3")
    assert reply.startswith("Set `system`")
    ask(bot, slack, "go", channel="CCMD3")
    system = azure.completions[-1].body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith(prompt + "\n\n")  # then what the thread is (bot.room)


def test_set_deployment_routes_to_it(bot: BotProcess, slack: FakeSlack, azure: FakeAzure) -> None:
    """`set deployment gpt-4o` makes the next call go to that deployment's URL."""
    command(bot, "set   deployment   gpt-4o", channel="CCMD4")
    reply = ask(bot, slack, "which one?", channel="CCMD4")
    assert azure.completions[-1].path == "/openai/deployments/gpt-4o/chat/completions"
    assert "gpt-4o" in context_text(reply)


def test_workspace_default_and_channel_override(bot: BotProcess, slack: FakeSlack) -> None:
    """Channel beats workspace beats environment; show names each source; reset drops overrides."""
    command(bot, "set-default history 3", channel="CCMD5")
    command(bot, "set history 7", channel="CCMD5")
    assert "`history` = 7  _(channel)_" in command(bot, "show", channel="CCMD5")
    assert "`history` = 3  _(workspace)_" in command(bot, "show", channel="CCMD6")
    assert "Removed: history" in command(bot, "reset", channel="CCMD5")
    assert "`history` = 3  _(workspace)_" in command(bot, "show", channel="CCMD5")
    command(bot, "unset-default history", channel="CCMD5")
    assert (
        "_(environment)_"
        in command(bot, "show", channel="CCMD5").split("`history`")[1].split("\n")[0]
    )


def test_reasoning_effort_is_set_and_shown(bot: BotProcess, slack: FakeSlack) -> None:
    """`reasoning_effort` starts unset (Azure's default) and takes a workspace default."""
    line = "`reasoning_effort` = (model default)  _(environment)_"
    assert line in command(bot, "show", channel="CCMD13")
    reply = command(bot, "set-default reasoning_effort High", channel="CCMD13")
    assert reply == "Set `reasoning_effort` for the workspace default: (model default) → high."
    assert "`reasoning_effort` = high  _(workspace)_" in command(bot, "show", channel="CCMD13")
    command(bot, "unset-default reasoning_effort", channel="CCMD13")


def test_non_admin_is_refused_and_told_who_can(bot: BotProcess, slack: FakeSlack) -> None:
    """A non-admin's set changes nothing and names who may."""
    text = command(bot, "set temperature 1.5", user=USER, channel="CCMD7")
    assert "Only the bot's admins" in text and f"<@{ADMIN}>" in text
    assert (
        "_(environment)_"
        in command(bot, "show", user=USER, channel="CCMD7").split("`temperature`")[1].split("\n")[0]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("set temperature 3", "less than or equal to 2"),
        ("set temperature hot", "0 to 2"),
        ("set top_p -1", "0 to 1"),
        ("set max_tokens 0", "greater than or equal to 1"),
        ("set history 1000", "0 to 100"),
        ("set followups maybe", "on or off"),
        ("set quota -5", "0 = unlimited"),
        ("set deployment my deployment", "deployment name"),
        ("set reasoning_effort max", "minimal, low, medium or high"),
        ("set colour blue", "Unknown key"),
        ("set temperature", "Give a value"),
    ],
)
def test_invalid_values_are_rejected_with_their_range(
    bot: BotProcess, slack: FakeSlack, text: str, expected: str
) -> None:
    """Invalid input changes nothing and says the valid range or form."""
    before = command(bot, "show", channel="CCMD8")
    reply = command(bot, text, channel="CCMD8")
    assert expected in reply
    assert command(bot, "show", channel="CCMD8") == before


def test_modal_opens_and_submission_is_validated(bot: BotProcess, slack: FakeSlack) -> None:
    """`config` opens a modal via views.open; bad fields come back as errors, good ones are saved."""
    assert "Opening" in command(bot, "config", channel="CCMD9")
    (call,) = slack.calls_to("views.open")
    view = (
        call.args["view"] if isinstance(call.args["view"], dict) else json.loads(call.args["view"])
    )
    assert call.args["trigger_id"].startswith("13345224609")
    assert view["callback_id"] == "gpt_config"
    assert {b["block_id"] for b in view["blocks"]} >= {"system", "temperature", "quota"}

    def submit(values: dict[str, str]) -> dict:  # type: ignore[type-arg]
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": ADMIN},
            "api_app_id": "A0000APP1",
            "trigger_id": "1.2.3",
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": "gpt_config",
                "private_metadata": view["private_metadata"],
                "state": {
                    "values": {
                        k: {"value": {"type": "plain_text_input", "value": v}}
                        for k, v in values.items()
                    }
                },
            },
        }
        response = bot.post_raw(
            urlencode({"payload": json.dumps(payload)}),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        return response.json() if response.content else {}

    bad = submit({"temperature": "9", "top_p": "0.5"})
    assert bad["response_action"] == "errors" and "temperature" in bad["errors"]
    assert (
        "_(environment)_"
        in command(bot, "show", channel="CCMD9").split("`top_p`")[1].split("\n")[0]
    )
    assert submit({"temperature": "0.7", "system": "Modal prompt ✅"}) == {}
    shown = command(bot, "show", channel="CCMD9")
    assert "`temperature` = 0.7  _(channel)_" in shown and "Modal prompt ✅" in shown


def test_followups_off_stops_answers_without_mention(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """With followups off, replies that do not mention the bot are not answered."""
    command(bot, "set followups off", channel="CCMD10")
    event = mention("start", channel="CCMD10")
    bot.send_event(event)
    final_thread(slack, "CCMD10", event["ts"])
    calls = len(azure.completions)
    before = turns(bot)
    bot.send_event(message("no mention", channel="CCMD10", thread_ts=event["ts"]))
    wait_for_turns(bot, before, followups_off=1)
    assert len(slack.thread("CCMD10", event["ts"])) == 1
    assert len(azure.completions) == calls


def test_quota_refuses_without_calling_azure(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure
) -> None:
    """Over the daily quota: a polite refusal with the time to reset, and no Azure call."""
    user = "UQUOTA001"
    ask(bot, slack, "spend some tokens", channel="CCMD11", user=user)
    command(bot, "set quota 5", channel="CCMD11")
    calls = len(azure.completions)
    reply = ask(bot, slack, "more please", channel="CCMD11", user=user)
    text = message_text(reply)
    assert "daily quota of 5 tokens" in text and "resets in" in text
    assert len(azure.completions) == calls
    other = ask(bot, slack, "my turn", channel="CCMD11", user="UFRESH001")
    assert message_text(other) == "Answer to: UFRESH001: my turn"  # a name Slack does not know


def test_usage_report_equals_posted_usage(bot: BotProcess, slack: FakeSlack) -> None:
    """`usage` totals are the sum of the usage lines the replies showed."""
    totals = []
    for i, user in enumerate(["UU1", "UU2", "UU2"]):
        reply = ask(bot, slack, f"count {i} " + "x" * (i * 40), channel="CCMD12", user=user)
        numbers = [int(n) for n in re.findall(r"(\d+)", context_text(reply))]
        totals.append(numbers[:3])
    text = command(bot, "usage today", user=USER, channel="CCMD12")
    channel_line = next(line for line in text.splitlines() if "this channel" in line)
    prompt, completion, total = (sum(t[i] for t in totals) for i in range(3))
    assert f"{total:,} tokens (prompt {prompt:,} · completion {completion:,})" in channel_line
    here = next((line for line in text.splitlines() if "top users here" in line), text)
    assert "<@UU1>" in here and here.index("<@UU2>") < here.index("<@UU1>"), text  # UU2 asked twice
    assert "<@UUSER0001>" not in here
    assert "Use `/gpt usage today`" in command(bot, "usage forever", user=USER, channel="CCMD12")


def test_workspace_admins_allowed_when_no_admin_list(
    fake_azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """With BOT_ADMIN_USER_IDS empty, users.info decides: admins and owners may, others may not."""
    slack.users.update(
        {
            "UWSADMIN": {"id": "UWSADMIN", "is_admin": True},
            "UPLAIN": {"id": "UPLAIN", "is_admin": False, "is_owner": False},
        }
    )
    proc = BotProcess(bot_env(fake_azure, slack, redis_url)).wait_ready()
    try:
        assert command(proc, "set temperature 0.1", user="UWSADMIN").startswith("Set `temperature`")
        assert "workspace admins and owners" in command(proc, "set temperature 0.9", user="UPLAIN")
        wait_until(lambda: slack.calls_to("users.info"))
    finally:
        proc.stop()
