"""The deployment memory in Redis: what each Azure deployment was found to take, shared by every
replica, so a reasoning deployment refused `max_tokens` once, not once per replica or restart.

One hash per endpoint and deployment (`Keys.deployment`), fields `reasoning` ("1", "0", or ""
for not known) and `model` (Azure's model id), written whole. Every write pushes the expiry to
`ttl_seconds` from now, so the findings of a deployment nobody uses are forgotten after some
days rather than kept forever.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.azure_deployments import DeploymentFacts
from bot.errors import redis_unavailable
from bot.store.keys import Keys

DEFAULT_TTL_SECONDS = 7 * 86_400


class RedisDeployments:
    """A `DeploymentMemory` on Redis; redis-py's errors become `StoreUnavailable`."""

    def __init__(self, redis: Redis, keys: Keys, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_seconds

    async def recall(self, endpoint: str, deployment: str) -> DeploymentFacts:
        with redis_unavailable():
            fields: dict[str, str] = await self._redis.hgetall(  # type: ignore[assignment]
                self._keys.deployment(endpoint, deployment)
            )
        return DeploymentFacts(
            reasoning={"1": True, "0": False}.get(fields.get("reasoning") or ""),
            model=str(fields.get("model") or ""),
        )

    async def remember(self, endpoint: str, deployment: str, facts: DeploymentFacts) -> None:
        key = self._keys.deployment(endpoint, deployment)
        reasoning = {True: "1", False: "0", None: ""}[facts.reasoning]
        with redis_unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, "reasoning", reasoning)
                pipe.hset(key, "model", facts.model)
                pipe.expire(key, self._ttl)
                await pipe.execute()
