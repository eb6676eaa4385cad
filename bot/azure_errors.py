"""Azure OpenAI's failures read into the exception tree: error bodies, content-filter
categories, request ids.

Error bodies are not uniform, so everything is read defensively: Azure's gateway 401s (a bad or
expired Entra token) are `{statusCode, message}` with no `error` wrapper; `code` is a numeric
string ("429"), a symbol ("DeploymentNotFound", "content_filter") or null; `type` and `param` are
often null; and the spec's `inner_error.content_filter_results` is spelled
`innererror.content_filter_result` on the wire, so both spellings are read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from bot import errors
from bot.retry import is_retryable_status

_ENABLED_FROM = re.compile(r"enabled only for api versions (\S+) and later", re.IGNORECASE)
"""A model newer than the api-version: 400 BadRequest "Model {modelName} is enabled only for
api versions 2024-12-01-preview and later"."""


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
    """Translate an error response into the exception tree."""
    text = body.decode("utf-8", "replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):  # gateway 401s: {statusCode, message}, no "error" wrapper
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
    if status == 400:
        return _bad_request(err, code, message, common)
    if is_retryable_status(status):
        return errors.AzureUnavailable(message, **common)
    return errors.InvalidRequest(message, **common)


def _bad_request(
    err: dict[str, Any], code: str | None, message: str, common: dict[str, Any]
) -> errors.AzureOpenAIError:
    """A 400, by its `code` (content filter, context length, a parameter the model does not
    take) or its message (an api-version too old for the model, or unknown)."""
    if code == "content_filter":
        inner = err.get("innererror") or err.get("inner_error") or {}
        results: object = None
        if isinstance(inner, dict):
            results = inner.get("content_filter_result") or inner.get("content_filter_results")
        return errors.ContentFiltered(
            message, categories=filtered_categories(results), where="prompt", **common
        )
    if code == "context_length_exceeded":
        return errors.ContextTooLong(message, **common)
    if code in ("unsupported_parameter", "unsupported_value"):
        param = err.get("param")
        return errors.UnsupportedParameter(
            message, param=str(param) if param is not None else None, **common
        )
    newer = _ENABLED_FROM.search(message)
    if newer is not None:
        return errors.ApiVersionTooOld(message, needed=newer.group(1), **common)
    if "api version" in message.lower():
        return errors.ApiVersionUnsupported(message, **common)
    return errors.InvalidRequest(message, **common)


def completion_filtered(results: object, request_id: str | None) -> errors.ContentFiltered:
    """The error for a completion the content filter stopped: a 200 whose `finish_reason` is
    `content_filter`, with the categories marked `filtered` in its `content_filter_results`."""
    return errors.ContentFiltered(
        "completion filtered",
        categories=filtered_categories(results),
        where="completion",
        status=200,
        code="content_filter",
        request_id=request_id,
    )
