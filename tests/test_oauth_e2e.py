"""OAuth distribution end to end: `python -m bot serve` with SLACK_CLIENT_ID/SECRET and no bot
token, installed through `/slack/install` → `/slack/oauth_redirect` against the fake Slack's
`oauth.v2.access`, a real redis-server, and signed requests from several workspaces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import redis as redis_sync

from bot.store import Keys
from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, FakeWorkspace, message_text
from fakes.slack_requests import mention
from tests.oauth_harness import (
    PUBLIC_URL,
    finish_install,
    install,
    oauth_env,
    send_as,
    start_install,
)
from tests.slackbot_harness import (
    BotProcess,
    final_thread,
    keys_of,
    turns,
    wait_for_turns,
    wait_until,
)

ALPHA = FakeWorkspace(team="T0ALPHA", bot_user="U0BOTA", bot_id="B0BOTA")
BETA = FakeWorkspace(team="T0BETA", bot_user="U0BOTB", bot_id="B0BOTB")
ADMIN = "UADMIN001"


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    env = oauth_env(
        fake_azure, fake_slack, redis_server.url, BOT_ADMIN_USER_IDS=ADMIN, BOT_LOG_LEVEL="DEBUG"
    )
    proc = BotProcess(env).wait_ready()
    yield proc
    proc.stop()


def command(bot: BotProcess, workspace: FakeWorkspace, text: str, channel: str) -> str:
    fields = {
        "token": "legacy",
        "team_id": workspace.team,
        "channel_id": channel,
        "user_id": ADMIN,
        "command": "/gpt",
        "text": text,
        "api_app_id": "A0000APP1",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T/1/x",
        "trigger_id": "1.2.3",
    }
    response = bot.send_command(fields)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def posts_in(slack: FakeSlack, channel: str) -> set[str]:
    """The tokens the bot posted to a channel with."""
    return {
        c.token
        for c in slack.calls
        if c.method in ("chat.postMessage", "chat.update") and c.args.get("channel") == channel
    }


def test_install_page_asks_slack_for_the_manifest_scopes_and_redirect(bot: BotProcess) -> None:
    """`/slack/install` links to Slack's authorize URL with the client id, the manifest's scopes
    and the redirect URL, and sets the state in a secure, HTTP-only cookie."""
    start = start_install(bot)
    url = urlsplit(start.authorize_url)
    query = parse_qs(url.query)
    assert (url.netloc, url.path) == ("slack.com", "/oauth/v2/authorize")
    assert query["client_id"] == ["1111111111.2222222222"]
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/slack/oauth_redirect"]
    assert "app_mentions:read" in query["scope"][0] and "chat:write" in query["scope"][0]
    cookie = start.page.headers["set-cookie"]
    assert f"slack-app-oauth-state={start.state}" in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "Max-Age=600" in cookie


def test_two_workspaces_are_answered_at_once_each_with_its_own_token(
    bot: BotProcess, slack: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """Two workspaces installed through the flow ask at the same time: each answer is posted
    with its own workspace's bot token and bot user; their commands run with their own tokens
    and settings stay apart."""
    tokens = {w.team: install(bot, slack, w) for w in (ALPHA, BETA)}
    assert len(set(tokens.values())) == 2
    assert {k.split(":")[-1].strip("{}") for k in keys_of(redis_url, "T0ALPHA", "T0BETA")} == {
        "T0ALPHA",
        "T0BETA",
    }
    before = turns(bot)
    azure.first_token_delay = 0.5
    events = {
        w.team: mention("who am I?", channel=f"C{w.team}", bot_user=w.bot_user)
        for w in (ALPHA, BETA)
    }
    with ThreadPoolExecutor(2) as pool:
        sent = list(pool.map(lambda w: send_as(bot, w, events[w.team]), (ALPHA, BETA)))
    assert [r.status_code for r in sent] == [200, 200]
    for w in (ALPHA, BETA):
        (reply,) = final_thread(slack, f"C{w.team}", events[w.team]["ts"])
        assert message_text(reply) == "Answer to: Pat: who am I?"
        assert reply["user"] == w.bot_user
        assert posts_in(slack, f"C{w.team}") == {tokens[w.team]}
    wait_for_turns(bot, before, ok=2)
    first, second = azure.completions[-2:]
    assert abs(first.started - second.started) < 0.5  # both were with Azure at once
    assert "→ 0.3" in command(bot, ALPHA, "set temperature 0.3", "CT0ALPHA")
    assert "`temperature` = (model default)" in command(bot, BETA, "show", "CT0BETA")
    authorized = {c.token for c in slack.calls_to("auth.test")}
    assert {tokens["T0ALPHA"], tokens["T0BETA"]} <= authorized


def test_a_bad_expired_reused_or_cookieless_state_installs_nothing(
    bot: BotProcess, slack: FakeSlack, redis_url: str, redis_server: RedisServer
) -> None:
    """The redirect is refused (nothing exchanged, nothing stored) for a state never issued, one
    past its 10 minutes, one used already, and one the browser holds no cookie for."""
    victim = FakeWorkspace(team="T0VICTIM", bot_user="U0BOTV", bot_id="B0BOTV")
    code, _ = slack.install_code(victim)
    forged = start_install(bot)
    bad = bot.http.get(
        "/slack/oauth_redirect",
        params={"code": code, "state": "forged-state-value-0001"},
        headers={"Cookie": "slack-app-oauth-state=forged-state-value-0001"},
    )
    expired = start_install(bot)
    client = redis_sync.Redis(port=redis_server.port, decode_responses=True)
    client.pexpire(Keys().oauth_state(expired.state), 1)
    wait_until(lambda: not client.exists(Keys().oauth_state(expired.state)))
    client.close()
    late = finish_install(bot, expired, code)
    no_cookie = finish_install(bot, forged, code, cookie="")
    assert [bad.status_code, late.status_code, no_cookie.status_code] == [401, 401, 400]
    assert "invalid_state" in bad.text and "invalid_browser" in no_cookie.text
    assert slack.calls_to("oauth.v2.access") == []
    assert keys_of(redis_url, "T0VICTIM") == set()

    used = start_install(bot)
    assert finish_install(bot, used, code).status_code == 200
    other = FakeWorkspace(team="T0REPLAY", bot_user="U0BOTR", bot_id="B0BOTR")
    replay_code, _ = slack.install_code(other)
    replay = finish_install(bot, used, replay_code)
    assert replay.status_code == 401 and "invalid_state" in replay.text
    assert len(slack.calls_to("oauth.v2.access")) == 1
    assert keys_of(redis_url, "T0REPLAY") == set()


def test_uninstall_purges_one_workspace_and_leaves_the_other(
    bot: BotProcess, slack: FakeSlack, redis_url: str
) -> None:
    """`app_uninstalled` from one workspace deletes its installation and, scanning Redis
    afterwards, every key of its data; the other workspace keeps all of its keys and is still
    answered."""
    tokens = {w.team: install(bot, slack, w) for w in (ALPHA, BETA)}
    slack.users["U0SAM"] = {"id": "U0SAM", "name": "sam", "profile": {"display_name": "Sam"}}
    before = turns(bot)
    for w in (ALPHA, BETA):
        event = mention("remember this", channel=f"C{w.team}", bot_user=w.bot_user, user="U0SAM")
        send_as(bot, w, event)
        final_thread(slack, f"C{w.team}", event["ts"])
        command(bot, w, "set temperature 0.4", f"C{w.team}")
    wait_for_turns(bot, before, ok=2)
    alpha_keys, beta_keys = keys_of(redis_url, "T0ALPHA"), keys_of(redis_url, "T0BETA")
    kinds = {Keys().kind_of(k) for k in alpha_keys}
    assert {"inst", "msgs", "order", "once:msg", "once:ev", "cfg", "usage", "person"} <= kinds
    slack.revoke(tokens["T0ALPHA"])
    gone = send_as(bot, ALPHA, {"type": "app_uninstalled"})
    assert gone.status_code == 200
    wait_until(lambda: not keys_of(redis_url, "T0ALPHA"))
    assert beta_keys <= keys_of(redis_url, "T0BETA")
    before = turns(bot)
    event = mention("still there?", channel="CT0BETA", bot_user=BETA.bot_user)
    send_as(bot, BETA, event)
    final_thread(slack, "CT0BETA", event["ts"])
    wait_for_turns(bot, before, ok=1)
    assert "uninstalled owner=T0ALPHA" in bot.logs()


def test_org_wide_install_serves_its_workspaces_and_uninstall_purges_them(
    bot: BotProcess, slack: FakeSlack, redis_url: str
) -> None:
    """An Enterprise Grid org-wide install answers a workspace of the org with the org's token;
    uninstalling the org purges the org's installation and that workspace's data."""
    org = FakeWorkspace(
        team="E0ORG", bot_user="U0BOTE", bot_id="B0BOTE", enterprise="E0ORG", org_install=True
    )
    token = install(bot, slack, org)
    before = turns(bot)
    event = mention("hello org", channel="CORG1", bot_user=org.bot_user, team="T0ORGWS")
    assert send_as(bot, org, event, team="T0ORGWS").status_code == 200
    (reply,) = final_thread(slack, "CORG1", event["ts"])
    assert reply["user"] == "U0BOTE" and posts_in(slack, "CORG1") == {token}
    wait_for_turns(bot, before, ok=1)
    assert keys_of(redis_url, "T0ORGWS") and keys_of(redis_url, "E0ORG")
    send_as(bot, org, {"type": "app_uninstalled"}, team="T0ORGWS")
    wait_until(lambda: not keys_of(redis_url, "T0ORGWS", "E0ORG"))


def test_rotating_token_is_refreshed_once_and_used(
    bot: BotProcess, slack: FakeSlack, redis_url: str
) -> None:
    """An installation whose token expires within the rotation window is refreshed on its next
    event (one `oauth.v2.access` refresh); the answer and later commands use the new token."""
    rotating = FakeWorkspace(team="T0ROTATE", bot_user="U0BOTR", bot_id="B0BOTR")
    first = install(bot, slack, rotating, expires_in=3600)  # under Bolt's 2-hour window
    assert first.startswith("xoxe.xoxb-")
    event = mention("rotate", channel="CROT", bot_user=rotating.bot_user)
    send_as(bot, rotating, event)
    final_thread(slack, "CROT", event["ts"])
    refreshes = [c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type")]
    assert len(refreshes) == 1
    (used,) = posts_in(slack, "CROT")
    assert used != first and used.startswith("xoxe.xoxb-")
    command(bot, rotating, "show", "CROT")
    assert [c.token for c in slack.calls_to("auth.test")][-1] == used
    assert len([c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type")]) == 1
    stored = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    assert (
        json.loads(stored.hget(Keys().installation("T0ROTATE"), "bot") or "{}")["bot_token"] == used
    )
    stored.close()


def test_no_secret_reaches_the_logs_even_at_debug(bot: BotProcess, slack: FakeSlack) -> None:
    """After installs, rotations, turns and uninstalls at DEBUG, no client secret, bot token or
    refresh token appears in the bot's logs."""
    install(
        bot, slack, FakeWorkspace(team="T0LOGS", bot_user="U0BOTL", bot_id="B0BOTL"), expires_in=60
    )
    event = mention("log me", channel="CLOGS", bot_user="U0BOTL")
    send_as(bot, FakeWorkspace(team="T0LOGS", bot_user="U0BOTL", bot_id="B0BOTL"), event)
    final_thread(slack, "CLOGS", event["ts"])
    logs = bot.logs()
    assert "oauth.v2.access" in logs  # DEBUG really logged the exchanges
    secrets = [slack.client_secret, *slack.workspaces, *slack.revoked]
    secrets += [
        str(c.args.get("refresh_token"))
        for c in slack.calls_to("oauth.v2.access")
        if c.args.get("refresh_token")
    ]
    for secret in secrets:
        assert secret not in logs, f"secret leaked: {secret[:8]}…"


