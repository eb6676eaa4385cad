"""End to end: the bot reads the room — a thread's earlier discussion (`conversations.replies`,
paginated, rate limited), who said what (`users.info`), messages it does not answer, edits and
deletions, files and images — with `python -m bot serve`, a real redis-server and the fakes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.azure import FakeAzure
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, SlackFault, context_text, message_text
from fakes.slack_requests import envelope, mention, message, message_changed, message_deleted
from tests.slackbot_harness import BotProcess, bot_env, final_thread, wait_until

PEOPLE = {"U1": "Alice", "U2": "Bob", "U3": "Chen", "U4": "Dana"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@pytest.fixture(scope="module")
def bot(
    fake_azure: FakeAzure, fake_slack: FakeSlack, redis_server: RedisServer
) -> Iterator[BotProcess]:
    proc = BotProcess(
        bot_env(fake_azure, fake_slack, redis_server.url, BOT_CONTEXT_WINDOW="128000")
    ).wait_ready()
    yield proc
    proc.stop()


@pytest.fixture
def people(slack: FakeSlack) -> FakeSlack:
    for user, name in PEOPLE.items():
        slack.users[user] = {"id": user, "name": name.lower(), "profile": {"display_name": name}}
    return slack


def prompt_of(azure: FakeAzure) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = azure.completions[-1].body["messages"]
    return messages


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p["type"] == "text")


def test_mentioned_in_a_long_discussion_the_bot_reads_it_all_with_names(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """A 30-message thread by four people, read page by page once: every message reaches Azure
    with its author's name, and the system prompt says who asked."""
    slack = people
    slack.replies_page_cap = 7
    parent = slack.post_as("U1", "CX1", "Checkout is returning 502s since 10:02")
    for i in range(1, 29):
        slack.post_as(
            f"U{i % 4 + 1}", "CX1", f"finding {i}: cache miss rate {i}%", thread_ts=parent
        )
    ask = mention("summarize this, what did we decide?", channel="CX1", thread_ts=parent, user="U3")
    slack.post_as("U3", "CX1", ask["text"], thread_ts=parent, ts=ask["ts"])
    assert bot.send_event(ask).status_code == 200
    (reply,) = final_thread(slack, "CX1", parent)
    assert message_text(reply).startswith("Answer to: Chen: summarize this")
    sent = prompt_of(azure)
    said = [text_of(m) for m in sent[1:-1]]
    assert said[0] == "Alice: Checkout is returning 502s since 10:02"
    assert len(said) == 29
    for name in PEOPLE.values():
        assert any(line.startswith(f"{name}: finding") for line in said), name
    assert "The current question is from Chen" in sent[0]["content"]
    assert len(slack.calls_to("conversations.replies")) == 5  # 30 messages, 7 a page
    assert "earlier" not in context_text(reply)


