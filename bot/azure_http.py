"""One POST to Azure OpenAI with bounded retries: what comes back is an open 2xx response or an
error of the tree.

It sends through the transport rather than an `httpx.AsyncClient`: the client layer's cookie
jar, auth flow, redirect loop and URL merging cost about half of the CPU of each call in the
benchmark's profile, and a call to Azure needs none of them (no cookies, no redirects, auth is one
header). On the bot's own transport it uses its direct POST (`bot.azure_transport`); on any other
(`httpx.MockTransport` in tests), `handle_async_request`, with the timeouts in the request's
`timeout` extension, as the client would send them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from bot import errors
from bot.azure_auth import Auth
from bot.azure_errors import map_error
from bot.azure_transport import AzureTransport
from bot.retry import RetryPolicy, is_retryable_status, server_delay

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
USER_AGENT = "slack-azure-gpt/0.1"
_BASE_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
}


class ClientObserver(Protocol):
    """Receives what the metrics want to know; the default does nothing."""

    def retried(self, reason: str) -> None: ...
    def finished(self, seconds: float, outcome: str) -> None: ...
    def first_token(self, seconds: float) -> None: ...


class NoObserver:
    def retried(self, reason: str) -> None:
        pass

    def finished(self, seconds: float, outcome: str) -> None:
        pass

    def first_token(self, seconds: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failed attempt: the error to raise if it is the last, and what a retry should know."""

    error: errors.AzureOpenAIError
    reason: str
    status: int | None = None
    asked: float | None = None
    """The delay the server asked for, in seconds."""

    @property
    def retryable(self) -> bool:
        return self.status is None or is_retryable_status(self.status)


class AzureHttp:
    """Sends request bodies to Azure over an injected transport, retrying what is worth it."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        auth: Auth,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: ClientObserver | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._transport = transport
        self.auth = auth
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self.observer: ClientObserver = observer or NoObserver()
        self._timeout = timeout.as_dict()

    async def post(self, url: httpx.URL, body: dict[str, Any]) -> httpx.Response:
        """POST with retries; returns an open (streamed) 2xx response or raises a mapped error."""
        content = orjson.dumps(body)
        stream = bool(body.get("stream"))
        retries = 0
        waited = 0.0
        rotated = False
        while True:
            outcome = await self._attempt(url, content, stream)
            if isinstance(outcome, httpx.Response):
                return outcome
            if outcome.status == 401 and not rotated and self.auth.rotate():
                rotated = True
                self.observer.retried("secondary_key")
                continue
            if not outcome.retryable:
                raise outcome.error
            delay = self._retry.delay_for(retries, waited, outcome.asked)
            if delay is None:
                raise outcome.error
            self.observer.retried(outcome.reason)
            await self._sleep(delay)
            retries += 1
            waited += delay

    async def _attempt(
        self, url: httpx.URL, content: bytes, stream: bool
    ) -> httpx.Response | _Failure:
        headers = {**_BASE_HEADERS, **await self.auth.header()}
        try:
            if isinstance(self._transport, AzureTransport):
                response = await self._transport.post(
                    str(url), content, headers, self._timeout, stream=stream
                )
            else:
                request = httpx.Request(
                    "POST",
                    url,
                    content=content,
                    headers=headers,
                    extensions={"timeout": self._timeout},
                )
                response = await self._transport.handle_async_request(request)
        except httpx.TimeoutException as exc:
            return _Failure(errors.AzureUnavailable(f"timed out: {type(exc).__name__}"), "timeout")
        except httpx.TransportError as exc:
            failure = errors.AzureUnavailable(f"connection failed: {type(exc).__name__}")
            return _Failure(failure, "connection")
        status = response.status_code
        if status < 400:
            return response
        raw = await response.aread()
        await response.aclose()
        asked = server_delay(response.headers, raw.decode("utf-8", "replace"))
        error = map_error(status, raw, response.headers)
        if self.auth.bearer and isinstance(error, errors.AuthenticationFailed):
            error = errors.EntraAccessDenied(
                str(error), status=status, code=error.code, request_id=error.request_id
            )
        return _Failure(error, str(status), status, asked)
