"""A TCP proxy that can hold back the server's replies, to freeze a client mid-request.

Put between a bot process and Redis: with `hold()` the bot's commands still reach Redis and run,
but their replies never come back, so the bot is stuck exactly after Redis acted and before it
could answer Slack — the moment a replica dies "before its ack".
"""

from __future__ import annotations

import asyncio
import threading

from fakes.server_thread import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`, both ways, until `hold()`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.forwarded = 0
        """Bytes sent upstream (client → server) so far."""
        self._held = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def hold(self) -> None:
        """From now on, replies from the server are kept back (requests still go through)."""
        self._held.set()

    def close(self) -> None:
        """Close every connection and the listener, and stop the proxy's thread."""

        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in self._writers:
                writer.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def upstream() -> None:
            while data := await reader.read(65536):
                self.forwarded += len(data)
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if self._held.is_set():
                    continue  # the reply is dropped: the client waits for it forever
                writer.write(data)
                await writer.drain()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            up_writer.close()
