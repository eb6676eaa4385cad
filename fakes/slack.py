"""A fake Slack Web API (and Socket Mode websocket) that answers as Slack's does.

* Args are merged from the query string, a form body and a JSON body (slack_sdk's async client
  sends some methods as query-string POSTs and others as JSON), and the extra `team_id` Bolt adds
  is tolerated.
* `Authorization: Bearer <token>` must be a bot token of a known workspace (the configured one,
  or one issued by `oauth.v2.access`), or the app token for `apps.connections.open`, else
  `{"ok": false, "error": "invalid_auth"}` with HTTP 200 (`token_revoked` once revoked). Each
  call records its token, and `auth.test` and posted messages carry that workspace's ids.
* `oauth.v2.access` (HTTP Basic client credentials, as slack_sdk sends them) exchanges a code
  registered with `install_code` once, answering the canned install response (workspace or
  org-wide, with or without token rotation); with `grant_type=refresh_token` it rotates: a new
  token, a new refresh token, and the old refresh token revoked.
* chat.postMessage enforces the limits that bite LLM answers: markdown blocks ≤ 12,000 characters
  in total, ≤ 50 blocks, `markdown_text` not combined with `text`/`blocks`, `text` ≤ 40,000; and
  the shape of a `context_actions` block (1–5 elements; `feedback_buttons` with both buttons,
  each a plain_text `text` ≤ 75 characters and a `value` ≤ 2,000).
* Faults are queued per method: an HTTP 429 with an integer `Retry-After`, a 5xx, or an error code;
  `refuse()` makes a method answer one error every time (a workspace that does not allow it).
* `assistant.threads.setStatus` keeps each thread's status line (`statuses`); a reply the bot
  posts in that thread clears it, as Slack does. `setSuggestedPrompts` (1–4 prompts, each with a
  title and a message) and `setTitle` keep theirs (`suggested`, `titles`).
* `conversations.history` reads only channels the bot is a member of (`members`), as it does
  for a bot token: else `not_in_channel` (public `C…`) or `channel_not_found` (private `G…`).
* `views.publish` takes a `home` view of at most 100 blocks (section text ≤ 3,000, header
  ≤ 150) for a `user_id`, and keeps the latest per user (`homes`).
* Every call is recorded (`calls`, `calls_to()`), and so are Socket Mode connections and acks;
  `thread()` gives the bot's messages in a thread as they finally look.
* People's messages can be put in a thread (`post_as`) for `conversations.replies`, which pages
  oldest first with `has_more` and `response_metadata.next_cursor` (empty on the last page) and
  returns message `metadata` only with `include_all_metadata`; files (`upload`) download only
  with the bot token as `Authorization: Bearer`, else Slack's HTML sign-in page with 200.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from fakes.server_thread import ServerThread

BOT_USER = "UBOT00001"
BOT_ID = "BBOT00001"
TEAM = "T0000TEAM"
APP_ID = "A0000APP1"
SCOPES = (
    "app_mentions:read,assistant:write,channels:history,groups:history,im:history,mpim:history,"
    "chat:write,commands,users:read,files:read"
)
DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "U0000USER": {"id": "U0000USER", "name": "pat", "profile": {"display_name": "Pat"}},
}
"""The people the tests' events come from by default (`fakes.slack_requests`)."""


_clock = threading.Lock()
_last_ts = 0


def next_ts() -> str:
    """A message ts as Slack makes them: the time it was posted, in epoch seconds with six
    decimals (ten digits before the dot, so text order is time order). Unique and increasing
    across the fake and the tests' events, so a thread's messages sort as they were written."""
    global _last_ts
    with _clock:
        _last_ts = max(_last_ts + 100, int(time.time() * 1_000_000))
        return f"{_last_ts // 1_000_000}.{_last_ts % 1_000_000:06d}"


ROTATED_EXPIRES_IN = 43_200
"""Slack's rotating tokens live 12 hours."""
CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "fake-client-secret-0c4d"


