"""Every Redis key the bot writes, named in one place.

Keys carry a configurable prefix (``BOT_REDIS_PREFIX``, default ``bot:``) and a schema version
(``v1``). A part in braces is a Redis Cluster hash tag: every key of one thread shares the tag
``{team:channel:thread_ts}``, so each Lua script touches a single slot and the bot runs on a
cluster without cross-slot commands.

| key                                 | type   | holds                                         | expiry               |
|-------------------------------------|--------|-----------------------------------------------|----------------------|
| ``{p}v1:msgs:{<thread>}``           | hash   | the thread's stored messages, id → JSON       | history TTL          |
| ``{p}v1:order:{<thread>}``          | zset   | their ids at score 0, in lexical = time order | history TTL          |
| ``{p}v1:lock:{<thread>}``           | string | the token of the turn that holds the thread   | lease, renewed       |
| ``{p}v1:wait:{<thread>}``           | zset   | messages waiting for the lock, by Slack ts    | 2 × stale time       |
| ``{p}v1:beat:{<thread>}``           | zset   | each waiter's last heartbeat (ms)             | 2 × stale time       |
| ``{p}v1:engaged:{<thread>}``        | string | the bot answered here (if only with an error) | history TTL          |
| ``{p}v1:gone:{<thread>}``           | hash   | deleted (``""``) and edited (JSON) messages by id, and ``*``: when the thread was forgotten; a commit under way honours them | 1 h (a turn's longest life) |
| ``{p}v1:once:msg:{<thread>}:<ts>`` | string | dedup claim on a message: its turn's token, then ``done`` | lease, then done TTL |
| ``{p}v1:once:ev:{<thread>}:<event>``| string | dedup claim on a Slack event id (redeliveries) | lease, then done TTL |
| ``{p}v1:turn:{<thread>}:<ts>``      | hash   | an admitted turn: the message, its owner's token, the placeholder ts | until done (1 h at most) |
| ``{p}v1:turns``                     | zset   | admitted turns not yet done, by when to look at them again (ms) | none        |
| ``{p}v1:pane:{<thread>}``           | hash   | a pane's thread: user, looking_at, titled     | history TTL          |
| ``{p}v1:cfg:<team>:ws``             | hash   | workspace defaults, setting → JSON value      | none                 |
| ``{p}v1:cfg:<team>:ch:<channel>``   | hash   | one channel's overrides, setting → JSON value | none                 |
| ``{p}v1:cfg:<team>:ver``            | string | bumped by every settings change (caches)      | none                 |
| ``{p}v1:usage:<team>:<YYYYMMDD>``   | hash   | the day's token counters (see `bot.usage`)    | 90 days              |
| ``{p}v1:usagedone:<team>:{<usage key>}:<token>`` | string | a turn's usage is counted (a re-sent pipeline counts it once) | 1 h |
| ``{p}v1:person:<team>:<user>``      | string | a person's display name (`users.info`)        | about a day          |
| ``{p}v1:deploy:<endpoint>:<name>``  | hash   | what a deployment takes: reasoning, model     | 7 days, per finding  |
| ``{p}v1:nostatus:<team>``           | string | Slack's refusal of the thread status line     | a day                |
| ``{p}v1:feedback:<team>:<YYYYMMDD>``| hash   | votes on the day's answers (`bot.feedback`)   | 90 days              |
| ``{p}v1:inst:{<owner>}``            | hash   | an installation (OAuth mode), see below       | until uninstalled    |
| ``{p}v1:rotate:{<owner>}``          | string | who is rotating the installation's token      | 30 s                 |
| ``{p}v1:orgteams:<enterprise>``     | set    | workspaces seen under an org-wide install     | until uninstalled    |
| ``{p}v1:orgof:<team>``              | string | the org-wide install a workspace belongs to   | until uninstalled    |
| ``{p}v1:oauthstate:<state>``        | string | an OAuth state issued by /slack/install       | 10 minutes, one use  |
| ``{p}v1:purges``                    | set    | owners whose data is being purged             | until purged         |

Every key that holds a workspace's data names the workspace as the first segment after the
key's kind (the leading lowercase words, braces aside): ``msgs:{T1:C1:ts}``,
``once:msg:{T1:C1:ts}:ts``, ``cfg:T1:ws``, ``inst:{T1}``. `Keys.team_of` reads it back, and
`bot.purge` finds a workspace's keys by it, so a new per-workspace key is purged on uninstall as
long as it keeps that shape (``tests/test_purge.py`` checks every method here that takes a team
or a thread). The kinds in `GLOBAL_KINDS` belong to no workspace; the members of ``turns`` name
their thread first, and a purge removes the workspace's.

An installation's ``<owner>`` is its workspace id (``T…``), or the organisation's (``E…``) for
an org-wide install: Slack's ids are unique across both. The hash has the fields ``bot`` (the
bot token, its refresh token and expiry, bot user id, scopes), ``installer`` (the latest
installation, with the installing user's token if any) and ``installer:<user>`` (that user's
latest), each a JSON object as slack_sdk's `Installation`/`Bot` hold it.

``<thread>`` is an opaque id chosen by the caller: ``team:channel:thread_ts`` for Slack,
``cli:NAME`` for ``python -m bot ask --thread NAME``. A message's id is its Slack ts (fixed width,
so text order is time order), and an answer's is its question's ts + ``~a``; each JSON value is a
`bot.chat_types.StoredMessage`. ``<endpoint>`` is the first 16 hex digits of the SHA-256 of the
Azure endpoint URL (one key shape whatever the URL holds).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

SCHEMA_VERSION = "v1"

GLOBAL_KINDS = frozenset({"deploy", "oauthstate", "purges", "turns"})
"""Key kinds that hold no workspace's data (see the module docstring)."""

