"""Which URL a chat completion goes to, and which body fields the configured api-version takes.

Two surfaces:

* the deployment API (any dated api-version): `POST {endpoint}/openai/deployments/{deployment}
  /chat/completions?api-version=...`; the deployment in the path selects the model, so the body
  has no `model`;
* the v1 API (`AZURE_OPENAI_API_VERSION=v1`): `POST {endpoint}/openai/v1/chat/completions` with
  no api-version at all and the deployment name in the body's `model`.

The endpoint is an opaque base URL whose trailing '/' is dropped: joined as is, the quickstart's
`https://NAME.openai.azure.com/` gives `//openai/...` and Azure answers 404 Resource not found.
The deployment name is URL-quoted and the api-version travels as a query parameter.

Two parameter sets: the classic one (`max_tokens`, `temperature`, `top_p`), and the reasoning
one for o-series and gpt-5 deployments, which answer 400 to `max_tokens` ("Use
'max_completion_tokens' instead") and to a non-default temperature: `max_completion_tokens`, no
temperature/top_p, and `reasoning_effort` where the version knows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bot import errors
from bot.chat_types import ChatOptions, Message

V1 = "v1"
COMPLETION_TOKENS_FROM = "2024-09-01-preview"
"""The first api-version with `max_completion_tokens` (and stream usage); GA from 2024-10-21."""
REASONING_EFFORT_FROM = "2024-12-01-preview"
"""The first api-version with `reasoning_effort`; no GA dated version has it."""


def _dated_from(api_version: str, first: str) -> bool:
    return api_version[:4].isdigit() and api_version[:10] >= first[:10]


def supports_stream_usage(api_version: str) -> bool:
    """`stream_options.include_usage` exists on v1, from 2024-09-01-preview and in GA 2024-10-21.

    Older versions (2023-05-15, 2024-02-01, 2024-06-01) answer 400 "Unrecognized request
    argument supplied: stream_options" to it, so it must not be sent to them.
    """
    return api_version == V1 or _dated_from(api_version, COMPLETION_TOKENS_FROM)


class Surface:
    """One API surface at one api-version: its URLs and its body rules."""

    def __init__(self, endpoint: str, api_version: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version
        self.v1 = api_version == V1
        self.takes_completion_tokens = self.v1 or _dated_from(api_version, COMPLETION_TOKENS_FROM)
        self.takes_reasoning_effort = self.v1 or _dated_from(api_version, REASONING_EFFORT_FROM)
        self.stream_usage = supports_stream_usage(api_version)
        self._urls: dict[str, httpx.URL] = {}

    @property
    def name(self) -> str:
        """How `doctor` names what it tested."""
        if self.v1:
            return f"v1 API (POST {self.endpoint}/openai/v1/chat/completions)"
        return f"deployment API, api-version {self.api_version}"

    def url_text(self, deployment: str) -> str:
        """The chat completions URL without its query, never with `//`."""
        if self.v1:
            return f"{self.endpoint}/openai/v1/chat/completions"
        name = quote(deployment, safe="")
        return f"{self.endpoint}/openai/deployments/{name}/chat/completions"

    def url(self, deployment: str) -> httpx.URL:
        """The request URL, parsed once per deployment, not once per call."""
        url = self._urls.get(deployment)
        if url is None:
            params = {} if self.v1 else {"api-version": self.api_version}
            url = httpx.URL(self.url_text(deployment), params=params)
            self._urls[deployment] = url
        return url

    def body(
        self,
        messages: Sequence[Message],
        options: ChatOptions,
        *,
        deployment: str,
        stream: bool = False,
        reasoning: bool = False,
    ) -> dict[str, Any]:
        """The JSON body: only fields this api-version defines.

        2023-05-15 answers 400 to any argument it does not know (e.g. "Unrecognized request
        argument supplied: functions"), so nothing is sent that the version's spec lacks.
        Raises `ApiVersionTooOld` for a reasoning deployment with a token budget on a version
        without `max_completion_tokens`.
        """
        body: dict[str, Any] = {"messages": [dict(m) for m in messages]}
        if self.v1:
            body["model"] = deployment
        if reasoning:
            self._reasoning_fields(body, options)
        else:
            for name in ("temperature", "top_p", "max_tokens"):
                value = getattr(options, name)
                if value is not None:
                    body[name] = value
        if options.user is not None:
            body["user"] = options.user
        if stream:
            body["stream"] = True
            if self.stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _reasoning_fields(self, body: dict[str, Any], options: ChatOptions) -> None:
        if options.max_tokens is not None:
            if not self.takes_completion_tokens:
                raise errors.ApiVersionTooOld(
                    f"a reasoning deployment needs max_completion_tokens, which api-version "
                    f"{self.api_version} does not have",
                    needed="2024-10-21",
                    configured=self.api_version,
                )
            body["max_completion_tokens"] = options.max_tokens
        if options.reasoning_effort is not None and self.takes_reasoning_effort:
            body["reasoning_effort"] = options.reasoning_effort
