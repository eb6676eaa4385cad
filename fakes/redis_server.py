"""A real `redis-server` on a free loopback port, for the tests and the benchmark; optionally with
TLS only (no plain port) or as a Redis Cluster node (`fakes.redis_cluster` joins three)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import redis

from fakes.server_thread import free_port
from fakes.tls import TlsFiles


class RedisServer:
    """A `redis-server` process on a free loopback port, with no persistence. With `tls`, the
    port speaks TLS only (the server's certificate is `tls.cert`; clients need no certificate of
    their own) and `url` is `rediss://`."""

    def __init__(
        self, *extra_args: str, tls: TlsFiles | None = None, cluster: bool = False
    ) -> None:
        self.extra_args = extra_args
        self.tls = tls
        self.cluster = cluster
        self.port = free_port()
        self.bus_port = free_port() if cluster else 0
        scheme = "rediss" if tls else "redis"
        self.url = f"{scheme}://127.0.0.1:{self.port}/0"
        self._dir = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        if self.tls is None:
            args = ["--port", str(self.port)]
        else:
            args = [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                self.tls.cert,
                "--tls-key-file",
                self.tls.key,
                "--tls-ca-cert-file",
                self.tls.ca_cert,
                "--tls-auth-clients",
                "no",
            ]
            if self.cluster:
                args += ["--tls-cluster", "yes"]
        if self.cluster:
            # The bus port defaults to port + 10,000, which may be taken or past 65,535.
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            args += ["--cluster-port", str(self.bus_port)]
        return args

    def client(self) -> redis.Redis:
        """A synchronous client of this server (trusting its CA when it speaks TLS)."""
        if self.tls is None:
            return redis.Redis(port=self.port)
        return redis.Redis(port=self.port, ssl=True, ssl_ca_certs=self.tls.ca_cert)

    def start(self) -> None:
        """Start (or restart after `stop`) the server; its working directory is new each time."""
        self._dir = tempfile.mkdtemp(prefix="bot-redis-")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                *self._args(),
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
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
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
        client = self.client()
        client.flushall()
        client.close()
