"""Fakes of the services the bot talks to, shared by the tests and the benchmark.

`azure` (Azure OpenAI chat completions), `slack` (the Slack Web API and a Socket Mode websocket),
`slack_requests` (signed Events API requests as Slack sends them), `redis_server` (a real
`redis-server` process on a free port), `server_thread` (an aiohttp app served from a thread).
"""
