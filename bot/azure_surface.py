"""Which URL a chat completion goes to, and which body fields the configured api-version takes.

The deployment API is `POST {endpoint}/openai/deployments/{deployment}/chat/completions
?api-version=...`. The endpoint is an opaque base URL whose trailing '/' is dropped: joined as is,
the quickstart's `https://NAME.openai.azure.com/` gives `//openai/...` and Azure answers 404
Resource not found. The deployment name is URL-quoted and the api-version travels as a query
parameter, never concatenated by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bot.chat_types import ChatOptions, Message


def supports_stream_usage(api_version: str) -> bool:
    """`stream_options.include_usage` exists from 2024-09-01-preview and in GA 2024-10-21.

    Older versions (2023-05-15, 2024-02-01, 2024-06-01) answer 400 "Unrecognized request
    argument supplied: stream_options" to it, so it must not be sent to them.
    """
    return api_version[:10] >= "2024-09-01" and api_version[:4].isdigit()


class Surface:
    """The deployment API at one api-version: its URLs and its body rules."""

    def __init__(self, endpoint: str, api_version: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version
        self._urls: dict[str, httpx.URL] = {}

    def url_text(self, deployment: str) -> str:
        """`{endpoint}/openai/deployments/{deployment}/chat/completions`, never with `//`."""
        name = quote(deployment, safe="")
        return f"{self.endpoint}/openai/deployments/{name}/chat/completions"

    def url(self, deployment: str) -> httpx.URL:
        """The request URL with its api-version, parsed once per deployment, not once per call."""
        url = self._urls.get(deployment)
        if url is None:
            url = httpx.URL(self.url_text(deployment), params={"api-version": self.api_version})
            self._urls[deployment] = url
        return url

    def body(
        self, messages: Sequence[Message], options: ChatOptions, *, stream: bool = False
    ) -> dict[str, Any]:
        """The JSON body: only fields every supported api-version knows, plus stream options
        where the version accepts them (2023-05-15 answers 400 to any argument it does not
        know, e.g. "Unrecognized request argument supplied: functions")."""
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
