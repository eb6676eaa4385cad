"""The benchmark's fake services in one process: fake Azure, fake Slack, a counting Redis proxy.

Started by `bench.run`; prints one JSON line with their addresses, then answers commands read
from stdin, one per line: `results` (JSON timings), `finished` (how many threads have a final
answer: cheap enough to poll while turns are still running), `reset`,
`config FIRST_TOKEN TOKEN_DELAY`, `quit`. Running them apart from the load client and the bot keeps their CPU out of the figures
of both.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
import threading
from typing import Any

from fakes.azure import FakeAzure
from fakes.server_thread import free_port
from fakes.slack import FakeSlack

TOKEN = re.compile(r"bench-(\d+)")


class CountingProxy:
    """A TCP proxy to Redis that counts client writes: one burst of commands ≈ one round trip."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.round_trips = 0
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port, backlog=4096)
        )
        self.loop.run_until_complete(server.start_serving())
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    if count:
                        self.round_trips += 1
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))


def is_final(text: str) -> bool:
    """Neither the placeholder nor a streamed answer still growing."""
    return "Thinking" not in text and not text.endswith(" …")


def finished_threads(slack: FakeSlack) -> int:
    messages = list(slack.messages.values())
    return len({m["thread_ts"] for m in messages if is_final(m["versions"][-1][1])})


def results(azure: FakeAzure, slack: FakeSlack, proxy: CountingProxy) -> dict[str, Any]:
    calls = []
    for r in list(azure.requests):
        if not isinstance(r.body, dict) or r.finished is None:
            continue
        match = TOKEN.search(json.dumps(r.body.get("messages", [])[-1:]))
        if match:
            calls.append(
                {
                    "token": int(match.group(1)),
                    "started": r.started,
                    "first_token": r.first_token,
                    "finished": r.finished,
                }
            )
    messages = []
    for m in list(slack.messages.values()):
        versions = list(m["versions"])
        texts = [(t, text) for t, text in versions if "Thinking" not in text]
        first_text = texts[0][0] if texts else None
        final = next((t for t, text in texts if is_final(text)), None)
        messages.append(
            {
                "thread_ts": m["thread_ts"],
                "created": m["created_at"],
                "first_text": first_text,
                "final": final,
                "updates": m["updates"],
            }
        )
    return {
        "azure": calls,
        "slack": messages,
        "proxy": {"round_trips": proxy.round_trips, "connections": proxy.connections},
    }


def main() -> None:
    # The fakes keep every request for the figures; with the cyclic GC on, its full collections
    # over that growing heap stall the fakes for tens of milliseconds and show up in the tails of
    # whichever server is being measured. Reference counting still frees almost everything.
    gc.disable()
    # Three servers share this process's GIL. At the default 5 ms switch interval a server
    # thread can wait that long for its turn, and the wait lands in the measured overhead.
    sys.setswitchinterval(0.0005)
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-port", type=int, required=True)
    args = parser.parse_args()
    azure = FakeAzure().start()
    slack = FakeSlack().start()
    proxy = CountingProxy(args.redis_port)
    print(
        json.dumps(
            {
                "azure": azure.endpoint,
                "azure_key": azure.key,
                "slack": slack.api_url,
                "slack_token": slack.token,
                "redis_port": proxy.port,
            }
        ),
        flush=True,
    )
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "results":
            print(json.dumps(results(azure, slack, proxy)), flush=True)
        elif cmd[0] == "finished":
            print(json.dumps({"threads": finished_threads(slack)}), flush=True)
        elif cmd[0] == "reset":
            azure.clear()
            slack.clear()
            proxy.round_trips = 0
            print("{}", flush=True)
        elif cmd[0] == "config":
            azure.first_token_delay, azure.token_delay = float(cmd[1]), float(cmd[2])
            print("{}", flush=True)
        elif cmd[0] == "quit":
            break
    azure.stop()
    slack.stop()


if __name__ == "__main__":
    main()