def test_manifest_lists_the_redirect_url_in_oauth_mode(azure: FakeAzure, slack: FakeSlack) -> None:
    """`manifest --url` in OAuth mode carries the redirect URL, the uninstall events and the
    forget shortcut."""
    import subprocess
    import sys

    env = oauth_env(azure, slack, None)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "manifest", "--url", "https://other.example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    doc = json.loads(done.stdout)
    assert doc["oauth_config"]["redirect_urls"] == [f"{PUBLIC_URL}/slack/oauth_redirect"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(
        doc["settings"]["event_subscriptions"]["bot_events"]
    )
    (shortcut,) = doc["features"]["shortcuts"]
    assert shortcut["callback_id"] == "forget_thread" and shortcut["type"] == "message"


def test_uninstalled_workspace_is_no_longer_answered(bot: BotProcess, slack: FakeSlack) -> None:
    """After its uninstall, a workspace's events are not answered (there is no installation to
    answer with), and Slack still gets a 200."""
    gone = FakeWorkspace(team="T0GONE", bot_user="U0BOTG", bot_id="B0BOTG")
    install(bot, slack, gone)
    send_as(bot, gone, {"type": "app_uninstalled"})
    wait_until(lambda: "uninstalled owner=T0GONE" in bot.logs())
    before = len(slack.calls_to("chat.postMessage"))
    event = mention("anyone?", channel="CGONE", bot_user=gone.bot_user)
    assert send_as(bot, gone, event).status_code == 200
    other = mention("and you?", channel="CT0BETA", bot_user=BETA.bot_user)
    install(bot, slack, BETA)
    send_as(bot, BETA, other)
    final_thread(slack, "CT0BETA", other["ts"])
    assert [
        c for c in slack.calls_to("chat.postMessage")[before:] if c.args.get("channel") == "CGONE"
    ] == []
