"""Conversation logic with a fake model, its turns held in the thread store on fakeredis: order,
budget, overflow, failure."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fakeredis import FakeAsyncRedis

from bot import errors
from bot.chat_types import ChatOptions, ChatResult, DeltaCallback, Message, StoredMessage, Usage
from bot.conversation import Conversation, Reply, TurnSettings, estimate_tokens, fit_history
from bot.store import Keys, ThreadStore, decode_messages


class FakeModel:
    """Records each prompt; answers 'A<n>'; can be told to fail."""

    def __init__(self) -> None:
        self.prompts: list[list[Message]] = []
        self.fail_with: list[Exception] = []

    async def complete(
        self,
        messages: Sequence[Message],
        options: ChatOptions,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> ChatResult:
        self.prompts.append(list(messages))
        if self.fail_with:
            raise self.fail_with.pop(0)
        text = f"A{len(self.prompts)}"
        if on_delta:
            await on_delta(text)
        return ChatResult(
            text, "stop", Usage(50, 7, 57), "model-x", "req", options.deployment or "dep"
        )


class Threads:
    """A conversation whose turns are held in a `ThreadStore` on fakeredis, as the bot holds them."""

    def __init__(self, model: FakeModel) -> None:
        self.conversation = Conversation(model)
        self.store = ThreadStore(FakeAsyncRedis(decode_responses=True), Keys(), max_messages=100)

    async def answer(
        self,
        thread: str,
        text: str,
        settings: TurnSettings,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> Reply:
        async with self.store.turn(thread, settings.history_turns * 2) as turn:
            return await self.conversation.answer(turn, text, settings, on_delta=on_delta)

    async def load(self, thread: str) -> list[StoredMessage]:
        ids = await self.store.redis.zrange(self.store.keys.order(thread), 0, -1)
        raw = await self.store.redis.hmget(self.store.keys.messages(thread), ids) if ids else []
        return decode_messages(raw)


@pytest.fixture
def setup() -> tuple[Threads, FakeModel, Threads]:
    model = FakeModel()
    threads = Threads(model)
    return threads, model, threads


SETTINGS = TurnSettings(
    "SYS",
    history_turns=10,
    context_window=100_000,
    options=ChatOptions(deployment="dep", max_tokens=100),
)


async def test_conversation_sends_history_in_order(setup) -> None:  # type: ignore[no-untyped-def]
    """The second turn's prompt is system, q1, a1, q2."""
    conv, model, _ = setup
    await conv.answer("t", "q1", SETTINGS)
    reply = await conv.answer("t", "q2", SETTINGS)
    assert [m["content"] for m in model.prompts[-1]] == ["SYS", "q1", "A1", "q2"]
    assert [m["role"] for m in model.prompts[-1]] == ["system", "user", "assistant", "user"]
    assert reply.text == "A2" and reply.usage == Usage(50, 7, 57)


async def test_conversation_keeps_only_history_turns(setup) -> None:  # type: ignore[no-untyped-def]
    """history_turns=1 sends only the last exchange."""
    conv, model, _ = setup
    one = TurnSettings("SYS", 1, 100_000, ChatOptions(max_tokens=10))
    for q in ("q1", "q2", "q3"):
        await conv.answer("t", q, one)
    assert [m["content"] for m in model.prompts[-1]] == ["SYS", "q2", "A2", "q3"]


async def test_conversation_nothing_saved_when_model_fails(setup) -> None:  # type: ignore[no-untyped-def]
    """A failed call leaves history untouched, so asking again works."""
    conv, model, store = setup
    await conv.answer("t", "q1", SETTINGS)
    model.fail_with.append(errors.RateLimited("429"))
    with pytest.raises(errors.RateLimited):
        await conv.answer("t", "lost?", SETTINGS)
    assert [m["content"] for m in await store.load("t")] == ["q1", "A1"]
    await conv.answer("t", "again", SETTINGS)
    assert [m["content"] for m in model.prompts[-1]] == ["SYS", "q1", "A1", "again"]


async def test_conversation_trims_oldest_to_fit_budget(setup) -> None:  # type: ignore[no-untyped-def]
    """Old turns that do not fit context_window - max_tokens are left out, oldest first."""
    conv, model, _ = setup
    for q in ("x" * 300, "y" * 300, "z" * 300):
        await conv.answer("t", q, SETTINGS)
    tight = TurnSettings("SYS", 10, 200 + 100, ChatOptions(max_tokens=100))
    reply = await conv.answer("t", "last", tight)
    sent = [m["content"] for m in model.prompts[-1]]
    assert sent[0] == "SYS" and sent[-1] == "last"
    assert "x" * 300 not in sent
    assert model.prompts[-1][1]["role"] == "user"
    assert reply.dropped_messages >= 2


async def test_conversation_retries_once_after_context_overflow(setup) -> None:  # type: ignore[no-untyped-def]
    """context_length_exceeded drops the older half of history and retries once."""
    conv, model, _ = setup
    for q in ("q1", "q2", "q3", "q4"):
        await conv.answer("t", q, SETTINGS)
    model.fail_with.append(errors.ContextTooLong("too long"))
    reply = await conv.answer("t", "q5", SETTINGS)
    first, second = model.prompts[-2], model.prompts[-1]
    assert len(second) < len(first)
    assert [m["content"] for m in second] == ["SYS", "q3", "A3", "q4", "A4", "q5"]
    assert reply.dropped_messages == 4


async def test_conversation_overflow_twice_raises(setup) -> None:  # type: ignore[no-untyped-def]
    """If the retry overflows too, the user gets ContextTooLong and nothing is saved."""
    conv, model, store = setup
    await conv.answer("t", "q1", SETTINGS)
    model.fail_with += [errors.ContextTooLong("a"), errors.ContextTooLong("b")]
    with pytest.raises(errors.ContextTooLong):
        await conv.answer("t", "q2", SETTINGS)
    assert len(await store.load("t")) == 2


async def test_conversation_question_alone_too_long(setup) -> None:  # type: ignore[no-untyped-def]
    """A question bigger than the budget fails fast without calling the model."""
    conv, model, _ = setup
    with pytest.raises(errors.ContextTooLong):
        await conv.answer(
            "t", "w" * 5000, TurnSettings("SYS", 10, 500, ChatOptions(max_tokens=100))
        )
    assert model.prompts == []


async def test_conversation_stores_learned_token_counts(setup) -> None:  # type: ignore[no-untyped-def]
    """The answer's tokens are usage.completion_tokens; the question's are learned from usage."""
    conv, _, store = setup
    await conv.answer("t", "hello", SETTINGS)
    q, a = await store.load("t")
    assert a["tokens"] == 7
    assert q["tokens"] == 50 - estimate_tokens("SYS")


async def test_conversation_streams_deltas(setup) -> None:  # type: ignore[no-untyped-def]
    """on_delta receives the text as the model produces it."""
    conv, _, _ = setup
    pieces: list[str] = []

    async def collect(p: str) -> None:
        pieces.append(p)

    reply = await conv.answer("t", "q", SETTINGS, on_delta=collect)
    assert pieces == [reply.text]


def test_fit_history_never_starts_with_an_answer() -> None:
    """Trimming drops an orphaned assistant message at the front."""
    history = [
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
    ]
    kept, dropped = fit_history(history, 10, 10_000)  # type: ignore[arg-type]
    assert [m["content"] for m in kept] == ["q1", "a1"] and dropped == 1
