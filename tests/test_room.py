"""`Room`: a thread's stored messages as a prompt — names, files, images, budget — with the fake
Slack Web API for names and an httpx MockTransport for file downloads."""

from __future__ import annotations

import base64

import httpx
from fakeredis import FakeAsyncRedis
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat_types import FileRef, StoredMessage
from bot.incoming import Incoming
from bot.room import IMAGE_TOKENS, Room
from bot.slack_files import FileFetcher
from bot.slack_people import People
from bot.store import Keys
from fakes.slack import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def ref(file_id: str, name: str, mimetype: str, size: int, filetype: str = "") -> FileRef:
    return {
        "id": file_id,
        "name": name,
        "mimetype": mimetype,
        "filetype": filetype,
        "size": size,
        "url": f"https://files.slack.com/files-pri/T1-{file_id}/download/{name}",
    }


def downloads(request: httpx.Request) -> httpx.Response:
    """Files answer only to the bot token, as Slack's do."""
    if request.headers.get("authorization") != "Bearer xoxb-fake-bot-token":
        return httpx.Response(
            200, text="<html>sign in</html>", headers={"content-type": "text/html"}
        )
    if request.url.path.endswith(".png"):
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    return httpx.Response(200, content="line 1\nline 2 \xff".encode("latin-1"))


def room_with(slack: FakeSlack) -> tuple[Room, AsyncWebClient]:
    slack.users.update(
        {
            "U1": {"id": "U1", "name": "alice", "profile": {"display_name": "Alice"}},
            "U2": {"id": "U2", "name": "bob", "profile": {"real_name": "Bob Jones"}},
        }
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(downloads))
    room = Room(
        people=People(FakeAsyncRedis(decode_responses=True), Keys()),
        files=FileFetcher(http, max_text_bytes=1000),
    )
    return room, AsyncWebClient(token=slack.token, base_url=slack.api_url)


def question(text: str, *files: FileRef) -> Incoming:
    return Incoming("T1", "C1", "U2", "100.000009", "100.000001", text, files=files)


async def test_room_names_every_author_and_mention_once(slack: FakeSlack) -> None:
    """Authors carry their names, mentions read @Name, bots are marked; names are asked of Slack
    once and then come from the cache."""
    room, client = room_with(slack)
    records: list[StoredMessage] = [
        {"id": "100.000001", "role": "user", "user": "U1", "content": "db is down <@U2>"},
        {"id": "100.000002", "role": "user", "bot": True, "name": "CI", "content": "build red"},
        {"id": "100.000003", "role": "assistant", "content": "Check the logs."},
    ]
    prompt = await room.prompt(
        client, question("what now?"), records, system_tokens=10, budget=10_000, images=None
    )
    assert [m["content"] for m in prompt.history] == [
        "Alice: db is down @Bob Jones",
        "[bot] CI: build red",
        "Check the logs.",
    ]
    assert prompt.question["content"] == "Bob Jones: what now?"
    assert prompt.asker == "Bob Jones" and "Bob Jones" in prompt.system_note()
    again = await room.prompt(
        client, question("and?"), records, system_tokens=10, budget=10_000, images=None
    )
    assert again.question["content"] == "Bob Jones: and?"
    assert len(slack.calls_to("users.info")) == 2


async def test_room_reads_text_files_and_images_and_names_what_it_left_out(
    slack: FakeSlack,
) -> None:
    """A text file's contents (bad UTF-8 replaced) and an image part go into the question; a PDF
    and an oversized log are named as left out."""
    room, client = room_with(slack)
    asked = question(
        "see attached",
        ref("F1", "app.log", "text/plain", 20, "text"),
        ref("F2", "shot.png", "image/png", len(PNG)),
        ref("F3", "spec.pdf", "application/pdf", 500, "pdf"),
        ref("F4", "huge.log", "text/plain", 5000, "text"),
    )
    prompt = await room.prompt(client, asked, [], system_tokens=10, budget=50_000, images=None)
    text = prompt.question["content"]
    assert "[file app.log]\n```\nline 1\nline 2 \ufffd\n```" in text
    parts = prompt.question["parts"]
    assert parts[0] == {"type": "text", "text": text}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert prompt.images == 1
    assert prompt.left_out == [
        "spec.pdf – PDF files are not read",
        "huge.log – 5 kB, over the 1 kB limit",
    ]


