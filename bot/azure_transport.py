"""The httpx transport the bot runs on: httpx-aiohttp's (aiohttp's connection pool under httpx's
types), plus a direct POST for the Azure client.

Through the plain transport, each Azure call builds an `httpx.Request` whose `Headers` aiohttp
then re-reads header by header (httpx normalises, encodes and re-decodes each one): in the
benchmark's profile with 1,000 turns in flight that conversion and the request object were about
a tenth of the bot's CPU, more than the HTTP exchange itself. `AzureTransport.post` takes the URL,
body and headers as the Azure client already has them (text, bytes, a dict), and answers with the
same `httpx.Response` (streamed, so a server-sent event stream is read as it arrives) and the
same httpx errors as `handle_async_request`, which stays for everything else (the files client,
and `httpx.MockTransport` in tests takes the transport's place).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream, map_aiohttp_exceptions


class AzureTransport(AiohttpTransport):
    """httpx-aiohttp's transport with a direct POST (see the module docstring)."""

    def __init__(self, *, max_connections: int, keepalive_seconds: float) -> None:
        super().__init__(
            limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=keepalive_seconds)
        )
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    async def post(
        self,
        url: str,
        content: bytes,
        headers: dict[str, str],
        timeouts: dict[str, Any],
        *,
        stream: bool = True,
    ) -> httpx.Response:
        """POST `content` and return the open (streamed) response; `timeouts` is httpx's timeout
        extension. Failures raise httpx's `TransportError` kinds, as `handle_async_request`
        does. Without `stream`, the body is read here, whole, and the connection given back at
        once: an answer that is one small JSON needs no stream to iterate and close."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = yarl.URL(url)
        with map_aiohttp_exceptions():
            response = await self.client.request(
                "POST",
                parsed,
                data=content,
                headers=headers,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, as for any httpx response
                timeout=self._timeout_of(timeouts),
            ).__aenter__()
            if not stream:
                try:
                    body = await response.read()
                finally:
                    response.release()
                return httpx.Response(
                    status_code=response.status, headers=response.raw_headers, content=body
                )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=AiohttpResponseStream(response),
        )

    def _timeout_of(self, timeouts: dict[str, Any]) -> aiohttp.ClientTimeout:
        """httpx's timeout extension as aiohttp's, the way httpx-aiohttp maps it; made once."""
        key = (timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool"))
        made = self._timeouts.get(key)
        if made is None:
            made = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
        return made
