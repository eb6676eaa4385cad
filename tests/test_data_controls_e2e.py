"""Data controls end to end, in single-workspace mode: the *Forget this thread* message shortcut,
`/gpt forget-all`, and the purge on `app_uninstalled` (`python -m bot serve`, real redis-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from bot.data_controls import FORGET_THREAD, FORGOTTEN, NOTHING_STORED
from bot.store import Keys
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import TEAM, FakeSlack
from fakes.slack_requests import envelope, mention, message, message_shortcut
from tests.slackbot_harness import (
    BotProcess,
    bot_env,
    final_thread,
    keys_of,
    turns,
    wait_for_turns,
    wait_until,
)

ADMIN = "UADMIN001"
OTHER_TEAM = "T0OTHER"
HISTORY = ("msgs", "order")


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    # The app's OAuth credentials in the environment must not pull Bolt into its own OAuth flow
    # while SLACK_BOT_TOKEN is set.
    env = bot_env(
        fake_azure,
        fake_slack,
        redis_server.url,
        BOT_ADMIN_USER_IDS=ADMIN,
        SLACK_CLIENT_ID=fake_slack.client_id,
        SLACK_CLIENT_SECRET=fake_slack.client_secret,
    )
    proc = BotProcess(env).wait_ready()
    yield proc
    proc.stop()


def answered(bot: BotProcess, slack: FakeSlack, channel: str, *, team: str = TEAM) -> str:
    """A mention answered in a new thread; returns the thread's ts."""
    before = turns(bot)
    event = mention("keep this", channel=channel, team=team)
    body = envelope(event, team=team)
    assert bot.post_raw(json.dumps(body)).status_code == 200
    final_thread(slack, channel, event["ts"])
    wait_for_turns(bot, before, ok=1)
    return str(event["ts"])


def history(redis_url: str, team: str) -> set[str]:
    return {k for k in keys_of(redis_url, team) if Keys().kind_of(k) in HISTORY}


def command(bot: BotProcess, text: str, user: str, response_url: str = "") -> str:
    form = {"team_id": TEAM, "channel_id": "CDC1", "user_id": user, "command": "/gpt", "text": text}
    if response_url:
        form["response_url"] = response_url
    response = bot.send_command(form)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_single_token_mode_stays_single_with_oauth_credentials_around(
    bot: BotProcess, slack: FakeSlack
) -> None:
    """With SLACK_BOT_TOKEN set, SLACK_CLIENT_ID/SECRET in the environment change nothing: the
    answer goes out with the bot token and there is no install page."""
    channel = "CDC0"
    answered(bot, slack, channel)
    posted = {c.token for c in slack.calls if c.args.get("channel") == channel}
    assert posted == {slack.token}
    assert bot.http.get("/slack/install").status_code == 404


def test_forget_this_thread_shortcut_deletes_that_thread_and_tells_only_its_user(
    bot: BotProcess, slack: FakeSlack, redis_url: str
) -> None:
    """The shortcut on a reply deletes its thread's stored conversation (anyone may use it),
    confirms ephemerally to that person in the thread, and leaves other threads alone."""
    thread, kept = answered(bot, slack, "CDC1"), answered(bot, slack, "CDC1")
    reply = message("a reply in the thread", channel="CDC1", thread_ts=thread)
    keys = Keys()
    before = turns(bot)
    assert bot.send_event(reply).status_code == 200
    wait_for_turns(bot, before, ok=1)  # the follow-up is answered and stored
    payload = message_shortcut(FORGET_THREAD, reply, channel="CDC1", user="U0SOMEONE")
    form = urlencode({"payload": json.dumps(payload)})
    response = bot.post_raw(form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    said = wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    assert said[-1].args["user"] == "U0SOMEONE" and said[-1].args["channel"] == "CDC1"
    assert said[-1].args["thread_ts"] == thread and said[-1].args["text"] == FORGOTTEN
    wait_until(lambda: not redis_exists(redis_url, keys.messages(f"{TEAM}:CDC1:{thread}")))
    for key in (keys.order(f"{TEAM}:CDC1:{thread}"), keys.engaged(f"{TEAM}:CDC1:{thread}")):
        assert not redis_exists(redis_url, key)
    assert redis_exists(redis_url, keys.messages(f"{TEAM}:CDC1:{kept}"))
    bot.post_raw(form, content_type="application/x-www-form-urlencoded")
    again = wait_until(lambda: slack.calls_to("chat.postEphemeral")[1:])
    assert again[-1].args["text"] == NOTHING_STORED


def redis_exists(redis_url: str, key: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return bool(client.exists(key))
    finally:
        client.close()


def test_forget_all_is_for_admins_and_deletes_only_this_workspaces_history(
    bot: BotProcess, slack: FakeSlack, redis_url: str
) -> None:
    """Anyone else's `/gpt forget-all` changes nothing; an admin's deletes every stored thread
    of the workspace, keeps its settings, and leaves other workspaces' threads."""
    for channel in ("CDC2", "CDC3"):
        answered(bot, slack, channel)
    answered(bot, slack, "CDC4", team=OTHER_TEAM)
    assert "→ 0.2" in command(bot, "set temperature 0.2", ADMIN)
    ours, theirs = history(redis_url, TEAM), history(redis_url, OTHER_TEAM)
    assert len(ours) == 4 and len(theirs) == 2
    refusal = command(bot, "forget-all", "U0NOTADMIN")
    assert refusal.startswith("Only ")
    assert history(redis_url, TEAM) == ours
    # Acked at once (a big Redis takes a while to scan); the result follows at response_url.
    acked = command(bot, "forget-all", ADMIN, response_url=slack.response_url())
    assert acked == "Deleting this workspace's stored conversations…"
    (done,) = wait_until(lambda: slack.responses)
    assert done["text"].startswith("Deleted the stored conversations of 2 threads")
    assert (done["response_type"], done["replace_original"]) == ("ephemeral", False)
    assert history(redis_url, TEAM) == set()
    assert history(redis_url, OTHER_TEAM) == theirs
    assert "0.2" in command(bot, "show", ADMIN)
    assert "forget-all" in command(bot, "help", ADMIN)


def test_uninstall_purges_the_workspace_in_single_workspace_mode_too(
    bot: BotProcess, slack: FakeSlack, redis_url: str
) -> None:
    """`app_uninstalled` purges every key of the workspace (scanned), not another's."""
    answered(bot, slack, "CDC5")
    answered(bot, slack, "CDC6", team=OTHER_TEAM)
    command(bot, "set temperature 0.7", ADMIN)
    theirs = keys_of(redis_url, OTHER_TEAM)
    assert keys_of(redis_url, TEAM) and theirs
    assert bot.send_event({"type": "app_uninstalled"}).status_code == 200
    wait_until(lambda: not keys_of(redis_url, TEAM))
    assert theirs <= keys_of(redis_url, OTHER_TEAM)
