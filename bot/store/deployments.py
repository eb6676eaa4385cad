"""The deployment memory in Redis: what each Azure deployment was found to take, shared by every
replica, so a reasoning deployment refused `max_tokens` once, not once per replica or restart.

One hash per endpoint and deployment (`Keys.deployment`), fields `reasoning` ("1"/"0") and
`model` (Azure's model id). Every write pushes its expiry to `ttl_seconds` from now: a deployment
can be redeployed with another model under the same name, so findings are re-learned after some
quiet days rather than kept forever.
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
        reasoning = fields.get("reasoning")
        return DeploymentFacts(
            reasoning=None if reasoning is None else reasoning == "1",
            model=str(fields.get("model") or ""),
        )

    async def remember(
        self, endpoint: str, deployment: str, *, reasoning: bool | None = None, model: str = ""
    ) -> None:
        if reasoning is None and not model:
            return
        key = self._keys.deployment(endpoint, deployment)
        with redis_unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                if reasoning is not None:
                    pipe.hset(key, "reasoning", "1" if reasoning else "0")
                if model:
                    pipe.hset(key, "model", model)
                pipe.expire(key, self._ttl)
                await pipe.execute()
