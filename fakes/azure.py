"""A fake Azure OpenAI chat completions server that answers as the real service does.

It routes `POST /openai/deployments/{dep}/chat/completions?api-version=...` and the v1 route
`POST /openai/v1/chat/completions` (no api-version, or `preview`/`latest`; the deployment in the
body's `model`), checks the api-version, the auth header and the body per version, answers with
Azure's exact shapes (alphabetical keys, annotation chunk, usage chunk, error bodies), and records
every request. Tests queue faults with `push()`.

Deployments of a reasoning model (o-series, gpt-5 family) behave as Azure's do: 400
`unsupported_parameter` to `max_tokens`, 400 `unsupported_value` to a non-default `temperature`
or `top_p`, `max_completion_tokens` and `reasoning_effort` accepted, `reasoning_tokens` reported
in `usage.completion_tokens_details`, and `finish_reason: length` with empty content when the
budget is spent reasoning. A model can be made newer than an api-version (`min_versions`): Azure
then answers 400 "Model X is enabled only for api versions Y and later".
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.server_thread import ServerThread

KNOWN_VERSIONS = {
    "2023-05-15",
    "2024-02-01",
    "2024-06-01",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-04-01-preview",
}
OLD_FIELDS = {
    "messages",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stop",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
}
NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
BAD_KEY = {
    "error": {
        "code": "401",
        "message": (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
            "valid key for an active subscription and use a correct regional API endpoint for your "
            "resource."
        ),
    }
}
BAD_TOKEN = {
    "statusCode": 401,
    "message": (
        "Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired."
    ),
}
DEPLOYMENT_NOT_FOUND = {
    "error": {
        "code": "DeploymentNotFound",
        "message": (
            "The API deployment for this resource does not exist. If you created the deployment within "
            "the last 5 minutes, please wait a moment and try again."
        ),
    }
}
SAFE = {"filtered": False, "severity": "safe"}


def _filter_results(**override: Any) -> dict[str, Any]:
    out = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
    out.update(override)
    return out


V1 = "v1"
V1_QUERY_VERSIONS = {None, "preview", "latest"}
REASONING_EFFORTS = {"minimal", "low", "medium", "high"}


def _dated_from(version: str, first: str) -> bool:
    return version == V1 or version[:10] >= first


def supports_usage_chunk(version: str) -> bool:
    return _dated_from(version, "2024-09-01")


def is_reasoning_model(model: str) -> bool:
    """o1, o3, o3-mini, o4-mini, gpt-5, gpt-5-mini, gpt-5-nano (not gpt-5-chat)."""
    name = model.lower()
    return (name[:1] == "o" and name[1:2].isdigit()) or (
        name.startswith("gpt-5") and "-chat" not in name
    )


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> Any:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def unsupported_max_tokens() -> Any:
    return invalid_request(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
        "'max_completion_tokens' instead.",
        "max_tokens",
        "unsupported_parameter",
    )


def unsupported_value(name: str, value: Any) -> Any:
    return invalid_request(
        f"Unsupported value: '{name}' does not support {value} with this model. Only the default "
        "(1) value is supported.",
        name,
        "unsupported_value",
    )


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    finished: float | None = None


RECORD = web.RequestKey("record", Recorded)


@dataclass
class Fault:
    """One scripted answer. kind: rate_limit | server_error | timeout | status | content_filter |
    completion_filter | context_length | cut_stream | bad_json."""

    kind: str
    retry_after_ms: int = 100
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    after_words: int = 2
    delay: float = 0.0


def text_of(content: Any) -> str:
    """A message's text: the string, or the text parts of a content-part list."""
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return str(content or "")


