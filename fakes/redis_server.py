"""A real `redis-server` on a free loopback port, for the tests and the benchmark."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import redis

from fakes.server_thread import free_port


class RedisServer:
    """A `redis-server` process on a free loopback port, with no persistence."""

    def __init__(self, *extra_args: str) -> None:
        self.extra_args = extra_args
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart after `stop`) the server; its working directory is new each time."""
        self._dir = tempfile.mkdtemp(prefix="bot-redis-")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--protected-mode",
                "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def flush(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()
