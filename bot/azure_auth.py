"""How the bot proves itself to Azure OpenAI: an `api-key` header, or an Entra ID bearer token.

Key auth sends `api-key: <key>` (not `Authorization: Bearer <key>`, which the deployment API does
not take). Entra ID auth sends `Authorization: Bearer <token>` for the scope ENTRA_SCOPE. Never
both. Keys and tokens never reach a log line or an exception message.

Keyless auth (`AZURE_OPENAI_AUTH=entra`) takes tokens from an azure-identity credential
(`DefaultAzureCredential`: a service principal from AZURE_CLIENT_ID/AZURE_TENANT_ID/
AZURE_CLIENT_SECRET, workload identity, a managed identity, `az login` ...). `EntraTokens` keeps
the token until five minutes before it expires, so turns never wait for a token request:
openai-python's `azure_ad_token_provider` is called before every request, and a credential
without a cache of its own (the Azure CLI one) would then start a process per turn.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from azure.core.credentials import AccessToken
from pydantic import SecretStr

from bot import errors

log = logging.getLogger(__name__)

TokenProvider = Callable[[], Awaitable[str]]
"""Returns an Entra ID access token for ENTRA_SCOPE; awaited before every request."""
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
"""The scope Azure OpenAI tokens must be issued for (openai-python's and Azure's own samples)."""


def static_token_provider(token: SecretStr) -> TokenProvider:
    """A provider for a fixed Entra token (`AZURE_OPENAI_AD_TOKEN`)."""

    async def provide() -> str:
        return token.get_secret_value()

    return provide


class Credential(Protocol):
    """What `EntraTokens` needs of an azure-identity async credential."""

    async def get_token(self, *scopes: str) -> AccessToken: ...

    async def close(self) -> None: ...


_ATTEMPT = re.compile(r"^\s*(\w+Credential): (.*)$", re.MULTILINE)


def tried_credentials(message: str) -> str:
    """azure-identity's chain failure ("Attempted credentials:" then one `\tName: why` line per
    credential) condensed into one line: `Name (why), Name (why)`."""
    found = []
    for name, why in _ATTEMPT.findall(message):
        why = why.removeprefix(name).strip(" .")
        first = why.split(". ")[0].strip(" .")
        found.append(f"{name} ({first})" if first else name)
    if found:
        return ", ".join(found)
    return message.splitlines()[0][:300] if message else ""


class EntraTokens:
    """A `TokenProvider` over azure-identity credentials: one token request per token
    lifetime, whatever the number of turns.

    Each request uses a new credential from `credentials` and closes it at once (azure-identity
    cannot reopen a closed one): tokens come about once an hour, so nothing is left open between
    them, and nothing needs closing at shutdown.
    """

    def __init__(
        self,
        credentials: Callable[[], Credential],
        *,
        scope: str = ENTRA_SCOPE,
        refresh_before: float = 300.0,
        retry_after_failure: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._scope = scope
        self._refresh_before = refresh_before
        self._retry_after_failure = retry_after_failure
        self._clock = clock
        self._token: AccessToken | None = None
        self._failed_at = float("-inf")
        self._lock = asyncio.Lock()

    def _fresh(self) -> AccessToken | None:
        token = self._token
        if token is not None and self._clock() < token.expires_on - self._refresh_before:
            return token
        return None

    async def __call__(self) -> str:
        token = self._fresh()
        if token is not None:
            return token.token
        async with self._lock:  # one request however many turns are waiting for it
            token = self._fresh()
            if token is not None:
                return token.token
            return await self._refresh()

    async def _refresh(self) -> str:
        old = self._token
        if old is None or self._clock() >= old.expires_on - 30:
            self._token = await self._request()
            return self._token.token
        # Still valid for a while: a failed refresh is retried later, not felt by this turn.
        if self._clock() - self._failed_at < self._retry_after_failure:
            return old.token
        try:
            self._token = await self._request()
        except errors.EntraTokenUnavailable as exc:
            self._failed_at = self._clock()
            log.warning("Entra token refresh failed, using the current one: %s", exc.tried)
            return old.token
        return self._token.token

    async def _request(self) -> AccessToken:
        credential = self._credentials()
        try:
            return await credential.get_token(self._scope)
        except Exception as exc:  # the third-party boundary: any failure means no token
            message = str(getattr(exc, "message", None) or exc)
            raise errors.EntraTokenUnavailable(
                f"no Entra ID token ({type(exc).__name__})", tried=tried_credentials(message)
            ) from exc
        finally:
            await credential.close()


class Auth:
    """The auth header of each request, and key rotation after a 401."""

    def __init__(
        self,
        *,
        api_key: SecretStr | None = None,
        secondary_key: SecretStr | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        if api_key is None and token_provider is None:
            raise errors.ConfigError("AzureOpenAIClient needs an api key or a token provider")
        self._keys = [k for k in (api_key, secondary_key) if k is not None]
        self._token_provider = token_provider
        self.bearer = token_provider is not None
        """Entra ID auth: Azure's 401/403 then mean the identity, not a key."""

    async def header(self) -> dict[str, str]:
        if self._token_provider is not None:
            return {"Authorization": f"Bearer {await self._token_provider()}"}
        return {"api-key": self._keys[0].get_secret_value()}

    def rotate(self) -> bool:
        """Switch to the other key after a 401; False when there is none to switch to.

        Key rotation as the quickstart describes it: KEY1 was regenerated, KEY2 still works. The
        key that worked stays first, so later calls do not pay for the 401 again.
        """
        if self._token_provider is not None or len(self._keys) < 2:
            return False
        self._keys.append(self._keys.pop(0))
        return True
