"""What the bot has learned about each deployment: does it take the reasoning parameter set?

Nobody has to configure it. A deployment is known to be a reasoning one when Azure refused a
classic parameter (400 `unsupported_parameter`/`unsupported_value` for `max_tokens`,
`temperature` or `top_p`), or when its answers name a reasoning model (o1, o3, o4, gpt-5 ...;
Azure's `model` is the underlying model, e.g. `gpt-5-mini-2025-08-07`, never the deployment name).
The findings live in a `DeploymentMemory` (Redis in the Slack app, so every replica sends the
right set first) and are cached here for a minute, so a turn usually pays no Redis round trip for
them. A memory that fails never fails a turn: the worst case is one refused request, retried.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot import errors

log = logging.getLogger(__name__)

CLASSIC_PARAMS = frozenset({"max_tokens", "temperature", "top_p"})
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)(?!.*-chat)", re.IGNORECASE)
"""o1, o3, o3-mini, o4-mini, gpt-5, gpt-5-mini, gpt-5-nano ...; gpt-5-chat is a chat model."""


def is_reasoning_model(model: str) -> bool:
    """Whether Azure's `model` names a reasoning model (which refuses max_tokens/temperature)."""
    return bool(_REASONING_MODEL.match(model))


def refuses_classic_params(exc: errors.AzureOpenAIError) -> bool:
    """Azure's answer of a reasoning deployment to `max_tokens`, `temperature` or `top_p`."""
    return isinstance(exc, errors.UnsupportedParameter) and exc.param in CLASSIC_PARAMS


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """What is known of one deployment. `reasoning` None: no 400 has said either way."""

    reasoning: bool | None = None
    model: str = ""

    @property
    def takes_reasoning_set(self) -> bool:
        if self.reasoning is not None:
            return self.reasoning
        return is_reasoning_model(self.model)


class DeploymentMemory(Protocol):
    """Where findings are kept, per endpoint and deployment. May raise `StoreUnavailable`."""

    async def recall(self, endpoint: str, deployment: str) -> DeploymentFacts: ...

    async def remember(self, endpoint: str, deployment: str, facts: DeploymentFacts) -> None: ...


class InMemoryDeployments:
    """A `DeploymentMemory` for one process (`ask`, `doctor`, tests)."""

    def __init__(self) -> None:
        self._facts: dict[tuple[str, str], DeploymentFacts] = {}

    async def recall(self, endpoint: str, deployment: str) -> DeploymentFacts:
        return self._facts.get((endpoint, deployment), DeploymentFacts())

    async def remember(self, endpoint: str, deployment: str, facts: DeploymentFacts) -> None:
        self._facts[(endpoint, deployment)] = facts


class Deployments:
    """The client's view of a `DeploymentMemory`: cached, and never raising."""

    def __init__(
        self,
        memory: DeploymentMemory,
        endpoint: str,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._memory = memory
        self._endpoint = endpoint
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, DeploymentFacts]] = {}

    async def facts(self, deployment: str) -> DeploymentFacts:
        cached = self._cache.get(deployment)
        if cached is not None and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            facts = await self._memory.recall(self._endpoint, deployment)
        except errors.StoreUnavailable as exc:
            log.warning("deployment memory unavailable (%s); guessing the parameter set", exc)
            facts = cached[1] if cached is not None else DeploymentFacts()
        self._cache[deployment] = (self._clock(), facts)
        return facts

    async def learn(
        self, deployment: str, *, reasoning: bool | None = None, model: str = ""
    ) -> None:
        """Record a finding here at once, and in the memory when it is new.

        An answer from another model than the remembered one means the deployment was
        redeployed: what its old model refused says nothing about the new one, so the new
        model's family decides until Azure refuses something again.
        """
        old = self._cache.get(deployment, (0.0, DeploymentFacts()))[1]
        if model and old.model and model != old.model:
            new = DeploymentFacts(None, model)
        else:
            new = DeploymentFacts(
                old.reasoning if reasoning is None else reasoning, model or old.model
            )
        if new == old:
            return
        self._cache[deployment] = (self._clock(), new)
        try:
            await self._memory.remember(self._endpoint, deployment, new)
        except errors.StoreUnavailable as exc:
            log.warning("could not remember what deployment %r takes (%s)", deployment, exc)
