"""The Slack Web API client of the turn path: slack_sdk's `AsyncWebClient`, with its JSON POST
calls sent straight over the shared aiohttp session.

Every turn makes two or three Slack calls (the status line or placeholder, the answer, an
update). slack_sdk builds each through layers a plain JSON POST does not need (request arguments
for every body kind, a retry-handler loop, per-call debug formatting); measured against the fake
Web API, those layers cost about as much CPU as the HTTP exchange itself. `LeanWebClient` keeps
slack_sdk's method signatures, responses (`AsyncSlackResponse`) and errors (`SlackApiError`,
raised by `validate()` when Slack answers `ok: false`), and does the exchange itself for JSON
POSTs; anything else (query-string calls, form bodies, files) goes through slack_sdk unchanged.

Slack facts it keeps: the token travels as `Authorization: Bearer`; a JSON body is sent as
`application/json;charset=utf-8`; a client default such as `team_id` is added to the body; an
HTTP 429 carries an integer `Retry-After` (seconds) and is retried after it, up to
`rate_limit_retries` times (0 for streaming progress updates: a skipped update costs nothing, a
waited one stalls the stream); a connection that broke before an answer is retried once. A 5xx
is not retried: a retried `chat.postMessage` could post twice.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import orjson
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.web.internal_utils import get_user_agent

_CONNECTION_ERRORS = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ServerConnectionError,
    aiohttp.ClientOSError,
)


TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack API errors that pass (a rate limit, an outage): asking again later may succeed."""


class LeanWebClient(AsyncWebClient):
    """`AsyncWebClient` whose JSON POSTs skip slack_sdk's request layers (see the module)."""

    def __init__(self, *args: Any, rate_limit_retries: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limit_retries = rate_limit_retries
        self._urls: dict[str, str] = {}
        self._timeout = aiohttp.ClientTimeout(total=self.timeout)
        self._user_agent: str = get_user_agent()

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: dict[str, str] | None = None,
    ) -> AsyncSlackResponse:
        lean = (
            json is not None
            and http_verb == "POST"
            and self.session is not None
            and not (files or data or params or headers or auth)
        )
        if not lean:
            return await super().api_call(
                api_method,
                http_verb=http_verb,
                files=files,
                data=data,
                params=params,
                json=json,
                headers=headers,
                auth=auth,
            )
        assert json is not None
        return await self._post_json(api_method, json)

    async def _post_json(self, api_method: str, payload: dict[str, Any]) -> AsyncSlackResponse:
        body = dict(payload)
        for key, value in self.default_params.items():
            body.setdefault(key, value)
        token = body.pop("token", None) or self.token
        url = self._urls.get(api_method) or self._urls.setdefault(
            api_method, self.base_url + api_method
        )
        request_headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json;charset=utf-8",
            "User-Agent": self._user_agent,
        }
        encoded = _dumps(body)
        rate_limited = connection_failures = 0
        while True:
            try:
                status, response_headers, raw = await self._exchange(url, encoded, request_headers)
            except _CONNECTION_ERRORS:
                connection_failures += 1
                if connection_failures > 1:
                    raise
                await asyncio.sleep(0.5 * (1 + random.random()))
                continue
            if status == 429 and rate_limited < self.rate_limit_retries:
                rate_limited += 1
                await asyncio.sleep(retry_after(response_headers) + random.random())
                continue
            try:
                data = orjson.loads(raw) if raw else {}
            except ValueError:
                data = {}  # not Slack's JSON (a proxy's error page): validate() raises
            response = AsyncSlackResponse(
                client=self,
                http_verb="POST",
                api_url=url,
                req_args={"json": body},
                data=data,
                headers=response_headers,
                status_code=status,
            )
            validated: AsyncSlackResponse = response.validate()  # type: ignore[no-untyped-call]
            return validated

    async def _exchange(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.session is not None
        async with self.session.post(
            url,
            data=body,
            headers=headers,
            timeout=self._timeout,
            ssl=self.ssl if self.ssl is not None else True,
            proxy=self.proxy,
        ) as response:
            raw = await response.read()
            return response.status, dict(response.headers), raw


def _dumps(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (orjson: several times faster than `json` for the bodies of every turn)."""
    return orjson.dumps(body)


def retry_after(headers: dict[str, str]) -> float:
    """Slack's `Retry-After` (seconds), 1 when absent or unreadable."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return float(int(value))
            except ValueError:
                return 1.0
    return 1.0


def client_like(template: AsyncWebClient, token: str, *, retry_rate_limits: bool) -> AsyncWebClient:
    """A client for `token` of the template's class, with its API URL, timeout, session, team
    and retries (the 429 retry only with `retry_rate_limits`)."""
    handlers = [
        h
        for h in template.retry_handlers
        if retry_rate_limits or not isinstance(h, AsyncRateLimitErrorRetryHandler)
    ]
    options: dict[str, Any] = {
        "token": token,
        "base_url": template.base_url,
        "timeout": template.timeout,
        "session": template.session,
        "retry_handlers": handlers,
        "team_id": template.default_params.get("team_id"),
    }
    if isinstance(template, LeanWebClient):
        retries = template.rate_limit_retries if retry_rate_limits else 0
        return LeanWebClient(rate_limit_retries=retries, **options)
    return AsyncWebClient(**options)
