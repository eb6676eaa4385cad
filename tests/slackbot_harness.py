"""Drive the real bot as Slack would: a `python -m bot serve` subprocess, signed requests, fakes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.store import Keys
from fakes.azure import FakeAzure
from fakes.server_thread import free_port
from fakes.slack import FakeSlack, message_text
from fakes.slack_requests import SIGNING_SECRET, envelope, sign

SAMPLE = re.compile(r'^(\w+)\{\w+="([^"]*)"\} (\S+)$', re.MULTILINE)


def wait_until(check: Callable[[], Any], timeout: float = 15, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def bot_env(
    azure: FakeAzure, slack: FakeSlack, redis_url: str | None, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "SLACK_", "BOT_", "REDIS_"))
    }
    env.update(
        {
            "AZURE_OPENAI_ENDPOINT": azure.endpoint,
            "AZURE_OPENAI_KEY": azure.key,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "BOT_LOG_LEVEL": "INFO",
            "BOT_DRAIN_SECONDS": "10",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


class BotProcess:
    """`python -m bot serve` on a free port; stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = f"/tmp/bot-test-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                *(
                    ("serve", "--host", "127.0.0.1", "--port", str(self.port))
                    if args is None
                    else args
                ),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self, path: str = "/healthz") -> BotProcess:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.logs()}")
            try:
                return self.http.get(path).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=20)
        return self

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on /metrics (0 when absent), e.g.
        `slackgpt_turns_total`."""
        total = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def http_pending(self) -> bool:
        """Whether a request has reached the bot's port and waits, unread, in the kernel: a
        connection to it is established with bytes in its receive queue (/proc/net/tcp)."""
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        for row in rows:
            local, state, queues = row[1], row[3], row[4]
            waiting = int(queues.split(":")[1], 16)
            if int(local.split(":")[1], 16) == self.port and state == "01" and waiting > 0:
                return True
        return False

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def counter(self, name: str) -> Counter[str]:
        """A one-label counter from `/metrics`, by label value: `counter("slackgpt_turns_total")`
        gives the turns ended so far by outcome."""
        text = self.http.get("/metrics").text
        return Counter(
            {
                label: int(float(value))
                for metric, label, value in SAMPLE.findall(text)
                if metric == name
            }
        )

    def post_raw(
        self,
        body: str,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or sign(body, ts),
        }
        all_headers.update(headers or {})
        return self.http.post("/slack/events", content=body.encode(), headers=all_headers)

    def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry: tuple[int, str] | None = None,
    ) -> httpx.Response:
        headers = {}
        if retry:
            headers = {"X-Slack-Retry-Num": str(retry[0]), "X-Slack-Retry-Reason": retry[1]}
        return self.post_raw(json.dumps(envelope(event, event_id)), headers=headers)

    def send_command(self, fields: dict[str, str]) -> httpx.Response:
        return self.post_raw(urlencode(fields), content_type="application/x-www-form-urlencoded")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()
        self._log.close()
        return self.proc.returncode


def stored_thread(redis_url: str, thread: str) -> list[dict[str, Any]]:
    """A thread's messages as the bot stored them in Redis (default prefix), oldest first."""
    import redis

    keys = Keys()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        ids = client.zrange(keys.order(thread), 0, -1)
        raw = client.hmget(keys.messages(thread), ids) if ids else []
    finally:
        client.close()
    return [json.loads(x) for x in raw if x]


def turns(*bots: BotProcess) -> Counter[str]:
    """The turns these bots have ended so far, by outcome, summed over the bots."""
    return sum((bot.counter("slackgpt_turns_total") for bot in bots), Counter())


def wait_for_turns(
    bots: BotProcess | Iterable[BotProcess],
    since: Counter[str],
    timeout: float = 15,
    **expected: int,
) -> None:
    """Wait until the bots have ended as many turns since `since` as `expected` counts (every
    delivery handled, duplicates included), then check their outcomes are exactly `expected`."""
    procs = [bots] if isinstance(bots, BotProcess) else list(bots)
    total = sum(expected.values())
    ended = wait_until(lambda: (d := turns(*procs) - since).total() >= total and d, timeout=timeout)
    assert ended == Counter(expected), f"turns ended: {dict(ended)}, expected {expected}"


def final_thread(
    slack: FakeSlack, channel: str, thread_ts: str, count: int = 1, timeout: float = 15
) -> list[dict[str, Any]]:
    """Wait until the thread holds `count` finished bot messages (no placeholder left)."""

    def done() -> list | None:  # type: ignore[type-arg]
        msgs = slack.thread(channel, thread_ts)
        finished = [
            m
            for m in msgs
            if "Thinking" not in message_text(m) and not message_text(m).endswith(" …")
        ]
        return msgs if len(finished) >= count and len(finished) == len(msgs) else None

    return wait_until(done, timeout)  # type: ignore[no-any-return]


def keys_of(redis_url: str, *owners: str) -> set[str]:
    """Every key in Redis (default prefix) holding data of these workspaces or organisations,
    by a full SCAN and `Keys.team_of`."""
    import redis

    keys = Keys()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {k for k in client.scan_iter(count=1000) if keys.team_of(k) in owners}
    finally:
        client.close()
