"""The composition root: the only code that builds concrete clients from `Settings`.

`bot.app.core` builds what needs no Slack (Redis, the Azure client, the thread store, the
conversation: `python -m bot ask`, `doctor`); `bot.app.slack` builds the Slack app on top of it.
Every other module receives its httpx transport, Redis client, Slack client and settings as
arguments, which is what lets the tests swap in fake servers without patching.
"""

from bot.app.core import (
    Core,
    build_azure,
    build_core,
    build_redis,
    build_store,
    build_transport,
)
from bot.app.slack import (
    SlackBot,
    build_asgi,
    build_slack_bot,
    build_slack_client,
    build_slack_clients,
)

__all__ = [
    "Core",
    "SlackBot",
    "build_asgi",
    "build_azure",
    "build_core",
    "build_redis",
    "build_slack_bot",
    "build_slack_client",
    "build_slack_clients",
    "build_store",
    "build_transport",
]
