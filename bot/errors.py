"""The bot's exception tree. Each error knows the one sentence a Slack user should see.

```
BotError                      .user_message: safe to post in Slack (no secrets, no traceback)
├── ConfigError               a setting is missing or invalid (operator error, fix in the env)
├── StoreUnavailable          Redis cannot be reached; nothing was answered, nothing was lost
├── ThreadBusy                another turn in this thread held the lock for too long
├── TurnTakenOver             this replica paused past its lease; another one answers the turn
└── AzureOpenAIError          the model call failed; .status, .code, .request_id for the logs
    ├── AuthenticationFailed  401/403: wrong key, expired token, missing RBAC role
    │   ├── EntraAccessDenied 401/403 to an Entra token (AZURE_OPENAI_AUTH=entra)
    │   └── EntraTokenUnavailable no credential gave a token; .tried lists what was tried
    ├── DeploymentNotFound    404 DeploymentNotFound: the deployment name is wrong
    ├── ResourceNotFound      404 Resource not found: wrong endpoint or api-version path
    ├── ApiVersionUnsupported 400 "API version not supported"
    │   └── ApiVersionTooOld  the deployment needs a newer api-version; .needed names it
    ├── ContentFiltered       400 content_filter, or finish_reason content_filter; .categories
    ├── ContextTooLong        400 context_length_exceeded
    ├── InvalidRequest        any other 4xx (never retried)
    │   └── UnsupportedParameter 400 unsupported_parameter/unsupported_value; .param
    ├── ReasoningBudgetExhausted finish_reason length with no text: the budget went to reasoning
    ├── RateLimited           429, still after the retries
    └── AzureUnavailable      5xx/408/timeouts/connection errors after retries
        └── StreamInterrupted the stream stopped before `[DONE]`; .partial holds what arrived
```

Third-party errors (httpx, redis) are translated at the boundary with ``raise ... from``; for Redis
that boundary is `redis_unavailable()`, used by every module that talks to Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis import exceptions as redis_errors


class BotError(Exception):
    """Base of every error the bot raises on purpose."""

    user_message = "Something went wrong on my side. Please try again in a moment."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.user_message)


class ConfigError(BotError):
    """A setting is missing or invalid; the message says how to fix it."""

    user_message = "The bot is misconfigured; an administrator needs to check its settings."


class StoreUnavailable(BotError):
    """Redis (thread memory) cannot be reached."""

    user_message = (
        "I can't reach my memory (Redis) right now, so I can't answer safely. "
        "Please ask again in a minute; nothing you wrote was lost."
    )


class ThreadBusy(BotError):
    """The thread's lock could not be taken in time (another turn is still running)."""

    user_message = (
        "I'm still working on earlier messages in this thread. Please ask again in a moment."
    )


class TurnTakenOver(BotError):
    """The turn's claims were taken over by another replica while this one was paused past its
    lease: this one must write and post nothing (the other one answers)."""

    user_message = "Another replica is answering this message."


class AzureOpenAIError(BotError):
    """The Azure OpenAI call failed. Attributes are for logs; `user_message` is for Slack."""

    user_message = "Azure OpenAI returned an error. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


class AuthenticationFailed(AzureOpenAIError):
    user_message = (
        "Azure OpenAI rejected the bot's credentials (401). An administrator should check "
        "AZURE_OPENAI_KEY (KEY1 or KEY2 under Keys and Endpoint) and AZURE_OPENAI_ENDPOINT."
    )


class EntraAccessDenied(AuthenticationFailed):
    """Azure refused the Entra ID token: wrong audience or tenant, or no role on the resource."""

    user_message = (
        "Azure OpenAI refused the bot's Entra ID token (401/403). An administrator should give "
        "the bot's identity the role Cognitive Services OpenAI User on the Azure OpenAI resource, "
        "and check AZURE_OPENAI_ENDPOINT."
    )


