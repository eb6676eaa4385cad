"""Azure's answers read into a `ChatResult`: a JSON body, or a server-sent event stream.

Everything is read defensively, because the service's answers vary: `choices` may be `[]` (the
first stream chunk, which only carries `prompt_filter_results`, and the usage chunk),
`message.content` may be missing or null (a filtered completion), `delta` may be `{}`, and new
keys appear without a version change, so unknown keys are ignored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bot import errors
from bot.azure_errors import completion_filtered, map_error, request_id_of
from bot.chat_types import ChatResult, Usage


def usage_of(data: object) -> Usage | None:
    """The `usage` object, or None when Azure sent none (streams without include_usage)."""
    if not isinstance(data, dict):
        return None
    details = data.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    try:
        return Usage(
            int(data.get("prompt_tokens") or 0),
            int(data.get("completion_tokens") or 0),
            int(data.get("total_tokens") or 0),
            int(reasoning or 0),
        )
    except (TypeError, ValueError):
        return None


def result_of(data: object, deployment: str, request_id: str | None) -> ChatResult:
    """A non-streamed answer's body as a `ChatResult`.

    A completion blocked by the content filter is a 200 with `finish_reason: content_filter` and
    often no `content` key at all; it raises `ContentFiltered`.
    """
    if not isinstance(data, dict):
        raise errors.AzureUnavailable("Azure returned an unexpected body")
    choices = data.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    finish = choice.get("finish_reason")
    if finish == "content_filter" and not content:
        raise completion_filtered(choice.get("content_filter_results"), request_id)
    return _checked(
        ChatResult(
            content=content if isinstance(content, str) else "",
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage_of(data.get("usage")),
            model=str(data.get("model") or ""),
            request_id=request_id,
            deployment=deployment,
            raw=data,
        )
    )


def _checked(result: ChatResult) -> ChatResult:
    """Refuse an answer that is empty because its whole budget went to reasoning: Azure ends
    it with `finish_reason: length` and no text, and an empty Slack message helps nobody."""
    if result.finish_reason == "length" and not result.content.strip():
        reasoning = result.usage.reasoning_tokens if result.usage else 0
        raise errors.ReasoningBudgetExhausted(
            f"finish_reason length with no text ({reasoning} reasoning tokens)",
            model=result.model,
            reasoning_tokens=reasoning,
            status=200,
            code="length",
            request_id=result.request_id,
        )
    return result


@dataclass
class _Accumulated:
    """What the chunks of one stream have said so far."""

    parts: list[str] = field(default_factory=list)
    finish: str | None = None
    usage: Usage | None = None
    model: str = ""
    filter_results: object = None

    def take(self, chunk: dict[str, Any]) -> Iterator[str]:
        """Record one chunk; yield its text. Only choice 0 is read (the bot never asks for n>1)."""
        self.model = chunk.get("model") or self.model
        self.usage = usage_of(chunk.get("usage")) or self.usage
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                self.parts.append(text)
                yield text
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.filter_results = choice.get("content_filter_results")

    def result(self, deployment: str, request_id: str | None) -> ChatResult:
        content = "".join(self.parts)
        if self.finish == "content_filter" and not content:
            raise completion_filtered(self.filter_results, request_id)
        return _checked(
            ChatResult(
                content=content,
                finish_reason=self.finish,
                usage=self.usage,
                model=self.model,
                request_id=request_id,
                deployment=deployment,
            )
        )


async def read_stream(response: httpx.Response, deployment: str) -> AsyncIterator[str | ChatResult]:
    """Yield text pieces as Azure streams them, then one final `ChatResult`; closes `response`.

    The stream is data-only server-sent events ending with `data: [DONE]`. A chunk with an
    `error` key is raised as the error it describes. A stream that ends before `[DONE]` raises
    `StreamInterrupted` carrying the partial text.
    """
    request_id = request_id_of(response.headers)
    seen = _Accumulated()
    done = False
    try:
        async for data in _sse_data(response):
            if data.startswith("[DONE]"):
                done = True
                break
            chunk = _json_object(data)
            if chunk is None:
                continue
            if chunk.get("error"):
                raise map_error(400, json.dumps(chunk).encode(), response.headers)
            for text in seen.take(chunk):
                yield text
    except httpx.TransportError as exc:
        raise errors.StreamInterrupted(
            f"stream broke: {type(exc).__name__}",
            partial="".join(seen.parts),
            request_id=request_id,
        ) from exc
    finally:
        await response.aclose()
    if not done:
        raise errors.StreamInterrupted(
            "stream ended without [DONE]", partial="".join(seen.parts), request_id=request_id
        )
    yield seen.result(deployment, request_id)


def _json_object(data: str) -> dict[str, Any] | None:
    try:
        chunk = orjson.loads(data)
    except ValueError:
        return None
    return chunk if isinstance(chunk, dict) else None


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent event stream, as openai-python's decoder reads them:
    blank lines end an event, `:` lines are comments, one space after `data:` is dropped, and
    multi-line data is joined by '\\n'."""
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
