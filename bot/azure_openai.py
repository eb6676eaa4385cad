"""`AzureOpenAIClient`: the chat completions call of Azure's REST quickstart, over an injected
httpx transport.

The work is split by what each part knows: `azure_surface` the URL and body rules of the
configured api-version, `azure_auth` the api-key or Entra token, `azure_http` the POST with its
retries, `azure_results` how answers (JSON or a stream) become a `ChatResult`, `azure_errors` how
failures become the exception tree, `azure_deployments` which deployments take the reasoning
parameter set. This module puts them together. The client never logs a key and never puts one
in an exception.

Reasoning deployments need no configuration: a deployment not yet known to be one gets the
classic set; if Azure refuses `max_tokens`, `temperature` or `top_p` with a 400, the call is sent
again at once, once, with the reasoning set, and the finding is remembered, so the user never
sees the refusal and later calls send the right set first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import orjson
from pydantic import SecretStr

from bot import errors
from bot.azure_auth import ENTRA_SCOPE, Auth, TokenProvider, static_token_provider
from bot.azure_deployments import (
    DeploymentMemory,
    Deployments,
    InMemoryDeployments,
    refuses_classic_params,
)
from bot.azure_errors import request_id_of
from bot.azure_http import DEFAULT_TIMEOUT, AzureHttp, ClientObserver
from bot.azure_results import read_stream, result_of
from bot.azure_surface import Surface, supports_stream_usage
from bot.chat_types import ChatOptions, ChatResult, DeltaCallback, Message
from bot.retry import RetryPolicy

__all__ = [
    "ENTRA_SCOPE",
    "AzureOpenAIClient",
    "ClientObserver",
    "TokenProvider",
    "static_token_provider",
    "supports_stream_usage",
]


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
        memory: DeploymentMemory | None = None,
    ) -> None:
        auth = Auth(api_key=api_key, secondary_key=secondary_key, token_provider=token_provider)
        self._http = AzureHttp(
            transport, auth, retry=retry, sleep=sleep, observer=observer, timeout=timeout
        )
        self.surface = Surface(endpoint, api_version)
        self.deployments = Deployments(memory or InMemoryDeployments(), self.surface.endpoint)
        self.deployment = deployment
        self.api_version = api_version

    def url(self, deployment: str | None = None) -> str:
        """The chat completions URL of `deployment` (default: the configured one)."""
        return self.surface.url_text(deployment or self.deployment)

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
                result = await self._complete_streaming(messages, options, on_delta, started)
            outcome = "ok"
            return result
        finally:
            self._http.observer.finished(time.perf_counter() - started, outcome)

    async def _complete_streaming(
        self,
        messages: Sequence[Message],
        options: ChatOptions,
        on_delta: DeltaCallback,
        started: float,
    ) -> ChatResult:
        first = True
        async for item in self.stream(messages, options):
            if isinstance(item, str):
                if first:
                    self._http.observer.first_token(time.perf_counter() - started)
                    first = False
                await on_delta(item)
            else:
                return item
        raise errors.StreamInterrupted("stream ended without a result")  # stream() never does

    async def _complete_once(self, messages: Sequence[Message], options: ChatOptions) -> ChatResult:
        deployment = options.deployment or self.deployment
        response = await self._post(messages, options, deployment, stream=False)
        try:
            raw = await response.aread()
        except httpx.TransportError as exc:
            raise errors.AzureUnavailable(f"reading the answer failed: {exc!r}") from exc
        finally:
            await response.aclose()
        try:
            data = orjson.loads(raw)
        except ValueError as exc:
            raise errors.AzureUnavailable("Azure returned a body that is not JSON") from exc
        result = result_of(data, deployment, request_id_of(response.headers))
        await self.deployments.learn(deployment, model=result.model)
        return result

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[str | ChatResult]:
        """Yield text pieces as Azure streams them, then one final `ChatResult`.

        Tolerates the empty first chunk with `prompt_filter_results`, chunks with `choices: []`,
        `delta: {}` and unknown keys. A stream that ends before `[DONE]` raises
        `StreamInterrupted` carrying the partial text.
        """
        deployment = options.deployment or self.deployment
        response = await self._post(messages, options, deployment, stream=True)
        async for item in read_stream(response, deployment):
            if isinstance(item, ChatResult):
                await self.deployments.learn(deployment, model=item.model)
            yield item

    async def _post(
        self, messages: Sequence[Message], options: ChatOptions, deployment: str, *, stream: bool
    ) -> httpx.Response:
        """Send with the parameter set the deployment is known to take; on Azure's refusal of
        a classic parameter, learn that it is a reasoning deployment and send once more."""
        reasoning = (await self.deployments.facts(deployment)).takes_reasoning_set
        try:
            return await self._send(messages, options, deployment, stream, reasoning)
        except errors.UnsupportedParameter as exc:
            if reasoning or not refuses_classic_params(exc):
                raise
        await self.deployments.learn(deployment, reasoning=True)
        self._http.observer.retried("reasoning_params")
        return await self._send(messages, options, deployment, stream, True)

    async def _send(
        self,
        messages: Sequence[Message],
        options: ChatOptions,
        deployment: str,
        stream: bool,
        reasoning: bool,
    ) -> httpx.Response:
        url = self.surface.url(deployment)
        try:
            body = self.surface.body(
                messages, options, deployment=deployment, stream=stream, reasoning=reasoning
            )
            return await self._http.post(url, body)
        except errors.ApiVersionTooOld as exc:
            exc.configured = exc.configured or self.api_version
            raise