@dataclass(frozen=True)
class FakeWorkspace:
    """Who a bot token speaks for: its workspace (or org, for an org-wide install) and bot."""

    team: str = TEAM
    bot_user: str = BOT_USER
    bot_id: str = BOT_ID
    enterprise: str | None = None
    org_install: bool = False


_CALLER: contextvars.ContextVar[FakeWorkspace] = contextvars.ContextVar("caller")
_serial = itertools.count(1)


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    @property
    def token(self) -> str:
        """The bearer token the call carried ("" for none)."""
        return self.headers.get("Authorization", "").removeprefix("Bearer ")


@dataclass
class SlackFault:
    """status 429 → ratelimited with Retry-After; other status → that HTTP status; error → ok:false."""

    status: int = 200
    error: str | None = None
    retry_after: int = 1


def _markdown_total(blocks: list[dict[str, Any]]) -> int:
    return sum(len(b.get("text", "")) for b in blocks if b.get("type") == "markdown")


def message_text(message: dict[str, Any]) -> str:
    """What a person sees: markdown/section block text, or `markdown_text`, or `text`."""
    blocks = message.get("blocks") or []
    parts = []
    for block in blocks:
        if block.get("type") == "markdown":
            parts.append(block["text"])
        elif block.get("type") == "section":
            parts.append(block["text"]["text"])
    if parts:
        return "\n".join(parts)
    return str(message.get("markdown_text") or message.get("text") or "")


def _feedback_buttons_ok(element: dict[str, Any]) -> bool:
    buttons = [element.get("positive_button"), element.get("negative_button")]
    return len(str(element.get("action_id") or "")) <= 255 and all(
        isinstance(b, dict)
        and (b.get("text") or {}).get("type") == "plain_text"
        and 0 < len(str((b.get("text") or {}).get("text") or "")) <= 75
        and 0 < len(str(b.get("value") or "")) <= 2000
        and len(str(b.get("accessibility_label") or "")) <= 75
        for b in buttons
    )


def _context_actions_ok(block: dict[str, Any]) -> bool:
    """Block Kit's `context_actions`: 1–5 `feedback_buttons` / `icon_button` elements."""
    elements = block.get("elements") or []
    if not 1 <= len(elements) <= 5:
        return False
    for element in elements:
        kind = element.get("type")
        if kind == "feedback_buttons" and not _feedback_buttons_ok(element):
            return False
        if kind not in ("feedback_buttons", "icon_button"):
            return False
    return True


