"""Reading the room: a Slack thread's messages as the prompt of a turn — who said what, their
files and images — within the context window.

Every person's message carries their display name as a `Name: ` prefix (the chat API's own
`name` field is not declared for user messages in every GA api-version, and models follow a
visible prefix more reliably), another bot's message `[bot] Name: `; `<@U…>` mentions read
`@Name`, channels `#name`, links `label (url)` (`bot.slack_text`). The system prompt says it is a
Slack thread with several people and who asked the current question.

Budget: each message counts with its best known token count (learned after the fact from
Azure's usage, as for every question), else an estimate that includes its files (a third of a
token per byte of text, `IMAGE_TOKENS` per image). The oldest messages go first when the prompt
does not fit (`bot.conversation.fit_history`), and only the files of the messages that stay are
downloaded. Files the prompt cannot use are named in it and in the answer's usage line.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from slack_sdk.web.async_client import AsyncWebClient

from bot.chat_types import ContentPart, FileRef, StoredMessage
from bot.conversation import estimate_tokens, fit_history
from bot.incoming import Incoming
from bot.slack_files import Fetched, FileFetcher, kind_of
from bot.slack_people import People, people_in, speaker
from bot.slack_text import readable

IMAGE_TOKENS = 1100
MAX_PROMPT_IMAGES = 10
MAX_PROMPT_IMAGE_BYTES = 20 * 1024 * 1024
_OVER_IMAGE_CAP = (
    f"past the {MAX_PROMPT_IMAGES} images or {MAX_PROMPT_IMAGE_BYTES // 1024 // 1024} MB of "
    "images a question carries (the newest go)"
)
"""A high guess for one image at `detail: auto` (a 2048-pixel image is about 1,100 tokens)."""
ROOM_NOTE = (
    "You are answering in a Slack thread where several people may write. Each message from a "
    'person starts with their name ("Name: …"); messages from other bots or apps start with '
    '"[bot]". Files posted in the thread follow the message they came with. The current '
    "question is from {asker}."
)


@dataclass
class Prompt:
    """The thread as a prompt: `history` and `question` are ready for the model."""

    history: list[StoredMessage]
    question: StoredMessage
    asker: str
    dropped: int = 0
    """Earlier messages left out to fit the context window."""
    left_out: list[str] = field(default_factory=list)
    """Files not sent, each with the reason."""
    images: int = 0

    def system_note(self) -> str:
        return ROOM_NOTE.format(asker=self.asker)


@dataclass
class _Draft:
    message: StoredMessage
    files: list[FileRef]
    """Files to download into the message."""
    left_out: list[str]
    """Files not sent, with the reason ("name – reason")."""

    def leave_out(self, ref: FileRef, reason: str) -> None:
        """Say in the message that the file is not included, and keep why for the usage line."""
        self.message["content"] += f"\n[file {ref['name']} not included: {reason}]"
        self.left_out.append(f"{ref['name']} – {reason}")


def question_record(msg: Incoming) -> StoredMessage:
    """The message being answered, as the store keeps it."""
    record: StoredMessage = {"id": msg.ts, "role": "user", "user": msg.user, "content": msg.text}
    if msg.files:
        record["files"] = list(msg.files)
    return record


class Room:
    """Builds prompts from stored thread messages; its I/O objects are injected."""

    def __init__(self, *, people: People, files: FileFetcher) -> None:
        self.people = people
        self.files = files

    async def prompt(
        self,
        client: AsyncWebClient,
        msg: Incoming,
        records: list[StoredMessage],
        *,
        system_tokens: int,
        budget: int,
        images: str | None,
    ) -> Prompt:
        """The prompt for answering `msg` after `records` (oldest first). `images` is None when
        images may be sent, else why they may not."""
        question = question_record(msg)
        # Only what was said before the question: a message posted while the bot was busy
        # (recorded meanwhile) would otherwise stand before it in the prompt.
        earlier = [r for r in records if r.get("id", "") < question["id"]]
        names = await self.people.names(client, msg.team, people_in([*earlier, question]))
        drafts = [self._draft(r, names, images) for r in earlier]
        asked = self._draft(question, names, images)
        fixed = system_tokens + _tokens(asked.message)
        kept, dropped = fit_history([d.message for d in drafts], fixed, budget)
        kept_drafts = drafts[len(drafts) - len(kept) :]
        prompt = Prompt([], asked.message, names.get(msg.user) or msg.user, dropped)
        _cap_images([*kept_drafts, asked])
        answered = [i for i, d in enumerate(kept_drafts) if d.message["role"] == "assistant"]
        since_answer = answered[-1] + 1 if answered else 0
        for i, draft in enumerate((*kept_drafts, asked)):
            # Left-out files are reported once: those posted since the bot's last answer.
            await self._attach(client, draft, prompt, images is None, report=i >= since_answer)
        prompt.history = [d.message for d in kept_drafts]
        prompt.question = asked.message
        return prompt

    def _draft(self, record: StoredMessage, names: dict[str, str], images: str | None) -> _Draft:
        """The message's prompt text without file contents yet, and its token estimate."""
        content = readable(record["content"], names)
        text = content if record["role"] == "assistant" else f"{speaker(record, names)}: {content}"
        draft = _Draft({"role": record["role"], "content": text}, [], [])
        estimate = estimate_tokens(text)
        for ref in record.get("files", []):
            reason = images if kind_of(ref) == "image" and images else None
            reason = reason or self.files.precheck(ref, images=True)
            if reason is not None:
                draft.leave_out(ref, reason)
                continue
            draft.files.append(ref)
            estimate += IMAGE_TOKENS if kind_of(ref) == "image" else ref["size"] // 3 + 20
        draft.message["tokens"] = record.get("tokens") or estimate
        return draft

    async def _attach(
        self, client: AsyncWebClient, draft: _Draft, prompt: Prompt, images: bool, *, report: bool
    ) -> None:
        """Download the draft's files and put them into its message."""
        if report:
            prompt.left_out += draft.left_out
        if not draft.files:
            return
        token = str(client.token or "")
        fetched = await asyncio.gather(
            *(self.files.fetch(ref, token, images=images) for ref in draft.files)
        )
        text = draft.message["content"]
        pictures: list[ContentPart] = []
        for item in fetched:
            text += _file_text(item)
            if item.left_out is not None and report:
                prompt.left_out.append(f"{item.ref['name']} – {item.left_out}")
            if item.data_url is not None:
                pictures.append({"type": "image_url", "image_url": {"url": item.data_url}})
        draft.message["content"] = text
        if pictures:
            draft.message["parts"] = [{"type": "text", "text": text}, *pictures]
            prompt.images += len(pictures)


def _cap_images(drafts: list[_Draft]) -> None:
    """Keep the newest images within what one request may carry: at most `MAX_PROMPT_IMAGES`
    (Azure takes up to 50 per request for GPT-4o; each costs tokens and a download every turn)
    and `MAX_PROMPT_IMAGE_BYTES` together (so a thread of large photos cannot make a turn hold
    hundreds of MB); older ones are named as left out."""
    count = total = 0
    for draft in reversed(drafts):
        for ref in [r for r in draft.files if kind_of(r) == "image"]:
            if count < MAX_PROMPT_IMAGES and total + ref["size"] <= MAX_PROMPT_IMAGE_BYTES:
                count, total = count + 1, total + ref["size"]
                continue
            draft.files.remove(ref)
            draft.leave_out(ref, _OVER_IMAGE_CAP)


def _file_text(item: Fetched) -> str:
    if item.text is not None:
        return f"\n\n[file {item.ref['name']}]\n```\n{item.text}\n```"
    if item.left_out is not None:
        return f"\n[file {item.ref['name']} not included: {item.left_out}]"
    return f"\n[image {item.ref['name']}]"


def _tokens(message: StoredMessage) -> int:
    return message.get("tokens") or estimate_tokens(message["content"])
