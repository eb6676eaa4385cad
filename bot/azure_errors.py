"""Azure OpenAI's wire facts about failures and results: error bodies → the exception tree,
content-filter categories, usage, request ids (reference/azure-openai.md §3 and §5).

Error bodies are not uniform (gateway 401s have no `error` wrapper, `code` is a string, a number
or null, the spec's `inner_error` is `innererror` on the wire), so everything is read defensively.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot import errors
from bot.chat_types import Usage
from bot.retry import is_retryable_status


def request_id_of(headers: httpx.Headers) -> str | None:
    value = headers.get("apim-request-id") or headers.get("x-request-id")
    return str(value) if value else None


def filtered_categories(results: object) -> tuple[str, ...]:
    """Names of the categories marked `filtered: true` in a content-filter result object."""
    if not isinstance(results, dict):
        return ()
    names: list[str] = []
    for name, value in results.items():
        if isinstance(value, dict) and value.get("filtered") is True:
            names.append(name.replace("-", "_"))
        elif name == "custom_blocklists" and isinstance(value, list):
            names.extend(
                f"blocklist {item.get('id')}"
                for item in value
                if isinstance(item, dict) and item.get("filtered")
            )
    return tuple(names)


def map_error(status: int, body: bytes, headers: httpx.Headers) -> errors.AzureOpenAIError:
    """Translate an error response into the exception tree (§5). Bodies are not uniform."""
    text = body.decode("utf-8", "replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):  # gateway 401s have {statusCode, message} and no "error" (§5.1)
        err = data if isinstance(data, dict) else {}
    code = err.get("code")
    code = str(code) if code is not None else None
    message = str(err.get("message") or text[:300] or f"HTTP {status}")
    common: dict[str, Any] = {"status": status, "code": code, "request_id": request_id_of(headers)}
    if status in (401, 403):
        return errors.AuthenticationFailed(message, **common)
    if status == 404:
        if code == "DeploymentNotFound":
            return errors.DeploymentNotFound(message, **common)
        return errors.ResourceNotFound(message, **common)
    if status == 429:
        return errors.RateLimited(message, **common)
    if status == 400 and code == "content_filter":
        inner = err.get("innererror") or err.get("inner_error") or {}
        results: object = None
        if isinstance(inner, dict):
            results = inner.get("content_filter_result") or inner.get("content_filter_results")
        return errors.ContentFiltered(
            message, categories=filtered_categories(results), where="prompt", **common
        )
    if status == 400 and code == "context_length_exceeded":
        return errors.ContextTooLong(message, **common)
    if status == 400 and "api version" in message.lower():
        return errors.ApiVersionUnsupported(message, **common)
    if is_retryable_status(status):
        return errors.AzureUnavailable(message, **common)
    return errors.InvalidRequest(message, **common)


def usage_of(data: object) -> Usage | None:
    if not isinstance(data, dict):
        return None
    try:
        return Usage(
            int(data.get("prompt_tokens") or 0),
            int(data.get("completion_tokens") or 0),
            int(data.get("total_tokens") or 0),
        )
    except (TypeError, ValueError):
        return None
