"""Plain data shared by the model client and the conversation logic (no I/O imports here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

Role = Literal["system", "user", "assistant"]

DeltaCallback = Callable[[str], Awaitable[None]]
"""Receives each piece of a streamed answer as it arrives."""


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImageUrl(TypedDict):
    url: str
    """An https URL or a `data:image/png;base64,...` URL."""


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = TextPart | ImagePart


class Message(TypedDict):
    """One chat message, exactly as the chat completions API takes it. `content` is a string, or
    (for api-versions that take images) a list of text and `image_url` parts."""

    role: Role
    content: str | list[ContentPart]


class FileRef(TypedDict):
    """A file attached to a Slack message: what is needed to fetch it again when a prompt needs
    it (the bytes themselves are never stored)."""

    id: str
    name: str
    mimetype: str
    filetype: str
    size: int
    url: str


class StoredMessage(TypedDict):
    """A message as the thread store keeps it. `content` is the text as written (Slack markup
    included); `tokens` is its best known token count. The rest is set for Slack threads."""

    role: str
    content: str
    tokens: NotRequired[int]
    id: NotRequired[str]
    """Sort key within the thread: the Slack ts, or the question's ts + "~a" for an answer."""
    user: NotRequired[str]
    """The author's Slack user id."""
    name: NotRequired[str]
    """The author's name when known at record time (another bot's or app's name)."""
    bot: NotRequired[bool]
    """Written by another bot or app (context, never an answer of this bot's)."""
    files: NotRequired[list[FileRef]]
    unread: NotRequired[bool]
    """On an answer: Slack refused part of the thread when it was read for this answer, so the
    next turn reads the thread again (`bot.thread_turn`)."""
    parts: NotRequired[list[ContentPart]]
    """Prompt-ready content (text with files and images) for the model; never stored."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one Azure response (`usage` object)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    """`completion_tokens_details.reasoning_tokens`: the part of `completion_tokens` a reasoning
    model spent thinking. Already counted (and billed) in `completion_tokens`."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """Per-call knobs. `None` means "do not send the field" (the service default applies)."""

    deployment: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    """The answer's token budget; sent as `max_completion_tokens` to reasoning deployments."""
    reasoning_effort: str | None = None
    """`minimal|low|medium|high`; sent to reasoning deployments only."""
    user: str | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """What one completion produced. `content` is "" when the service returned none."""

    content: str
    finish_reason: str | None
    usage: Usage | None
    model: str
    request_id: str | None
    deployment: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