HISTORY_KINDS = frozenset({"msgs", "order", "engaged"})
"""The kinds of a thread's stored conversation: what "forget" deletes."""

_KIND = re.compile(r"[a-z_]+")


class Keys:
    """Builds the bot's Redis keys for one prefix; the schema is in the module docstring."""

    def __init__(self, prefix: str = "bot:") -> None:
        self.base = f"{prefix}{SCHEMA_VERSION}:"

    def messages(self, thread: str) -> str:
        return f"{self.base}msgs:{{{thread}}}"

    def order(self, thread: str) -> str:
        return f"{self.base}order:{{{thread}}}"

    def lock(self, thread: str) -> str:
        return f"{self.base}lock:{{{thread}}}"

    def waiters(self, thread: str) -> str:
        return f"{self.base}wait:{{{thread}}}"

    def beats(self, thread: str) -> str:
        return f"{self.base}beat:{{{thread}}}"

    def engaged(self, thread: str) -> str:
        return f"{self.base}engaged:{{{thread}}}"

    def gone(self, thread: str) -> str:
        return f"{self.base}gone:{{{thread}}}"

    def message_claim(self, thread: str, ts: str) -> str:
        return f"{self.base}once:msg:{{{thread}}}:{ts}"

    def event_claim(self, thread: str, event_id: str) -> str:
        return f"{self.base}once:ev:{{{thread}}}:{event_id}"

    def turn(self, thread: str, ts: str) -> str:
        return f"{self.base}turn:{{{thread}}}:{ts}"

    def turns(self) -> str:
        return f"{self.base}turns"

    def assistant_thread(self, thread: str) -> str:
        return f"{self.base}pane:{{{thread}}}"

    def workspace_settings(self, team: str) -> str:
        return f"{self.base}cfg:{team}:ws"

    def settings_version(self, team: str) -> str:
        return f"{self.base}cfg:{team}:ver"

    def channel_settings(self, team: str, channel: str) -> str:
        return f"{self.base}cfg:{team}:ch:{channel}"

    def usage_day(self, team: str, day: dt.date) -> str:
        return f"{self.base}usage:{team}:{day:%Y%m%d}"

    def usage_done(self, team: str, day: dt.date, token: str) -> str:
        """A turn's usage already counted; tagged with the whole day key, so it shares its slot."""
        return f"{self.base}usagedone:{team}:{{{self.usage_day(team, day)}}}:{token}"

    def person(self, team: str, user: str) -> str:
        return f"{self.base}person:{team}:{user}"

    def status_refused(self, team: str) -> str:
        return f"{self.base}nostatus:{team}"

    def feedback_day(self, team: str, day: dt.date) -> str:
        return f"{self.base}feedback:{team}:{day:%Y%m%d}"

    def deployment(self, endpoint: str, name: str) -> str:
        digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
        return f"{self.base}deploy:{digest}:{name}"

    def installation(self, owner: str) -> str:
        return f"{self.base}inst:{{{owner}}}"

    def rotation_lock(self, owner: str) -> str:
        return f"{self.base}rotate:{{{owner}}}"

    def org_teams(self, enterprise: str) -> str:
        return f"{self.base}orgteams:{enterprise}"

    def org_of(self, team: str) -> str:
        return f"{self.base}orgof:{team}"

    def oauth_state(self, state: str) -> str:
        return f"{self.base}oauthstate:{state}"

    def purges(self) -> str:
        return f"{self.base}purges"

    def kind_of(self, key: str) -> str:
        """The key's kind: ``msgs`` for a thread's messages, ``once:msg`` for a claim."""
        return ":".join(self._split(key)[0])

    def team_of(self, key: str) -> str | None:
        """The workspace (or organisation) whose data the key holds; None for global keys and
        keys of other prefixes."""
        kind, rest = self._split(key)
        if not kind or kind[0] in GLOBAL_KINDS or not rest:
            return None
        return rest[0]

    def _split(self, key: str) -> tuple[list[str], list[str]]:
        if not key.startswith(self.base):
            return [], []
        parts = key[len(self.base) :].replace("{", "").replace("}", "").split(":")
        kinds = 0
        while kinds < len(parts) and _KIND.fullmatch(parts[kinds]):
            kinds += 1
        return parts[:kinds], parts[kinds:]