def _json_arg(value: Any) -> Any:
    """An argument slack_sdk may send as a JSON string (query/form) or as an object (JSON)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def context_text(message: dict[str, Any]) -> str:
    return " ".join(
        e.get("text", "")
        for b in message.get("blocks") or []
        if b.get("type") == "context"
        for e in b.get("elements", [])
    )


class FakeSlack:
    def __init__(
        self, *, token: str = "xoxb-fake-bot-token", app_token: str = "xapp-fake-app-token"
    ) -> None:
        self.token = token
        self.app_token = app_token
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.workspaces: dict[str, FakeWorkspace] = {token: FakeWorkspace()}
        """Valid bot tokens and whom they speak for."""
        self.revoked: set[str] = set()
        self._codes: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, FakeWorkspace] = {}
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = dict(DEFAULT_USERS)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.downloads: list[dict[str, Any]] = []
        """Each file download: its name, and whether it carried the bot token."""
        self.replies_page_cap: int | None = None
        """The most messages one conversations.replies page holds (Slack's `limit` else)."""
        self._faults: dict[str, list[SlackFault]] = {}
        self.refusals: dict[str, str] = {}
        """method → the error it always answers (`refuse()`)."""
        self.delays: dict[str, float] = {}
        """method → seconds each call waits before it is answered (`delay()`)."""
        self.statuses: dict[tuple[str, str], str] = {}
        """(channel, thread_ts) → the status line shown under that thread ("" = none)."""
        self.suggested: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.titles: dict[tuple[str, str], str] = {}
        self.members: set[str] = set()
        """Channels the bot is a member of (for `conversations.history`)."""
        self.homes: dict[str, dict[str, Any]] = {}
        """user → the Home tab view last published for them."""
        self.responses: list[dict[str, Any]] = []
        """JSON bodies POSTed to a `response_url` (`response_url()` makes one), in order."""
        self._lock = threading.Lock()
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_connections = 0
        """Socket Mode connections opened (hello sent) since the last `clear()`."""
        app = web.Application()
        app.router.add_get("/link/", self._link)
        app.router.add_get("/files/{file_id}/{name}", self._download)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/commands/{team}/{id}/{secret}", self._respond)
        self._server = ServerThread(app)
        self.api_url = self._server.url + "/api/"

    def start(self) -> FakeSlack:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self._faults.clear()
            self.refusals.clear()
            self.delays.clear()
            self.statuses.clear()
            self.suggested.clear()
            self.titles.clear()
            self.members.clear()
            self.homes.clear()
            self.responses.clear()
            self.socket_acks.clear()
            self.socket_connections = 0
            self.users = dict(DEFAULT_USERS)
            self.files.clear()
            self.downloads.clear()
            self.replies_page_cap = None
            self.workspaces = {self.token: FakeWorkspace()}
            self.revoked.clear()
            self._codes.clear()
            self._refresh.clear()

    def install_code(
        self,
        workspace: FakeWorkspace,
        *,
        installer: str = "U0000USER",
        expires_in: int | None = None,
    ) -> tuple[str, str]:
        """Register an OAuth code that installs the app for `workspace`; returns (code, the bot
        token the exchange will issue). `expires_in` turns token rotation on: the first token's
        life in seconds (refreshed tokens live Slack's 12 hours)."""
        n = next(_serial)
        code, token = (
            f"code-{n}-{uuid.uuid4().hex[:8]}",
            f"xoxb-{workspace.team}-{n}-{uuid.uuid4().hex[:12]}",
        )
        if expires_in is not None:
            token = "xoxe.xoxb-" + token.removeprefix("xoxb-")
        team = (
            None
            if workspace.org_install
            else {"id": workspace.team, "name": f"Team {workspace.team}"}
        )
        enterprise = {"id": workspace.enterprise, "name": "Org"} if workspace.enterprise else None
        response: dict[str, Any] = {
            "ok": True,
            "app_id": APP_ID,
            "authed_user": {"id": installer},
            "scope": SCOPES,
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": workspace.bot_user,
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": workspace.org_install,
        }
        if expires_in is not None:
            response.update(expires_in=expires_in, refresh_token=f"xoxe-1-{uuid.uuid4().hex}")
        with self._lock:
            self._codes[code] = {"response": response, "workspace": workspace}
        return code, token

    def revoke(self, token: str) -> None:
        """Slack revoked the token (uninstall): calls with it get `token_revoked`."""
        with self._lock:
            self.workspaces.pop(token, None)
            self.revoked.add(token)

    def post_as(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """A message a person wrote, as Slack stores it (conversations.replies returns it);
        returns its ts."""
        ts = ts or self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "ts": ts,
            "channel": channel,
            "thread_ts": thread_ts,
            "user": user,
            "text": text,
        }
        if files:
            message["files"] = files
        with self._lock:
            self.messages[(channel, ts)] = message
            parent = self.messages.get((channel, thread_ts or ""))
            if parent is not None:
                parent["thread_ts"] = thread_ts  # a parent with replies carries its own ts
        return ts

    def upload(self, name: str, content: bytes, mimetype: str, filetype: str) -> dict[str, Any]:
        """A file as Slack describes it on a message; downloadable with the bot token."""
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self.files[file_id] = (content, mimetype)
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "size": len(content),
            "mode": "hosted",
            "url_private": f"{self._server.url}/files/{file_id}/{name}",
            "url_private_download": f"{self._server.url}/files/{file_id}/{name}?download=1",
        }

    async def _download(self, request: web.Request) -> web.Response:
        """Files answer only to the bot token; without it Slack answers its sign-in page (200)."""
        auth = request.headers.get("Authorization", "")
        authorized = auth.removeprefix("Bearer ") in self.workspaces
        self.downloads.append({"name": request.match_info["name"], "authorized": authorized})
        found = self.files.get(request.match_info["file_id"])
        if not authorized or found is None:
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        content, mimetype = found
        return web.Response(body=content, headers={"Content-Type": mimetype})

    def fail(self, method: str, *faults: SlackFault) -> None:
        with self._lock:
            self._faults.setdefault(method, []).extend(faults)

    def delay(self, method: str, seconds: float) -> None:
        """Answer every call of `method` only after `seconds` (a slow Slack) until `clear()`."""
        with self._lock:
            self.delays[method] = seconds

    def refuse(self, method: str, error: str) -> None:
        """Answer every call of `method` with `{"ok": false, "error": error}` until `clear()`."""
        with self._lock:
            self.refusals[method] = error

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's messages in a thread, oldest first, as they look after every update."""
        with self._lock:
            found = [
                m
                for (c, _), m in self.messages.items()
                if c == channel and m.get("thread_ts") == thread_ts and m.get("bot_id")
            ]
        return sorted(found, key=lambda m: m["ts"])

    def _next_ts(self) -> str:
        return next_ts()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if raw and ctype.startswith("application/json"):
            args.update(json.loads(raw))
        elif raw:
            args.update(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
        call = Call(method, args, dict(request.headers))
        with self._lock:
            self.calls.append(call)
            fault = self._faults.get(method, []).pop(0) if self._faults.get(method) else None
            delay = self.delays.get(method, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            if fault.status == 429:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(fault.retry_after)},
                )
            if fault.status != 200:
                return web.json_response(
                    {"ok": False, "error": "internal_error"}, status=fault.status
                )
            return web.json_response({"ok": False, "error": fault.error})
        if method == "oauth.v2.access":
            return web.json_response(self._oauth_v2_access(args, request.headers))
        token = call.token
        if method == "apps.connections.open":
            caller = FakeWorkspace() if token == self.app_token else None
        else:
            caller = self.workspaces.get(token)
        if caller is None:
            error = "token_revoked" if token in self.revoked else "invalid_auth"
            return web.json_response({"ok": False, "error": error})
        if method in self.refusals:
            return web.json_response({"ok": False, "error": self.refusals[method]})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": True})
        _CALLER.set(caller)
        result = handler(args)
        headers = {"x-oauth-scopes": SCOPES} if method == "auth.test" else {}
        return web.json_response(result, headers=headers)

    def _oauth_v2_access(self, args: dict[str, Any], headers: Any) -> dict[str, Any]:
        """Code exchange and token refresh; client credentials by HTTP Basic or in the args."""
        basic = headers.get("Authorization", "").removeprefix("Basic ")
        client_id, _, secret = (
            base64.b64decode(basic).decode().partition(":") if basic else ("", "", "")
        )
        client_id = client_id or args.get("client_id", "")
        secret = secret or args.get("client_secret", "")
        if client_id != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if secret != self.client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        with self._lock:
            if args.get("grant_type") == "refresh_token":
                return self._rotate(str(args.get("refresh_token", "")))
            found = self._codes.pop(str(args.get("code", "")), None)  # a code works once
            if found is None:
                return {"ok": False, "error": "invalid_code"}
            response = found["response"]
            self.workspaces[response["access_token"]] = found["workspace"]
            if "refresh_token" in response:
                self._refresh[response["refresh_token"]] = found["workspace"]
            return dict(response)

    def _rotate(self, refresh_token: str) -> dict[str, Any]:
        known = self._refresh.pop(refresh_token, None)  # Slack revokes the refresh token used
        if known is None:
            return {"ok": False, "error": "invalid_refresh_token"}
        workspace = known
        token = f"xoxe.xoxb-{workspace.team}-r{next(_serial)}-{uuid.uuid4().hex[:12]}"
        new_refresh = f"xoxe-1-{uuid.uuid4().hex}"
        self.workspaces[token] = workspace
        self._refresh[new_refresh] = workspace
        return {
            "ok": True,
            "app_id": APP_ID,
            "token_type": "bot",
            "access_token": token,
            "refresh_token": new_refresh,
            "expires_in": ROTATED_EXPIRES_IN,
            "bot_user_id": workspace.bot_user,
            "team": None if workspace.org_install else {"id": workspace.team},
            "enterprise": {"id": workspace.enterprise} if workspace.enterprise else None,
            "is_enterprise_install": workspace.org_install,
        }

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        caller = _CALLER.get()
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "gpt",
            "team_id": caller.team,
            "user_id": caller.bot_user,
            "bot_id": caller.bot_id,
            "enterprise_id": caller.enterprise,
            "is_enterprise_install": caller.org_install,
        }

    def _check_content(self, args: dict[str, Any]) -> str | None:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
            args["blocks"] = blocks
        if args.get("markdown_text") and (args.get("text") or blocks):
            return "invalid_arguments"
        if not (args.get("text") or blocks or args.get("markdown_text")):
            return "no_text"
        if blocks:
            if len(blocks) > 50:
                return "invalid_blocks"
            if _markdown_total(blocks) > 12_000:
                return "msg_blocks_too_long"
            if any(
                b.get("type") == "context_actions" and not _context_actions_ok(b) for b in blocks
            ):
                return "invalid_blocks"
        if len(str(args.get("markdown_text") or "")) > 12_000:
            return "msg_too_long"
        if len(str(args.get("text") or "")) > 40_000:
            return "msg_too_long"
        return None

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        problem = self._check_content(args)
        if problem:
            return {"ok": False, "error": problem}
        ts = self._next_ts()
        message = {
            "ts": ts,
            "channel": args["channel"],
            "thread_ts": args.get("thread_ts"),
            "text": args.get("text"),
            "blocks": args.get("blocks"),
            "markdown_text": args.get("markdown_text"),
            "metadata": _json_arg(args.get("metadata")),
            "user": _CALLER.get().bot_user,
            "bot_id": _CALLER.get().bot_id,
            "updates": 0,
            "created_at": time.monotonic(),
        }
        message["versions"] = [(message["created_at"], message_text(message))]
        with self._lock:
            self.messages[(args["channel"], ts)] = message
            if args.get("thread_ts") and (args["channel"], args["thread_ts"]) in self.statuses:
                self.statuses[(args["channel"], args["thread_ts"])] = ""  # a reply clears it
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (args.get("channel", ""), args.get("ts", ""))
        with self._lock:
            message = self.messages.get(key)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        problem = self._check_content(args)
        if problem:
            return {"ok": False, "error": problem}
        with self._lock:
            message.update(
                text=args.get("text"),
                blocks=args.get("blocks"),
                markdown_text=args.get("markdown_text"),
                updates=message["updates"] + 1,
            )
            if args.get("metadata") is not None:
                message["metadata"] = _json_arg(args.get("metadata"))
            message["versions"].append((time.monotonic(), message_text(message)))
        return {"ok": True, "channel": key[0], "ts": key[1]}

    def _m_assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        """The status line under a thread (`status` "" clears it); at most 10 loading messages."""
        channel, thread_ts = args.get("channel_id"), args.get("thread_ts")
        loading = _json_arg(args.get("loading_messages")) or []
        if not channel or not thread_ts or "status" not in args or len(loading) > 10:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            self.statuses[(str(channel), str(thread_ts))] = str(args["status"])
        return {"ok": True}

    def _m_assistant_threads_setSuggestedPrompts(self, args: dict[str, Any]) -> dict[str, Any]:
        prompts = _json_arg(args.get("prompts")) or []
        valid = isinstance(prompts, list) and 1 <= len(prompts) <= 4
        if not valid or not all(p.get("title") and p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        if not args.get("channel_id"):
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            self.suggested[(args["channel_id"], str(args.get("thread_ts") or ""))] = prompts
        return {"ok": True}

    def _m_assistant_threads_setTitle(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel_id") or not args.get("thread_ts") or not args.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            self.titles[(args["channel_id"], args["thread_ts"])] = args["title"]
        return {"ok": True}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's top-level messages (and broadcasts), newest first, `limit` of them."""
        channel = args.get("channel", "")
        if channel not in self.members:
            return {
                "ok": False,
                "error": "channel_not_found" if channel[:1] == "G" else "not_in_channel",
            }
        with self._lock:
            found = [
                {k: v for k, v in m.items() if k not in ("versions", "created_at", "updates")}
                for (c, ts), m in self.messages.items()
                if c == channel and m.get("thread_ts") in (None, ts)
            ]
        found.sort(key=lambda m: m["ts"], reverse=True)
        limit = int(args.get("limit") or 100)
        if str(args.get("include_all_metadata", "")).lower() not in ("1", "true"):
            for m in found:
                m.pop("metadata", None)
        return {
            "ok": True,
            "messages": found[:limit],
            "has_more": len(found) > limit,
            "response_metadata": {"next_cursor": ""},
        }

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        """Shown to `user` only; it is not stored in the channel (nor in `thread()`)."""
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        problem = self._check_content(args)
        if problem:
            return {"ok": False, "error": problem}
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The parent and its replies, oldest first, a page at a time (`cursor` = offset)."""
        channel, ts = args.get("channel", ""), args.get("ts", "")
        with self._lock:
            thread = sorted(
                (
                    dict(m)
                    for (c, _), m in self.messages.items()
                    if c == channel and (m["ts"] == ts or m.get("thread_ts") == ts)
                ),
                key=lambda m: m["ts"],
            )
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        limit = min(int(args.get("limit") or 1000), self.replies_page_cap or 1000)
        start = int(args.get("cursor") or 0)
        page = thread[start : start + limit]
        if str(args.get("include_all_metadata", "")).lower() not in ("1", "true"):
            for m in page:
                m.pop("metadata", None)
        more = start + limit < len(thread)
        return {
            "ok": True,
            "messages": [
                {k: v for k, v in m.items() if k not in ("versions", "created_at", "updates")}
                for m in page
            ],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _json_arg(args.get("view")) or {}
        blocks = view.get("blocks") or []
        if not args.get("user_id") or view.get("type") != "home" or len(blocks) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        for block in blocks:
            limit = {"section": 3000, "header": 150}.get(block.get("type"), 3000)
            if len(str((block.get("text") or {}).get("text", ""))) > limit:
                return {"ok": False, "error": "invalid_blocks"}
        with self._lock:
            self.homes[args["user_id"]] = view
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:8].upper(), **view}}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:8].upper(), **(view or {})}}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self._server.url.replace("http://", "ws://")
        return {"ok": True, "url": f"{ws}/link/?ticket={uuid.uuid4()}"}

    def response_url(self, team: str = "T0000TEAM") -> str:
        """A slash command's `response_url` on this fake (Slack's look like
        ``https://hooks.slack.com/commands/T…/…/…``): what is POSTed there lands in
        `responses`."""
        return f"{self._server.url}/commands/{team}/1/x"

    async def _respond(self, request: web.Request) -> web.Response:
        """A `response_url`: Slack takes a JSON message (`text`, `response_type`,
        `replace_original`) and answers 200 with the body ``ok``."""
        body = await request.json()
        with self._lock:
            self.responses.append(body)
        return web.Response(text="ok")

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": APP_ID},
                    "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                }
            )
        )
        self.sockets.append(ws)
        with self._lock:
            self.socket_connections += 1
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self.socket_acks.append(data)
        if ws in self.sockets:
            self.sockets.remove(ws)
        return ws

    def push_envelope(self, payload: dict[str, Any], kind: str = "events_api") -> str:
        """Send a Socket Mode envelope to every connected client; returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }

        async def send() -> None:
            for ws in list(self.sockets):
                await ws.send_str(json.dumps(envelope))

        self._server.call(send)
        return envelope_id

    def wait_for_socket(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.sockets:
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode client connected")
            time.sleep(0.05)