def test_messages_the_bot_does_not_answer_are_seen_by_its_next_answer(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """Once the bot is in a thread, replies addressed to others and other bots' posts are
    recorded as they arrive, so the next answer sees them without reading the thread."""
    slack = people
    start = mention("is the deploy safe?", channel="CX2", user="U1")
    bot.send_event(start)
    final_thread(slack, "CX2", start["ts"])
    aside = message(
        "<@U2> can you check the canary?", channel="CX2", thread_ts=start["ts"], user="U1"
    )
    bot.send_event(aside)
    ci = message(
        "canary healthy",
        channel="CX2",
        thread_ts=start["ts"],
        user="UCIBOT",
        bot_id="BCI",
        bot_profile={"name": "Deploybot"},
    )
    bot.send_event(ci)
    wait_until(lambda: bot.metric("slackgpt_recorded_total") >= 2)
    again = mention("so, go or no go?", channel="CX2", thread_ts=start["ts"], user="U2")
    bot.send_event(again)
    final_thread(slack, "CX2", start["ts"], count=2)
    said = [text_of(m) for m in prompt_of(azure)[1:]]
    assert said == [
        "Alice: is the deploy safe?",
        "Answer to: Alice: is the deploy safe?",
        "Alice: @Bob can you check the canary?",
        "[bot] Deploybot: canary healthy",
        "Bob: so, go or no go?",
    ]
    assert slack.calls_to("conversations.replies") == []
    assert len(slack.thread("CX2", start["ts"])) == 2  # the aside and the bot post: no answer


def test_edits_and_deletions_reach_the_next_prompt_and_are_not_answered(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """An edited message is sent as edited; a deleted one is never sent again; neither event
    gets an answer."""
    slack = people
    start = mention("which region failed?", channel="CX3", user="U1")
    bot.send_event(start)
    final_thread(slack, "CX3", start["ts"])
    wrong = message("<@U4> it was eu-west-1", channel="CX3", thread_ts=start["ts"], user="U1")
    secret = message("<@U4> password is hunter2", channel="CX3", thread_ts=start["ts"], user="U1")
    bot.send_event(wrong)
    bot.send_event(secret)
    bot.send_event(message_changed(wrong, "<@U4> it was eu-north-1"))
    bot.send_event(message_deleted(secret))
    wait_until(lambda: bot.metric("slackgpt_recorded_total") >= 4)
    follow = message("thanks, and now?", channel="CX3", thread_ts=start["ts"], user="U4")
    bot.send_event(follow)
    final_thread(slack, "CX3", start["ts"], count=2)
    said = "\n".join(text_of(m) for m in prompt_of(azure))
    assert "Alice: @Dana it was eu-north-1" in said
    assert "eu-west-1" not in said and "hunter2" not in said
    assert len(slack.thread("CX3", start["ts"])) == 2


def test_a_text_file_and_an_image_go_into_the_azure_request(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """A log file's text and a screenshot as an image part, both downloaded with the bot token;
    a PDF is named as left out in the prompt and in the answer's usage line."""
    slack = people
    log = slack.upload("app.log", b"ERROR db timeout after 30s\n", "text/plain", "text")
    shot = slack.upload("screen.png", PNG, "image/png", "png")
    pdf = slack.upload("runbook.pdf", b"%PDF-1.7", "application/pdf", "pdf")
    ask = mention("what broke?", channel="CX4", user="U2", files=[log, shot, pdf])
    bot.send_event(ask)
    (reply,) = final_thread(slack, "CX4", ask["ts"])
    question = prompt_of(azure)[-1]["content"]
    assert isinstance(question, list)
    assert "Bob: what broke?" in question[0]["text"]
    assert "[file app.log]\n```\nERROR db timeout after 30s\n" in question[0]["text"]
    assert "[file runbook.pdf not included: PDF files are not read]" in question[0]["text"]
    assert question[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert "left out: runbook.pdf – PDF files are not read" in context_text(reply)
    downloads = slack.downloads
    assert {d["name"] for d in downloads} == {"app.log", "screen.png"}
    assert all(d["authorized"] for d in downloads)


def test_a_deployment_that_refuses_images_is_asked_again_without_them(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """Azure's 400 for image input → the same turn without the image, and the answer says so."""
    slack = people
    azure.text_only.add("gpt-35-turbo")
    shot = slack.upload("graph.png", PNG, "image/png", "png")
    ask = mention("explain this graph", channel="CX5", user="U1", files=[shot])
    bot.send_event(ask)
    (reply,) = final_thread(slack, "CX5", ask["ts"])
    assert message_text(reply) == "Answer to: Alice: explain this graph"
    assert "images skipped: this deployment does not take image input" in context_text(reply)
    assert isinstance(azure.completions[-2].body["messages"][-1]["content"], list)
    assert isinstance(azure.completions[-1].body["messages"][-1]["content"], str)


def test_a_rate_limited_thread_read_is_waited_out_or_answered_without(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """One 429 with Retry-After 1 is waited out (full context); a Slack that keeps refusing
    beyond the turn's deadline still gets an answer, which says what it could not read, and
    the thread is read again for the next question."""
    slack = people
    parent = slack.post_as("U1", "CX6", "first thoughts")
    slack.fail("conversations.replies", SlackFault(status=429, retry_after=1))
    ask = mention("what do you think?", channel="CX6", thread_ts=parent, user="U2")
    bot.send_event(ask)
    (reply,) = final_thread(slack, "CX6", parent)
    assert "Alice: first thoughts" in [text_of(m) for m in prompt_of(azure)]
    assert "not read" not in context_text(reply)
    assert len(slack.calls_to("conversations.replies")) == 2

    other = slack.post_as("U1", "CX7", "second thread")
    slack.fail("conversations.replies", SlackFault(status=429, retry_after=60))
    ask = mention("and here?", channel="CX7", thread_ts=other, user="U2")
    bot.send_event(ask)
    (reply,) = final_thread(slack, "CX7", other)
    assert message_text(reply) == "Answer to: Bob: and here?"
    assert "earlier thread messages not read" in context_text(reply)
    assert "Alice: second thread" not in [text_of(m) for m in prompt_of(azure)]

    # The next question reads the thread again (Slack answers now), and the one after does not;
    # the bot's answer read back from Slack is not sent twice.
    for count, question in ((2, "and now?"), (3, "thanks")):
        bot.send_event(mention(question, channel="CX7", thread_ts=other, user="U2"))
        final_thread(slack, "CX7", other, count=count)
        said = [text_of(m) for m in prompt_of(azure)]
        assert "Alice: second thread" in said
        assert said.count("Answer to: Bob: and here?") == 1
    assert len(slack.calls_to("conversations.replies")) == 2 + 2  # CX6's two, CX7's two

    # A refusal that will not pass (a missing scope) is said once and not tried every turn.
    third = slack.post_as("U1", "CX11", "third thread")
    slack.fail("conversations.replies", SlackFault(error="missing_scope"))
    for count, question in ((1, "here too?"), (2, "still?")):
        bot.send_event(mention(question, channel="CX11", thread_ts=third, user="U2"))
        final_thread(slack, "CX11", third, count=count)
    assert len(slack.calls_to("conversations.replies")) == 4 + 1


def test_a_thread_too_long_for_the_window_drops_its_oldest_messages(
    fake_azure: FakeAzure, people: FakeSlack, redis_url: str
) -> None:
    """With a small context window the newest messages are sent, and the usage line counts the
    earlier ones left out."""
    slack, azure = people, fake_azure
    azure.clear()
    parent = slack.post_as("U1", "CX8", "m0 " + "word " * 60)
    for i in range(1, 40):
        slack.post_as("U2", "CX8", f"m{i} " + "word " * 60, thread_ts=parent)
    env = bot_env(azure, slack, redis_url, BOT_CONTEXT_WINDOW="2000", BOT_MAX_TOKENS="300")
    small = BotProcess(env).wait_ready()
    try:
        ask = mention("recap please", channel="CX8", thread_ts=parent, user="U3")
        small.send_event(envelope(ask)["event"])
        (reply,) = final_thread(slack, "CX8", parent)
    finally:
        small.stop()
    said = [text_of(m) for m in azure.completions[-1].body["messages"][1:-1]]
    assert said and said[-1].startswith("Bob: m39 ")
    numbers = [int(line.split()[1][1:]) for line in said]
    assert numbers == sorted(numbers) and numbers[0] > 0
    assert f"{40 - len(said)} earlier messages not sent" in context_text(reply)


def test_what_is_posted_while_the_first_answer_is_written_is_kept_and_answered(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """While the bot's first answer in a thread is still being written, a reply addressed to
    someone else is recorded and a follow-up waits its turn: both reach the next prompt, after
    the first question and answer, and the follow-up is answered second."""
    slack = people
    azure.first_token_delay = 1.0
    start = mention("is the queue draining?", channel="CX9", user="U1")
    bot.send_event(start)
    wait_until(lambda: len(azure.completions) == 1)
    aside = message("<@U2> keep an eye on it", channel="CX9", thread_ts=start["ts"], user="U1")
    follow = message("and how fast?", channel="CX9", thread_ts=start["ts"], user="U1")
    assert bot.send_event(aside).status_code == 200
    assert bot.send_event(follow).status_code == 200
    first, second = final_thread(slack, "CX9", start["ts"], count=2)
    assert message_text(first) == "Answer to: Alice: is the queue draining?"
    assert message_text(second) == "Answer to: Alice: and how fast?"
    assert [text_of(m) for m in prompt_of(azure)[1:]] == [
        "Alice: is the queue draining?",
        "Answer to: Alice: is the queue draining?",
        "Alice: @Bob keep an eye on it",
        "Alice: and how fast?",
    ]


def test_a_question_deleted_while_it_is_answered_is_not_kept(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure, redis_url: str
) -> None:
    """Deleting a question (a pasted secret) while Azure works on it: the turn still ends, but
    neither the question nor its answer is written to the thread's history afterwards."""
    import redis

    slack = people
    azure.first_token_delay = 1.0
    turns = bot.metric("slackgpt_turns_total")
    oops = mention("my password is hunter2, is it strong?", channel="CX10", user="U1")
    bot.send_event(oops)
    wait_until(lambda: len(azure.completions) == 1)
    assert bot.send_event(message_deleted(oops)).status_code == 200
    final_thread(slack, "CX10", oops["ts"])
    wait_until(lambda: bot.metric("slackgpt_turns_total") > turns)  # ended: committed
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = {k: client.hgetall(k) for k in client.scan_iter("*msgs:{*CX10*")}
    finally:
        client.close()
    assert "hunter2" not in repr(stored)


def test_an_answer_deleted_in_slack_is_not_sent_again(
    bot: BotProcess, people: FakeSlack, azure: FakeAzure
) -> None:
    """Someone deletes a wrong answer of the bot's in Slack: it is forgotten like any deleted
    message, though the store keeps it under its question's id, not its Slack ts; the question
    stays."""
    slack = people
    start = mention("which region is primary?", channel="CX12", user="U1")
    bot.send_event(start)
    (answer,) = final_thread(slack, "CX12", start["ts"])
    recorded = bot.metric("slackgpt_recorded_total")
    posted = {k: v for k, v in answer.items() if k in ("ts", "user", "bot_id", "text", "blocks")}
    deleted = message_deleted({**posted, "channel": "CX12", "thread_ts": start["ts"]})
    del slack.messages[("CX12", answer["ts"])]  # as Slack does
    assert bot.send_event(deleted).status_code == 200
    wait_until(lambda: bot.metric("slackgpt_recorded_total") > recorded)
    bot.send_event(message("and the secondary?", channel="CX12", thread_ts=start["ts"], user="U1"))
    (again,) = final_thread(slack, "CX12", start["ts"])
    assert message_text(again) == "Answer to: Alice: and the secondary?"
    said = [text_of(m) for m in prompt_of(azure)[1:]]
    assert said == ["Alice: which region is primary?", "Alice: and the secondary?"]