class EntraTokenUnavailable(AuthenticationFailed):
    """No credential of azure-identity's chain gave a token; `tried` says what each one said."""

    def __init__(self, message: str | None = None, *, tried: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.tried = tried

    @property
    def user_message(self) -> str:  # type: ignore[override]
        tried = f" Tried: {self.tried}." if self.tried else ""
        return (
            "The bot could not get an Entra ID token for Azure OpenAI (AZURE_OPENAI_AUTH=entra)."
            f"{tried} Give it a managed identity with the role Cognitive Services OpenAI User, "
            "set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or run `az login`."
        )


class DeploymentNotFound(AzureOpenAIError):
    user_message = (
        "Azure OpenAI has no deployment with that name. Use the deployment name you chose "
        "when you deployed the model, not the model name (e.g. `my-gpt4o`, not `gpt-4o`)."
    )


class ResourceNotFound(AzureOpenAIError):
    user_message = (
        "Azure OpenAI answered 404 Resource not found. Check AZURE_OPENAI_ENDPOINT (the resource "
        "URL only) and AZURE_OPENAI_API_VERSION."
    )


class ApiVersionUnsupported(AzureOpenAIError):
    user_message = (
        "Azure OpenAI does not support the configured api-version. Set AZURE_OPENAI_API_VERSION "
        "to a supported one such as 2024-10-21."
    )


class ApiVersionTooOld(ApiVersionUnsupported):
    """The deployment needs a newer api-version than AZURE_OPENAI_API_VERSION.

    Raised when Azure says "Model X is enabled only for api versions Y and later", and when a
    reasoning deployment needs `max_completion_tokens`, which api-versions before
    2024-09-01-preview do not have. `needed` is the oldest version that works.
    """

    def __init__(
        self, message: str | None = None, *, needed: str, configured: str = "", **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.needed = needed
        self.configured = configured

    @property
    def user_message(self) -> str:  # type: ignore[override]
        now = f" (it is {self.configured})" if self.configured else ""
        return (
            f"This deployment needs a newer api-version{now}: an administrator should set "
            f"AZURE_OPENAI_API_VERSION=v1, or {self.needed} or later."
        )


class ContentFiltered(AzureOpenAIError):
    """Azure's content filter blocked the prompt (400) or the completion (finish_reason)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        categories: tuple[str, ...] = (),
        where: str = "prompt",
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.categories = categories
        self.where = where

    @property
    def user_message(self) -> str:  # type: ignore[override]
        what = "your message" if self.where == "prompt" else "the answer"
        which = f" ({', '.join(self.categories)})" if self.categories else ""
        return (
            f"Azure OpenAI's content filter blocked {what}{which}. Please rephrase and ask again."
        )


class ContextTooLong(AzureOpenAIError):
    user_message = (
        "This conversation is too long for the model's context window, even after dropping older "
        "turns. Please start a new thread or ask a shorter question."
    )


class InvalidRequest(AzureOpenAIError):
    @property
    def user_message(self) -> str:  # type: ignore[override]
        return f"Azure OpenAI rejected the request: {str(self.args[0])[:300]}"


class UnsupportedParameter(InvalidRequest):
    """400 `unsupported_parameter`/`unsupported_value`: the model refuses one body field.

    Reasoning deployments answer this to `max_tokens`, `temperature` and `top_p`; the client
    learns from it and never shows it when the retry with the reasoning set works.
    """

    def __init__(self, message: str | None = None, *, param: str | None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.param = param


class ReasoningBudgetExhausted(AzureOpenAIError):
    """The answer stopped at its token budget (`finish_reason: length`) before any text: a
    reasoning model spent it all thinking. Nothing is posted or saved for it."""

    user_message = (
        "The model spent its whole token budget reasoning and wrote no answer. Raise max_tokens "
        "(e.g. `/gpt set max_tokens 4000`) and ask again."
    )

    def __init__(
        self,
        message: str | None = None,
        *,
        model: str = "",
        reasoning_tokens: int = 0,
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.model = model
        self.reasoning_tokens = reasoning_tokens


class RateLimited(AzureOpenAIError):
    user_message = (
        "Azure OpenAI is rate limiting this deployment (429) and retries did not help. "
        "Please try again in a minute."
    )


class AzureUnavailable(AzureOpenAIError):
    user_message = (
        "Azure OpenAI is unavailable or timed out right now. Please try again in a minute."
    )


class StreamInterrupted(AzureUnavailable):
    """A streamed answer stopped before `data: [DONE]`; `partial` is the text that arrived."""

    user_message = "The answer from Azure OpenAI was cut off before it finished. Please ask again."

    def __init__(self, message: str | None = None, *, partial: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial = partial


REDIS_ERRORS = (redis_errors.RedisError, OSError, RuntimeError)
"""What a lost Redis connection can raise. Under uvloop, writing to a connection the server has
closed raises RuntimeError ("unable to perform operation on <TCPTransport closed=True>") rather
than a redis ConnectionError; the Redis-outage test under load found it."""


@contextlib.contextmanager
def redis_unavailable() -> Iterator[None]:
    """Translate redis-py's errors into `StoreUnavailable`, at the store boundary."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
