"""Turning a model's answer into Slack messages: Markdown, splitting, and the usage line.

Slack renders standard Markdown itself in a `markdown` block (Block Kit, made for LLM output;
headings, lists, fenced code, `[label](url)` links), so the answer is not converted to Slack's own
mrkdwn dialect. What this module must get right instead:

* a payload's markdown blocks may hold 12,000 characters in total, so long answers are split into
  several messages, at paragraph boundaries where possible, and a code fence cut in two is closed
  and reopened so both halves still render as code; no character of the answer is lost;
* the model must not be able to notify a whole channel: `<!here>`, `<!channel>`, `<!everyone>` and
  user-group tokens are defused;
* the last message ends with a context line: prompt, completion and total tokens, and deployment;
* every message carries Slack message `metadata` saying what it is (`slackgpt_answer`, or
  `slackgpt_notice` for placeholders, errors and notices), so a later reading of the thread
  (`conversations.replies` with `include_all_metadata`) tells the bot's answers from the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.chat_types import Usage

MARKDOWN_LIMIT = 10_000
"""Per message. Slack's cap is 12,000 cumulative; msg_blocks_too_long was seen near 13k of total
block text (bolt-js #2509), so keep a margin for the context block."""
FALLBACK_LIMIT = 3_000
"""`text` only feeds notifications and screen readers when blocks are sent."""
_FENCE = "```"
ANSWER_EVENT = "slackgpt_answer"
NOTICE_EVENT = "slackgpt_notice"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """Arguments for chat.postMessage / chat.update."""

    text: str
    blocks: list[dict[str, Any]]
    kind: str = NOTICE_EVENT
    """The message metadata's `event_type`: an answer or a notice."""

    def as_args(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "blocks": self.blocks,
            "metadata": {"event_type": self.kind, "event_payload": {}},
        }


def defuse_broadcasts(text: str) -> str:
    """`<!channel>` would notify everyone; a zero-width space keeps it visible but inert."""
    return text.replace("<!", "<\u200b!")


def usage_text(usage: Usage | None, deployment: str, notes: list[str] | None = None) -> str:
    """`prompt 58 · completion 268 (reasoning 200) · total 326 tokens · gpt-5-mini`: reasoning
    tokens, when Azure reports any, are shown as the part of the completion they are."""
    if usage is None:
        parts = ["usage not reported"]
    else:
        reasoning = f" (reasoning {usage.reasoning_tokens})" if usage.reasoning_tokens else ""
        parts = [
            f"prompt {usage.prompt_tokens}",
            f"completion {usage.completion_tokens}{reasoning}",
            f"total {usage.total_tokens} tokens",
        ]
    parts.append(deployment)
    line = " · ".join(parts)
    if notes:
        line += " · " + " · ".join(notes)
    return line


def split_markdown(text: str, limit: int = MARKDOWN_LIMIT) -> list[str]:
    """Split into pieces of at most `limit` characters, preferring blank lines, then line ends.

    A piece that ends inside a code fence gets a closing fence, and the next piece reopens it
    with the same info string, so every piece renders on its own.
    """
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None  # the opening fence line while inside a code block
    reserve = len(_FENCE) + 1  # room for a closing fence

    def flush() -> None:
        nonlocal current, size
        body = "".join(current)
        if fence is not None:
            body = body.rstrip("\n") + "\n" + _FENCE
        pieces.append(body)
        current = [fence + "\n"] if fence is not None else []
        size = sum(len(c) for c in current)

    for line in _lines_within(text, limit - 2 * reserve - 40):
        if size + len(line) + reserve > limit and current:
            cut = _last_blank(current) if fence is None else None
            if cut is not None and cut > 0:
                rest = current[cut:]
                current = current[:cut]
                flush()
                current.extend(rest)
                size = sum(len(c) for c in current)
            else:
                flush()
        current.append(line)
        size += len(line)
        stripped = line.strip()
        if stripped.startswith(_FENCE):
            fence = None if fence is not None else stripped
    if current:
        pieces.append("".join(current))
    return [p for p in pieces if p.strip()]


def _lines_within(text: str, width: int) -> list[str]:
    """Lines with their newlines; a line longer than `width` is cut into `width` pieces."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        while len(line) > width:
            out.append(line[:width])
            line = line[width:]
        out.append(line)
    return out


def _last_blank(lines: list[str]) -> int | None:
    """Index just after the last blank line in the second half of `lines`, if any."""
    for i in range(len(lines) - 1, len(lines) // 2, -1):
        if not lines[i - 1].strip():
            return i
    return None


def render_answer(
    text: str,
    usage: Usage | None,
    deployment: str,
    notes: list[str] | None = None,
    *,
    kind: str = ANSWER_EVENT,
) -> list[SlackMessage]:
    """The answer as one or more Slack messages, the usage line on the last. `kind` is
    `NOTICE_EVENT` for text that is not an answer to keep (an answer cut short)."""
    body = defuse_broadcasts(text) if text.strip() else "_(The model returned no text.)_"
    pieces = split_markdown(body)
    messages = []
    for i, piece in enumerate(pieces):
        blocks: list[dict[str, Any]] = [{"type": "markdown", "text": piece}]
        if i == len(pieces) - 1:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": usage_text(usage, deployment, notes)}],
                }
            )
        messages.append(SlackMessage(piece[:FALLBACK_LIMIT], blocks, kind))
    return messages


def notice(text: str) -> SlackMessage:
    """A short status or error line (mrkdwn), e.g. the thinking placeholder or an error."""
    return SlackMessage(
        text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    )