def default_answer(messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    return f"Answer to: {text_of(last.get('content')).split(chr(10))[0]}"


NO_IMAGES = "Invalid content type. image_url is only supported by certain models."
"""Azure's (and OpenAI's) 400 for image input to a deployment whose model takes text only."""


def count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeAzure:
    """Start with `FakeAzure().start()`; `endpoint` goes into AZURE_OPENAI_ENDPOINT."""

    def __init__(
        self,
        *,
        key: str = "fake-azure-key-1",
        bearer: str | None = "fake-entra-token",
        deployments: dict[str, str] | None = None,
        first_token_delay: float = 0.0,
        token_delay: float = 0.0,
        context_window: int = 1_000_000,
    ) -> None:
        self.key = key
        self.bearer = bearer
        self.deployments = deployments or {
            "gpt-35-turbo": "gpt-35-turbo-0613",
            "gpt-4o": "gpt-4o-2024-11-20",
            "gpt-5-mini": "gpt-5-mini-2025-08-07",
            "o4-mini": "o4-mini-2025-04-16",
        }
        self.reasoning_tokens = 200
        """Tokens a reasoning deployment spends thinking before it writes."""
        self.min_versions: dict[str, str] = {}
        """Deployment → the oldest dated api-version its model is enabled for."""
        self.first_token_delay = first_token_delay
        self.token_delay = token_delay
        self.context_window = context_window
        self.answer = default_answer
        self.text_only: set[str] = set()
        """Deployments whose model refuses image input."""
        self.requests: list[Recorded] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = ServerThread(app)
        self.endpoint = self._server.url + "/"

    def start(self) -> FakeAzure:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def push(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Forget faults and requests, and undo per-test scenario settings."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.text_only.clear()
            self.reasoning_tokens = 200
            self.min_versions = {}

    @property
    def completions(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = Recorded(
            request.method, request.path, dict(request.query), dict(request.headers), body
        )
        self.requests.append(record)
        request[RECORD] = record
        routed = self._route(request, body)
        if isinstance(routed, web.Response):
            return routed
        version, deployment = routed
        invalid = self._validate(
            body, version, self.deployments[deployment], deployment
        ) or self._refuse_images(body, deployment)
        if invalid is not None:
            return invalid
        fault = self._next_fault()
        if fault is not None:
            response = await self._fault(fault, version, body, request)
            if response is not None:
                return response
        return await self._success(request, body, version, self.deployments[deployment], fault)

    def _route(self, request: web.Request, body: Any) -> web.Response | tuple[str, str]:
        """(api-version, deployment) of a chat completions call, or the error Azure answers."""
        parts = request.path.split("/")
        # ['', 'openai', 'deployments', dep, 'chat', 'completions'] exactly; '//openai' → 404
        deployment_api = (
            len(parts) == 6
            and parts[1:3] == ["openai", "deployments"]
            and parts[4:] == ["chat", "completions"]
        )
        v1_api = parts == ["", "openai", "v1", "chat", "completions"]
        if request.method != "POST" or not (deployment_api or v1_api):
            return self._json(404, NOT_FOUND)
        version = request.query.get("api-version")
        if deployment_api and (version is None or version == "2022-12-01"):
            return self._json(404, NOT_FOUND)
        if (v1_api and version not in V1_QUERY_VERSIONS) or (
            deployment_api and version not in KNOWN_VERSIONS
        ):
            return self._json(
                400, {"error": {"code": "BadRequest", "message": "API version not supported"}}
            )
        auth = self._check_auth(request)
        if auth is not None:
            return auth
        if v1_api:
            model = body.get("model") if isinstance(body, dict) else None
            if not isinstance(model, str) or not model:
                return self._json(400, invalid_request("you must provide a model parameter"))
            deployment = model
        else:
            deployment = parts[3]
        if deployment not in self.deployments:
            return self._json(404, DEPLOYMENT_NOT_FOUND)
        dated = "" if v1_api else str(version)
        oldest = self.min_versions.get(deployment)
        if oldest is not None and dated and dated < oldest:
            message = (
                f"Model {self.deployments[deployment]} is enabled only for api versions "
                f"{oldest} and later"
            )
            return self._json(400, {"error": {"code": "BadRequest", "message": message}})
        return (V1 if v1_api else dated), deployment

    def _check_auth(self, request: web.Request) -> web.Response | None:
        authz = request.headers.get("Authorization", "")
        if authz.startswith("Bearer "):
            if self.bearer is not None and authz == f"Bearer {self.bearer}":
                return None
            return self._json(401, BAD_TOKEN)
        if request.headers.get("api-key") == self.key:
            return None
        return self._json(401, BAD_KEY)

    def _validate(
        self, body: Any, version: str, model: str, deployment: str
    ) -> web.Response | None:
        if not isinstance(body, dict):
            return self._json(400, invalid_request("The request body must be JSON."))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._json(400, invalid_request("'messages' is a required property", "messages"))
        refusal = self._version_refusal(body, version) or self._parameter_refusal(body, model)
        if refusal is not None:
            return self._json(400, refusal)
        if "model" in body and version != V1:
            # Harmless to Azure, but a client that sends it confuses model and deployment.
            return self._json(400, invalid_request("the client must not send 'model'", "model"))
        prompt = sum(count_tokens(text_of(m.get("content"))) + 4 for m in messages)
        budget = int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        if prompt + budget > self.context_window:
            return self._json(
                400,
                invalid_request(
                    f"This model's maximum context length is {self.context_window} tokens. "
                    f"However, you requested {prompt + budget} tokens ({prompt} in the messages, "
                    f"{budget} in the completion). Please reduce the length of the messages or "
                    "completion.",
                    "messages",
                    "context_length_exceeded",
                ),
            )
        return None

    def _version_refusal(self, body: dict[str, Any], version: str) -> Any:
        """The 400 body for fields this api-version does not know, or None."""
        if version == "2023-05-15":
            for name in body:
                if name not in OLD_FIELDS:
                    return invalid_request(f"Unrecognized request argument supplied: {name}")
            for m in body["messages"]:
                if not isinstance(m.get("content"), str):
                    return invalid_request("Unrecognized request argument supplied: content parts")
        newer = {
            "stream_options": "2024-09-01",
            "max_completion_tokens": "2024-09-01",
            "reasoning_effort": "2024-12-01",
        }
        for name, first in newer.items():
            if name in body and not _dated_from(version, first):
                return invalid_request(f"Unrecognized request argument supplied: {name}")
        if "stream_options" in body and not body.get("stream"):
            return invalid_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
            )
        return None

    def _parameter_refusal(self, body: dict[str, Any], model: str) -> Any:
        """The 400 body for values out of range or refused by this model, or None."""
        t = body.get("temperature")
        if t is not None and not 0 <= t <= 2:
            return invalid_request(
                f"{t} is greater than the maximum of 2 - 'temperature'", "temperature"
            )
        p = body.get("top_p")
        if p is not None and not 0 <= p <= 1:
            return invalid_request(f"{p} is greater than the maximum of 1 - 'top_p'", "top_p")
        effort = body.get("reasoning_effort")
        if not is_reasoning_model(model):
            if effort is not None:
                return invalid_request(
                    "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                    "reasoning_effort",
                    "unsupported_parameter",
                )
            return None
        if "max_tokens" in body:
            return unsupported_max_tokens()
        for name in ("temperature", "top_p"):
            if body.get(name) not in (None, 1):
                return unsupported_value(name, body[name])
        if effort is not None and effort not in REASONING_EFFORTS:
            return invalid_request(
                f"Invalid value: '{effort}'. Supported values are: 'minimal', 'low', 'medium', "
                "and 'high'.",
                "reasoning_effort",
                "invalid_value",
            )
        return None

    def _refuse_images(self, body: dict[str, Any], deployment: str) -> web.Response | None:
        if deployment not in self.text_only:
            return None
        for i, m in enumerate(body["messages"]):
            content = m.get("content")
            for j, part in enumerate(content if isinstance(content, list) else []):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    error = {
                        "message": NO_IMAGES,
                        "type": "invalid_request_error",
                        "param": f"messages.[{i}].content.[{j}].type",
                        "code": None,
                    }
                    return self._json(400, {"error": error})
        return None

    async def _fault(
        self, fault: Fault, version: str, body: dict[str, Any], request: web.Request
    ) -> web.StreamResponse | None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.kind == "rate_limit":
            seconds = max(1, fault.retry_after_ms // 1000)
            return self._json(
                429,
                {
                    "error": {
                        "code": "429",
                        "message": (
                            f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                            f"{version} have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                            f"Please retry after {seconds} seconds. Please go here: "
                            "https://aka.ms/oai/quotaincrease if you would like to further increase the "
                            "default rate limit."
                        ),
                    }
                },
                {"retry-after": str(seconds), "retry-after-ms": str(fault.retry_after_ms)},
            )
        if fault.kind == "server_error":
            return self._json(
                500,
                {
                    "error": {
                        "message": (
                            "The server had an error while processing your request. Sorry about that! You can "
                            "retry your request, or contact us through an Azure support request at: "
                            "https://go.microsoft.com/fwlink/?linkid=2213926 if the error persists."
                        ),
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
        if fault.kind == "timeout":
            await asyncio.sleep(10)  # far beyond any client timeout the tests set
        if fault.kind == "status":
            return self._json(fault.status, fault.body, fault.headers)
        if fault.kind == "content_filter":
            return self._json(
                400,
                {
                    "error": {
                        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
                        "content management policy. Please modify your prompt and retry. To learn more "
                        "about our content filtering policies please read our documentation: "
                        "https://go.microsoft.com/fwlink/?linkid=2198766",
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                        "innererror": {
                            "code": "ResponsibleAIPolicyViolation",
                            "content_filter_result": _filter_results(
                                hate={"filtered": True, "severity": "high"},
                                jailbreak={"filtered": False, "detected": False},
                            ),
                        },
                    }
                },
            )
        if fault.kind == "context_length":
            return self._json(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 4096 tokens. However, you "
                        "requested 4201 tokens (3177 in the messages, 1024 in the completion). Please "
                        "reduce the length of the messages or completion.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
            )
        if fault.kind == "bad_json":
            return web.Response(status=200, text="<html>gateway</html>", content_type="text/html")
        return None  # completion_filter and cut_stream shape a 200

    def _budgeted(self, answer: str, body: dict[str, Any], model: str) -> tuple[str, str, int]:
        """(text, finish_reason, reasoning tokens) of an answer within the body's budget: a
        reasoning model thinks first, and what is left of the budget is the visible answer."""
        reasoning = self.reasoning_tokens if is_reasoning_model(model) else 0
        budget = body.get("max_completion_tokens", body.get("max_tokens"))
        if budget is None:
            return answer, "stop", reasoning
        if reasoning >= budget:
            return "", "length", budget
        room = budget - reasoning
        if count_tokens(answer) > room:
            return answer[: room * 4], "length", reasoning
        return answer, "stop", reasoning

    def _usage(
        self, version: str, prompt: int, completion: int, reasoning: int = 0
    ) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
        }
        if _dated_from(version, "2024-10-21"):
            usage["completion_tokens_details"] = {
                "accepted_prediction_tokens": 0,
                "audio_tokens": 0,
                "reasoning_tokens": reasoning,
                "rejected_prediction_tokens": 0,
            }
            usage["prompt_tokens_details"] = {"audio_tokens": 0, "cached_tokens": 0}
        return usage

    def _headers(self) -> dict[str, str]:
        rid = str(uuid.uuid4())
        return {
            "apim-request-id": rid,
            "x-request-id": rid,
            "x-ms-region": "Sweden Central",
            "x-ratelimit-remaining-requests": "79",
            "x-ratelimit-remaining-tokens": "61353",
        }

    async def _success(
        self,
        request: web.Request,
        body: dict[str, Any],
        version: str,
        model: str,
        fault: Fault | None,
    ) -> web.StreamResponse:
        messages = body["messages"]
        prompt = sum(count_tokens(text_of(m.get("content"))) + 4 for m in messages)
        answer, finish, reasoning = self._budgeted(self.answer(messages), body, model)
        words = answer.split(" ") if answer else []
        filtered = fault is not None and fault.kind == "completion_filter"
        completion = (count_tokens(answer) if answer else 0) + reasoning
        annotate = version != "2023-05-15"
        created = int(time.time())
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        if body.get("stream"):
            return await self._stream(
                request,
                body,
                version,
                model,
                words,
                finish,
                filtered,
                self._usage(version, prompt, completion, reasoning),
                fault,
                created,
                cid,
            )
        if self.first_token_delay or self.token_delay:
            await asyncio.sleep(self.first_token_delay + self.token_delay * len(words))
        choice: dict[str, Any] = {
            "finish_reason": finish,
            "index": 0,
            "logprobs": None,
            "message": {"content": answer, "refusal": None, "role": "assistant"},
        }
        if filtered:
            choice["finish_reason"] = "content_filter"
            choice["message"] = {"role": "assistant"}
        if annotate:
            choice["content_filter_results"] = _filter_results(
                **({"violence": {"filtered": True, "severity": "medium"}} if filtered else {})
            )
        data: dict[str, Any] = {
            "choices": [choice],
            "created": created,
            "id": cid,
            "model": model,
            "object": "chat.completion",
            "system_fingerprint": "fp_fake",
            "usage": self._usage(version, prompt, completion if not filtered else 0, reasoning),
        }
        if annotate:
            data["prompt_filter_results"] = [
                {
                    "prompt_index": 0,
                    "content_filter_results": _filter_results(
                        jailbreak={"filtered": False, "detected": False}
                    ),
                }
            ]
        record = request[RECORD]
        record.first_token = record.finished = time.monotonic()
        return self._json(200, data)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        version: str,
        model: str,
        words: list[str],
        finish: str,
        filtered: bool,
        usage: dict[str, Any],
        fault: Fault | None,
        created: int,
        cid: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream; charset=utf-8", **self._headers()},
        )
        await response.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        annotate = version != "2023-05-15"

        async def send(obj: Any) -> None:
            text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True)
            await response.write(f"data: {text}\n\n".encode())

        def chunk(
            delta: dict[str, Any], finish_reason: str | None = None, cfr: Any = None
        ) -> dict[str, Any]:
            c: dict[str, Any] = {
                "delta": delta,
                "finish_reason": finish_reason,
                "index": 0,
                "logprobs": None,
            }
            if annotate:
                c["content_filter_results"] = cfr if cfr is not None else {}
            out = {
                "choices": [c],
                "created": created,
                "id": cid,
                "model": model,
                "object": "chat.completion.chunk",
                "system_fingerprint": "fp_fake",
            }
            if include_usage:
                out["usage"] = None
            return out

        if annotate:
            await send(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": _filter_results()}
                    ],
                }
            )
        if self.first_token_delay:
            await asyncio.sleep(self.first_token_delay)
        await send(chunk({"content": "", "refusal": None, "role": "assistant"}))
        cut = fault is not None and fault.kind == "cut_stream"
        for i, word in enumerate(words):
            if cut and i >= fault.after_words:  # type: ignore[union-attr]
                request.transport.close()  # type: ignore[union-attr]
                return response
            if filtered and i >= 1:
                break
            if self.token_delay and i:
                await asyncio.sleep(self.token_delay)
            await send(chunk({"content": (" " if i else "") + word}, cfr=_filter_results()))
            if i == 0:
                request[RECORD].first_token = time.monotonic()
        if filtered:
            await send(
                chunk(
                    {},
                    "content_filter",
                    _filter_results(violence={"filtered": True, "severity": "high"}),
                )
            )
        else:
            await send(chunk({}, finish))
        if include_usage:
            await send(
                {
                    "choices": [],
                    "created": created,
                    "id": cid,
                    "model": model,
                    "object": "chat.completion.chunk",
                    "system_fingerprint": "fp_fake",
                    "usage": usage,
                }
            )
        await send("[DONE]")
        await response.write_eof()
        request[RECORD].finished = time.monotonic()
        return response

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status,
            text=json.dumps(body, sort_keys=True),
            content_type="application/json",
            headers={**self._headers(), **(headers or {})},
        )
