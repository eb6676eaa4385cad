"""One turn of a thread's conversation: history in, model call, history out. Knows nothing of Slack.

The caller opens the thread's turn in its store (which holds the thread's lock for the turn's
whole length, so concurrent messages in one thread are answered one after another and each sees the
turns before it) and passes it in as a `TurnHandle`. The new user message and the answer are saved
together, and only after the model answered: a failed call leaves the history as it was, so asking
again works.

Token budget: the prompt must fit in `context_window - max_tokens`. Answers' sizes are known exactly
(`usage.completion_tokens`); a user message's size is learned from `usage.prompt_tokens` minus what
the rest of the prompt was counted as, else estimated conservatively. When Azure still answers
`context_length_exceeded`, the older half of the history is dropped and the call is tried once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.chat_types import ChatOptions, ChatResult, DeltaCallback, Message, StoredMessage, Usage
from bot.errors import ContextTooLong

MESSAGE_OVERHEAD = 4
"""Tokens the chat format adds per message (role and separators), rounded up."""


class ChatModel(Protocol):
    """What the conversation needs from a model client (AzureOpenAIClient fits)."""

    async def complete(
        self,
        messages: Sequence[Message],
        options: ChatOptions,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> ChatResult: ...


class TurnHandle(Protocol):
    """A thread held for one turn: its history, and where to put the new messages (the store's
    `ThreadTurn` fits; it writes them when the caller's turn ends)."""

    @property
    def history(self) -> list[StoredMessage]: ...

    def save(self, *messages: StoredMessage) -> None: ...


def estimate_tokens(text: str) -> int:
    """A deliberately high guess: one token per 3 UTF-8 bytes (CJK: one per character)."""
    return -(-len(text.encode("utf-8")) // 3) + MESSAGE_OVERHEAD


@dataclass(frozen=True, slots=True)
class TurnSettings:
    """The effective settings of one turn (channel over workspace over environment)."""

    system_prompt: str
    history_turns: int
    context_window: int
    options: ChatOptions = field(default_factory=ChatOptions)

    @property
    def prompt_budget(self) -> int:
        return self.context_window - (self.options.max_tokens or 0)


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer of one turn and what it cost."""

    result: ChatResult
    dropped_messages: int = 0
    """Older messages left out of the prompt to fit the context window."""

    @property
    def text(self) -> str:
        return self.result.content

    @property
    def usage(self) -> Usage | None:
        return self.result.usage


def _tokens(message: StoredMessage) -> int:
    value = message.get("tokens")
    if isinstance(value, int) and value > 0:
        return value
    return estimate_tokens(message["content"])


def fit_history(
    history: Sequence[StoredMessage], fixed_tokens: int, budget: int
) -> tuple[list[StoredMessage], int]:
    """Drop the oldest messages until the prompt fits; never start on an orphan answer.

    Returns the kept messages and how many were dropped. Raises `ContextTooLong` when even the
    system prompt and the new question alone do not fit.
    """
    if fixed_tokens > budget:
        raise ContextTooLong(
            f"system prompt and question need ~{fixed_tokens} tokens; budget is {budget}"
        )
    kept = list(history)
    total = fixed_tokens + sum(_tokens(m) for m in kept)
    while kept and (total > budget or kept[0]["role"] == "assistant"):
        total -= _tokens(kept.pop(0))
    return kept, len(history) - len(kept)


class Conversation:
    """Runs turns against an injected model."""

    def __init__(self, model: ChatModel) -> None:
        self._model = model

    async def answer(
        self,
        turn: TurnHandle,
        question: str | StoredMessage,
        settings: TurnSettings,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> Reply:
        """Answer `question` with the thread's history; save the question and the answer in
        `turn` on success only. A prepared question or history message may carry `parts` (text
        and images) to send instead of its `content`."""
        system: StoredMessage = {"role": "system", "content": settings.system_prompt}
        if isinstance(question, str):
            question = {"role": "user", "content": question}
        fixed = _tokens(system) + _tokens(question)
        history, dropped = fit_history(turn.history, fixed, settings.prompt_budget)
        try:
            result = await self._model.complete(
                _messages(system, history, question), settings.options, on_delta=on_delta
            )
        except ContextTooLong:
            if not history:
                raise
            # Our count was too low (the estimate is not the tokenizer): keep the newer half.
            history, more = _newer_half(history)
            dropped += more
            result = await self._model.complete(
                _messages(system, history, question), settings.options, on_delta=on_delta
            )
        turn.save(
            _with_tokens(question, _learned_question_tokens(result, system, history)),
            _with_tokens(
                {"role": "assistant", "content": result.content},
                result.usage.completion_tokens if result.usage else None,
            ),
        )
        return Reply(result, dropped)


def _newer_half(history: list[StoredMessage]) -> tuple[list[StoredMessage], int]:
    """The newer half of `history`, never starting on an answer; and how many were dropped."""
    kept = history[len(history) - len(history) // 2 :]
    while kept and kept[0]["role"] == "assistant":
        kept = kept[1:]
    return kept, len(history) - len(kept)


def _messages(
    system: StoredMessage, history: Sequence[StoredMessage], question: StoredMessage
) -> list[Message]:
    out: list[Message] = [{"role": "system", "content": system["content"]}]
    for m in history:
        if m["role"] == "user":
            out.append({"role": "user", "content": m.get("parts") or m["content"]})
        elif m["role"] == "assistant":
            out.append({"role": "assistant", "content": m["content"]})
    out.append({"role": "user", "content": question.get("parts") or question["content"]})
    return out


def _learned_question_tokens(
    result: ChatResult, system: StoredMessage, history: Sequence[StoredMessage]
) -> int | None:
    if result.usage is None or result.usage.prompt_tokens <= 0:
        return None
    rest = _tokens(system) + sum(_tokens(m) for m in history)
    learned = result.usage.prompt_tokens - rest
    return learned if learned > 0 else None


def _with_tokens(message: StoredMessage, tokens: int | None) -> StoredMessage:
    return {
        "role": message["role"],
        "content": message["content"],
        "tokens": tokens if tokens else _tokens(message),
    }


__all__ = [
    "ChatModel",
    "Conversation",
    "Reply",
    "TurnHandle",
    "TurnSettings",
    "estimate_tokens",
    "fit_history",
]
