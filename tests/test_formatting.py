"""Reply rendering: splitting under Slack's limits without losing text, fences, usage, mentions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.chat_types import Usage
from bot.formatting import (
    MARKDOWN_LIMIT,
    defuse_broadcasts,
    render_answer,
    split_markdown,
    usage_text,
)


def _strip_added_fences(pieces: list[str]) -> str:
    """Undo the fence closing/reopening the splitter adds at cuts inside code blocks."""
    out = []
    for i, piece in enumerate(pieces):
        lines = piece.splitlines(keepends=True)
        if i > 0 and out and out[-1].endswith("\n```") and lines and lines[0].startswith("```"):
            out[-1] = out[-1][: -len("\n```")] + "\n"
            lines = lines[1:]
        out.append("".join(lines))
    return "".join(out)


def test_split_keeps_short_text_whole() -> None:
    """Text under the limit is one piece, unchanged."""
    assert split_markdown("# Title\n\nbody") == ["# Title\n\nbody"]


def test_split_prefers_paragraph_boundaries() -> None:
    """Long text is cut at blank lines, every piece within the limit."""
    text = "\n\n".join(f"para {i} " + "x" * 300 for i in range(100))
    pieces = split_markdown(text, limit=2000)
    assert all(len(p) <= 2000 for p in pieces)
    assert all(p.startswith("para ") for p in pieces)
    assert "".join(pieces) == text


def test_split_closes_and_reopens_code_fences() -> None:
    """A code block cut in two is closed in the first piece and reopened, with its language."""
    code = "```python\n" + "".join(f"print({i})\n" for i in range(400)) + "```\n"
    pieces = split_markdown("intro\n\n" + code, limit=1500)
    assert len(pieces) > 2
    for piece in pieces[1:]:
        assert piece.startswith("```python\n") or not piece.strip().startswith("print")
    for piece in pieces:
        assert piece.count("```") % 2 == 0
    assert _strip_added_fences(pieces) == "intro\n\n" + code


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab \n`#*-😀")), max_size=6000),
    st.integers(min_value=200, max_value=3000),
)
def test_split_never_loses_text(text: str, limit: int) -> None:
    """Any text: pieces fit the limit and, fences aside, join back to the original."""
    pieces = split_markdown(text, limit=limit)
    assert all(len(p) <= limit for p in pieces)
    if text.strip():
        assert _strip_added_fences(pieces) == text


def test_render_puts_usage_on_last_message_only() -> None:
    """A long answer becomes several markdown messages; only the last has the usage context."""
    text = "\n\n".join("y" * 900 for _ in range(40))
    messages = render_answer(text, Usage(10, 20, 30), "gpt-4o")
    assert len(messages) == 4
    for m in messages:
        assert (
            sum(len(b.get("text", "")) for b in m.blocks if b["type"] == "markdown")
            <= MARKDOWN_LIMIT
        )
        assert len(m.text) <= 3000
    assert [b["type"] for b in messages[-1].blocks] == ["markdown", "context"]
    assert messages[-1].blocks[1]["elements"][0]["text"] == (
        "prompt 10 · completion 20 · total 30 tokens · gpt-4o"
    )


def test_render_empty_answer_says_so() -> None:
    """No content (e.g. max_tokens hit at once) is shown as a note, not an empty message."""
    (message,) = render_answer("", Usage(5, 0, 5), "d")
    assert "returned no text" in message.blocks[0]["text"]


def test_broadcast_mentions_are_defused() -> None:
    """The model cannot ping @channel/@here/@everyone or user groups."""
    text = defuse_broadcasts("hey <!channel> and <!here|here> <!subteam^S1> but <@U1> stays")
    assert "<!" not in text
    assert "<@U1>" in text


def test_usage_text_with_notes_and_missing_usage() -> None:
    """Notes follow the numbers; missing usage is said, not invented."""
    assert usage_text(None, "dep") == "usage not reported · dep"
    assert usage_text(Usage(1, 2, 3), "dep", ["cut off at max_tokens"]).endswith(
        "· cut off at max_tokens"
    )
