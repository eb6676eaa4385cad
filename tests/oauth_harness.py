"""Drive OAuth distribution mode as Slack and a browser would: `/slack/install`, Slack's
redirect back to `/slack/oauth_redirect` with a code, and events from installed workspaces."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from fakes.azure import FakeAzure
from fakes.slack import FakeSlack, FakeWorkspace
from fakes.slack_requests import envelope
from tests.slackbot_harness import BotProcess, bot_env

PUBLIC_URL = "https://bot.example.com"


def oauth_env(
    azure: FakeAzure, slack: FakeSlack, redis_url: str | None, **extra: str
) -> dict[str, str]:
    """`bot_env` for OAuth mode: the app's client id and secret, no bot token."""
    return bot_env(
        azure,
        slack,
        redis_url,
        SLACK_BOT_TOKEN="",
        SLACK_CLIENT_ID=slack.client_id,
        SLACK_CLIENT_SECRET=slack.client_secret,
        BOT_PUBLIC_URL=PUBLIC_URL,
        **extra,
    )


@dataclass(frozen=True)
class InstallStart:
    """What `/slack/install` gave the browser: the page, the state and its cookie."""

    page: httpx.Response
    authorize_url: str
    state: str
    cookie: str


def start_install(bot: BotProcess) -> InstallStart:
    page = bot.http.get("/slack/install")
    assert page.status_code == 200, page.text
    found = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text)
    assert found is not None, page.text
    url = html.unescape(found.group(1))
    state = parse_qs(urlsplit(url).query)["state"][0]
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    return InstallStart(page, url, state, cookie)


def finish_install(
    bot: BotProcess, start: InstallStart, code: str, *, cookie: str | None = None
) -> httpx.Response:
    """Slack's redirect back, as the installer's browser follows it."""
    return bot.http.get(
        "/slack/oauth_redirect",
        params={"code": code, "state": start.state},
        headers={"Cookie": start.cookie if cookie is None else cookie},
    )


def install(bot: BotProcess, slack: FakeSlack, workspace: FakeWorkspace, **code: Any) -> str:
    """Install the app for `workspace` through the whole flow; returns its bot token."""
    grant, token = slack.install_code(workspace, **code)
    done = finish_install(bot, start_install(bot), grant)
    assert done.status_code == 200, done.text
    return token


def send_as(
    bot: BotProcess, workspace: FakeWorkspace, event: dict[str, Any], *, team: str | None = None
) -> httpx.Response:
    """A signed event from an installed workspace (`team`: the workspace of an org install)."""
    body = envelope(
        event,
        team=team or workspace.team,
        bot_user=workspace.bot_user,
        enterprise=workspace.enterprise,
        org_install=workspace.org_install,
    )
    return bot.post_raw(json.dumps(body))
