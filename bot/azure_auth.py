"""How the bot proves itself to Azure OpenAI: an `api-key` header, or an Entra ID bearer token.

Key auth sends `api-key: <key>` (not `Authorization: Bearer <key>`, which the deployment API does
not take). Entra ID auth sends `Authorization: Bearer <token>` for the scope ENTRA_SCOPE. Never
both. Keys and tokens never reach a log line or an exception message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import SecretStr

from bot import errors

TokenProvider = Callable[[], Awaitable[str]]
"""Returns an Entra ID access token for ENTRA_SCOPE; awaited before every request."""
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
"""The scope Azure OpenAI tokens must be issued for (openai-python's and Azure's own samples)."""


def static_token_provider(token: SecretStr) -> TokenProvider:
    """A provider for a fixed Entra token (`AZURE_OPENAI_AD_TOKEN`)."""

    async def provide() -> str:
        return token.get_secret_value()

    return provide


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