async def test_the_bot_token_goes_only_to_slacks_file_host(slack: FakeSlack) -> None:
    """A file reference that points anywhere but Slack's file host over https (another host, a
    look-alike, plain http) is named as left out and never requested: the bot token would go
    with the request."""
    asked_for: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        asked_for.append(str(request.url))
        return downloads(request)

    room, client = room_with(slack)
    room.files.http = httpx.AsyncClient(transport=httpx.MockTransport(recording))
    good = ref("F1", "app.log", "text/plain", 20, "text")
    elsewhere = [
        {**good, "id": "F5", "name": "a.log", "url": "https://attacker.example/a.log"},
        {**good, "id": "F6", "name": "b.log", "url": "https://files.slack.com.example/b.log"},
        {**good, "id": "F7", "name": "c.log", "url": "http://files.slack.com/c.log"},
    ]
    prompt = await room.prompt(
        client, question("see", good, *elsewhere), [], system_tokens=10, budget=50_000, images=None
    )
    assert asked_for == [good["url"]]
    assert "[file app.log]" in prompt.question["content"]
    assert prompt.left_out == [
        f"{name} – its link is not a Slack file download" for name in ("a.log", "b.log", "c.log")
    ]


async def test_room_leaves_images_out_when_they_may_not_be_sent(slack: FakeSlack) -> None:
    """With images refused (vision off, old api-version) the image is named, not sent."""
    room, client = room_with(slack)
    asked = question("look", ref("F2", "shot.png", "image/png", len(PNG)))
    prompt = await room.prompt(
        client, asked, [], system_tokens=10, budget=50_000, images="images are off here"
    )
    assert "parts" not in prompt.question
    assert prompt.left_out == ["shot.png – images are off here"]


async def test_room_drops_the_oldest_messages_that_do_not_fit(slack: FakeSlack) -> None:
    """A thread longer than the budget loses its oldest messages first, counted."""
    room, client = room_with(slack)
    records: list[StoredMessage] = [
        {"id": f"100.00000{i}", "role": "user", "user": "U1", "content": "x" * 300, "tokens": 100}
        for i in range(1, 8)
    ]
    prompt = await room.prompt(
        client, question("sum up"), records, system_tokens=10, budget=410, images=None
    )
    assert prompt.dropped == 4
    assert len(prompt.history) == 3
    assert prompt.history[0]["tokens"] == 100
    assert IMAGE_TOKENS > 1000


async def test_a_prompt_carries_the_newest_images_within_the_caps(slack: FakeSlack) -> None:
    """Twelve screenshots in a thread, three a message: only the newest ten are downloaded and
    sent (of the oldest message, its first file); the other two are named as left out. Images that together pass the byte cap are
    left out the same way, without being downloaded."""
    from bot.room import MAX_PROMPT_IMAGE_BYTES

    asked_for: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        asked_for.append(request.url.path.rsplit("/", 1)[-1])
        return downloads(request)

    room, client = room_with(slack)
    room.files.http = httpx.AsyncClient(transport=httpx.MockTransport(recording))
    records: list[StoredMessage] = [
        {
            "id": f"100.00000{i}",
            "role": "user",
            "user": "U1",
            "content": f"shot {i}",
            "files": [ref(f"F{i}{j}", f"s{i}{j}.png", "image/png", len(PNG)) for j in range(3)],
        }
        for i in range(1, 5)
    ]
    prompt = await room.prompt(
        client, question("which?"), records, system_tokens=10, budget=50_000, images=None
    )
    assert prompt.images == 10
    every = {f"s{i}{j}.png" for i in range(1, 5) for j in range(3)}
    assert sorted(asked_for) == sorted(every - {"s11.png", "s12.png"})
    assert [line.split(" – ")[0] for line in prompt.left_out] == ["s11.png", "s12.png"]

    asked_for.clear()
    big = MAX_PROMPT_IMAGE_BYTES // 2 + 1
    heavy = question("and these?", *(ref(f"G{j}", f"g{j}.png", "image/png", big) for j in range(2)))
    prompt = await room.prompt(client, heavy, [], system_tokens=10, budget=50_000, images=None)
    assert asked_for == ["g0.png"] and prompt.images == 1
    assert [line.split(" – ")[0] for line in prompt.left_out] == ["g1.png"]
