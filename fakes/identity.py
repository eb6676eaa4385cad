"""A fake managed-identity token endpoint: the App Service protocol azure-identity speaks.

With `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` in the environment (App Service, Container Apps),
azure-identity's `ManagedIdentityCredential` (and so `DefaultAzureCredential`) asks
`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<scope without /.default>` with the
header `X-IDENTITY-HEADER: <IDENTITY_HEADER>`, and reads `access_token`, `expires_on` (epoch
seconds, a string) and `resource` from the JSON answer (azure/identity/_credentials/
app_service.py and _internal/managed_identity_client.py). `env()` gives those two variables.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from aiohttp import web

from fakes.server_thread import ServerThread

RESOURCE = "https://cognitiveservices.azure.com"


@dataclass(frozen=True)
class TokenRequest:
    query: dict[str, str]
    headers: dict[str, str]


class FakeIdentity:
    """Start with `FakeIdentity().start()`; put `env()` into the bot's environment."""

    def __init__(
        self,
        *,
        token: str = "fake-entra-token",
        secret: str = "fake-identity-header",
        expires_in: int = 3600,
    ) -> None:
        self.token = token
        self.secret = secret
        self.expires_in = expires_in
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_get("/msi/token", self._token)
        self._server = ServerThread(app)
        self.url = f"{self._server.url}/msi/token"

    def start(self) -> FakeIdentity:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def env(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    async def _token(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests.append(TokenRequest(dict(request.query), dict(request.headers)))
        if request.headers.get("X-IDENTITY-HEADER") != self.secret:
            return web.json_response(
                {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."},
                status=401,
            )
        resource = request.query.get("resource")
        if request.query.get("api-version") != "2019-08-01" or resource != RESOURCE:
            return web.json_response(
                {"error": "invalid_request", "error_description": f"unknown resource {resource}"},
                status=400,
            )
        return web.json_response(
            {
                "access_token": self.token,
                "expires_on": str(int(time.time()) + self.expires_in),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": "00000000-0000-0000-0000-000000000001",
            }
        )
