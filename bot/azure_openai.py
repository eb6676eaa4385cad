"""`AzureOpenAIClient`: the chat completions call of Azure's REST quickstart, over an injected
httpx transport.

URL, auth, retries, streaming and error mapping follow reference/azure-openai.md; section numbers in
comments point there. The client never logs a key and never puts one in an exception.

It sends through the transport (`handle_async_request`) rather than an `httpx.AsyncClient`: the
client layer's cookie jar, auth flow, redirect loop and URL merging cost about half of the CPU of
each call in the benchmark's profile, and a call to Azure needs none of them (no cookies, no
redirects, auth is one header set here). Timeouts travel in the request's `timeout` extension,
as the client would send them; `httpx.MockTransport` still works in tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from bot import errors
from bot.azure_errors import filtered_categories, map_error, request_id_of, usage_of
from bot.chat_types import ChatOptions, ChatResult, Message, Usage
from bot.retry import RetryPolicy, is_retryable_status, server_delay

TokenProvider = Callable[[], Awaitable[str]]
"""Returns an Entra ID access token for scope ENTRA_SCOPE; called before every request (§1.3)."""
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
DeltaCallback = Callable[[str], Awaitable[None]]
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
USER_AGENT = "slack-azure-gpt/0.1"


class ClientObserver(Protocol):
    """Receives what the metrics want to know; the default does nothing."""

    def retried(self, reason: str) -> None: ...
    def finished(self, seconds: float, outcome: str) -> None: ...


class _NoObserver:
    def retried(self, reason: str) -> None:
        pass

    def finished(self, seconds: float, outcome: str) -> None:
        pass


def supports_stream_usage(api_version: str) -> bool:
    """`stream_options.include_usage` exists from 2024-09-01-preview and in GA 2024-10-21 (§4.4).

    Older versions answer 400 to the unknown field, so it must not be sent to them.
    """
    return api_version[:10] >= "2024-09-01" and api_version[:4].isdigit()


class AzureOpenAIClient:
    """Calls one Azure OpenAI resource. Every I/O object comes in through the constructor."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        endpoint: str,
        deployment: str,
        api_version: str,
        api_key: SecretStr | None = None,
        secondary_key: SecretStr | None = None,
        token_provider: TokenProvider | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: ClientObserver | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if api_key is None and token_provider is None:
            raise errors.ConfigError("AzureOpenAIClient needs an api key or a token provider")
        self._transport = transport
        self._timeout = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        self._endpoint = endpoint.rstrip("/")
        self.deployment = deployment
        self.api_version = api_version
        self._keys = [k for k in (api_key, secondary_key) if k is not None]
        self._token_provider = token_provider
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._observer: ClientObserver = observer or _NoObserver()

    def url(self, deployment: str | None = None) -> str:
        """`{endpoint}/openai/deployments/{deployment}/chat/completions` (§1.2), never `//`."""
        name = quote(deployment or self.deployment, safe="")
        return f"{self._endpoint}/openai/deployments/{name}/chat/completions"

    def _request_url(self, deployment: str) -> httpx.URL:
        url = self._urls.get(deployment)
        if url is None:  # parsed once per deployment, not once per call
            url = httpx.URL(self.url(deployment), params={"api-version": self.api_version})
            self._urls[deployment] = url
        return url

    def body(
        self, messages: Sequence[Message], options: ChatOptions, *, stream: bool = False
    ) -> dict[str, Any]:
        """The JSON body. Only fields every supported api-version knows, plus stream options
        where the version accepts them (2023-05-15 rejects unknown arguments, §2.1)."""
        body: dict[str, Any] = {"messages": [dict(m) for m in messages]}
        for name in ("temperature", "top_p", "max_tokens", "user"):
            value = getattr(options, name)
            if value is not None:
                body[name] = value
        if stream:
            body["stream"] = True
            if supports_stream_usage(self.api_version):
                body["stream_options"] = {"include_usage": True}
        return body

    async def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self._token_provider is not None:
            headers["Authorization"] = f"Bearer {await self._token_provider()}"
        else:
            headers["api-key"] = self._keys[0].get_secret_value()
        return headers

    async def _send(self, deployment: str, body: dict[str, Any]) -> httpx.Response:
        """POST with retries; returns an open (streamed) 2xx response or raises a mapped error."""
        retries = 0
        waited = 0.0
        rotated = False
        url = self._request_url(deployment)
        content = json.dumps(
            body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
        while True:
            request = httpx.Request(
                "POST",
                url,
                content=content,
                headers=await self._headers(),
                extensions={"timeout": self._timeout},
            )
            try:
                response = await self._transport.handle_async_request(request)
            except httpx.TimeoutException as exc:
                failure: errors.AzureOpenAIError = errors.AzureUnavailable(
                    f"timed out: {type(exc).__name__}"
                )
                asked = None
                reason = "timeout"
            except httpx.TransportError as exc:
                failure = errors.AzureUnavailable(f"connection failed: {type(exc).__name__}")
                asked = None
                reason = "connection"
            else:
                if response.status_code < 400:
                    return response
                raw = await response.aread()
                await response.aclose()
                failure = map_error(response.status_code, raw, response.headers)
                if (
                    response.status_code == 401
                    and self._token_provider is None
                    and not rotated
                    and len(self._keys) > 1
                ):
                    # Key rotation (quickstart): KEY1 was regenerated, KEY2 still works. Keep
                    # using the key that worked, so later calls do not pay for the 401 again.
                    self._keys.append(self._keys.pop(0))
                    rotated = True
                    self._observer.retried("secondary_key")
                    continue
                if not is_retryable_status(response.status_code):
                    raise failure
                asked = server_delay(response.headers, raw.decode("utf-8", "replace"))
                reason = str(response.status_code)
            delay = self._retry.delay_for(retries, waited, asked)
            if delay is None:
                raise failure
            self._observer.retried(reason)
            await self._sleep(delay)
            retries += 1
            waited += delay

    async def complete(
        self,
        messages: Sequence[Message],
        options: ChatOptions,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> ChatResult:
        """One chat completion. With `on_delta`, streams and reports each piece of text."""
        started = time.perf_counter()
        outcome = "error"
        try:
            if on_delta is None:
                result = await self._complete_once(messages, options)
            else:
                result = await self._complete_streaming(messages, options, on_delta)
            outcome = "ok"
            return result
        finally:
            self._observer.finished(time.perf_counter() - started, outcome)

    async def _complete_streaming(
        self, messages: Sequence[Message], options: ChatOptions, on_delta: DeltaCallback
    ) -> ChatResult:
        async for item in self.stream(messages, options):
            if isinstance(item, str):
                await on_delta(item)
            else:
                return item
        raise errors.StreamInterrupted("stream ended without a result")  # stream() never does

    async def _complete_once(self, messages: Sequence[Message], options: ChatOptions) -> ChatResult:
        deployment = options.deployment or self.deployment
        response = await self._send(deployment, self.body(messages, options))
        try:
            raw = await response.aread()
        except httpx.TransportError as exc:
            raise errors.AzureUnavailable(f"reading the answer failed: {exc!r}") from exc
        finally:
            await response.aclose()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise errors.AzureUnavailable("Azure returned a body that is not JSON") from exc
        return self._result(data, deployment, request_id_of(response.headers))

    def _result(self, data: Any, deployment: str, request_id: str | None) -> ChatResult:
        if not isinstance(data, dict):
            raise errors.AzureUnavailable("Azure returned an unexpected body")
        choices = data.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        finish = choice.get("finish_reason")
        if finish == "content_filter" and not content:
            raise errors.ContentFiltered(
                "completion filtered",
                categories=filtered_categories(choice.get("content_filter_results")),
                where="completion",
                status=200,
                code="content_filter",
                request_id=request_id,
            )
        return ChatResult(
            content=content if isinstance(content, str) else "",
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage_of(data.get("usage")),
            model=str(data.get("model") or ""),
            request_id=request_id,
            deployment=deployment,
            raw=data,
        )

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[str | ChatResult]:
        """Yield text pieces as Azure streams them, then one final `ChatResult` (§4).

        Tolerates the empty first chunk with `prompt_filter_results`, chunks with `choices: []`,
        `delta: {}` and unknown keys. A stream that ends before `[DONE]` raises
        `StreamInterrupted` carrying the partial text.
        """
        deployment = options.deployment or self.deployment
        response = await self._send(deployment, self.body(messages, options, stream=True))
        request_id = request_id_of(response.headers)
        parts: list[str] = []
        finish: str | None = None
        usage: Usage | None = None
        model = ""
        filter_results: object = None
        done = False
        try:
            async for data in _sse_data(response):
                if data.startswith("[DONE]"):
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    mapped = map_error(400, json.dumps(chunk).encode(), response.headers)
                    raise mapped
                model = chunk.get("model") or model
                usage = usage_of(chunk.get("usage")) or usage
                for choice in chunk.get("choices") or []:
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(text, str) and text:
                        parts.append(text)
                        yield text
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                        filter_results = choice.get("content_filter_results")
        except httpx.TransportError as exc:
            raise errors.StreamInterrupted(
                f"stream broke: {type(exc).__name__}",
                partial="".join(parts),
                request_id=request_id,
            ) from exc
        finally:
            await response.aclose()
        if not done:
            raise errors.StreamInterrupted(
                "stream ended without [DONE]", partial="".join(parts), request_id=request_id
            )
        content = "".join(parts)
        if finish == "content_filter" and not content:
            raise errors.ContentFiltered(
                "completion filtered",
                categories=filtered_categories(filter_results),
                where="completion",
                status=200,
                code="content_filter",
                request_id=request_id,
            )
        yield ChatResult(
            content=content,
            finish_reason=finish,
            usage=usage,
            model=model,
            request_id=request_id,
            deployment=deployment,
        )


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent event stream (multi-line data joined by '\\n')."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith(":"):
            continue
        if line.startswith("data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)


def static_token_provider(token: SecretStr) -> TokenProvider:
    """A provider for a fixed Entra token (`AZURE_OPENAI_AD_TOKEN`); a real deployment would pass
    azure-identity's `get_bearer_token_provider(credential, ENTRA_SCOPE)` instead."""

    async def provide() -> str:
        return token.get_secret_value()

    return provide
