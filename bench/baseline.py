"""The least work that does the bot's job, as a yardstick: no framework, no dedup, no placeholder.

Verify the Slack signature, ack, then in the background: read the thread's history from Redis,
make one Azure call, append the turn to Redis in one pipeline, post one `chat.postMessage`.
`bench.run` runs it under the same load as the bot and prints the bot's figures as ratios to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

SECRET = os.environ["SLACK_SIGNING_SECRET"].encode()
ENDPOINT = os.environ["AZURE_OPENAI_ENDPOINT"].rstrip("/")
KEY = os.environ["AZURE_OPENAI_KEY"]
SLACK = os.environ["SLACK_API_URL"]
TOKEN = os.environ["SLACK_BOT_TOKEN"]
tasks: set[asyncio.Task[None]] = set()


async def handle(request: web.Request) -> web.Response:
    raw = await request.read()
    ts = request.headers.get("X-Slack-Request-Timestamp", "0")
    expected = "v0=" + hmac.new(SECRET, f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    if abs(time.time() - int(ts)) > 300 or not hmac.compare_digest(
        expected, request.headers.get("X-Slack-Signature", "")
    ):
        return web.json_response({"error": "invalid request"}, status=401)
    body = json.loads(raw)
    event = body.get("event") or {}
    if event.get("type") == "app_mention":
        task = asyncio.ensure_future(turn(request.app, event))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return web.Response(status=200)


async def turn(app: web.Application, event: dict[str, Any]) -> None:
    redis: Redis = app["redis"]
    http: aiohttp.ClientSession = app["http"]
    thread = event.get("thread_ts") or event["ts"]
    key = f"baseline:{event['channel']}:{thread}"
    history = [json.loads(m) for m in await redis.lrange(key, -40, -1)]
    question = {"role": "user", "content": event["text"]}
    messages = [{"role": "system", "content": "You are helpful."}, *history, question]
    async with http.post(
        f"{ENDPOINT}/openai/deployments/gpt-35-turbo/chat/completions",
        params={"api-version": "2024-10-21"},
        json={"messages": messages},
        headers={"api-key": KEY},
    ) as response:
        data = await response.json()
    content = data["choices"][0]["message"]["content"]
    usage = data["usage"]
    async with redis.pipeline(transaction=False) as pipe:  # as lean as the bot's commit
        pipe.rpush(key, json.dumps(question), json.dumps({"role": "assistant", "content": content}))
        pipe.ltrim(key, -40, -1)
        pipe.expire(key, 86400)
        await pipe.execute()
    text = f"{content}\n_prompt {usage['prompt_tokens']} · total {usage['total_tokens']}_"
    async with http.post(
        SLACK + "chat.postMessage",
        json={"channel": event["channel"], "thread_ts": thread, "text": text},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        await response.read()


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def startup(app: web.Application) -> None:
    pool = BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=64)
    app["redis"] = Redis(connection_pool=pool, decode_responses=True)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)  # as the bot's pools
    app["http"] = aiohttp.ClientSession(connector=connector)


def main() -> None:
    try:  # the same event loop the bot gets from uvicorn, so the comparison is fair
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/slack/events", handle)
    app.router.add_get("/healthz", health)
    app.on_startup.append(startup)
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None, print=None)


if __name__ == "__main__":
    main()
