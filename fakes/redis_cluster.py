"""A Redis Cluster of real `redis-server` processes on loopback ports: three masters, no
replicas, the 16,384 slots split evenly, optionally over TLS. What `redis-cli --cluster create
... --cluster-replicas 0` builds, done from Python (CLUSTER ADDSLOTSRANGE, CLUSTER MEET) so it
needs no redis-cli and takes well under a second."""

from __future__ import annotations

import time

from fakes.redis_server import RedisServer
from fakes.tls import TlsFiles

SLOTS = 16_384


class RedisClusterServers:
    """`masters` cluster-enabled servers joined into one cluster; `url` names the first (a client
    discovers the others from it)."""

    def __init__(self, masters: int = 3, *, tls: TlsFiles | None = None) -> None:
        self.nodes = [RedisServer(tls=tls, cluster=True) for _ in range(masters)]
        self.url = self.nodes[0].url

    def start(self) -> RedisClusterServers:
        for node in self.nodes:
            node.start()
        clients = [node.client() for node in self.nodes]
        try:
            share = SLOTS // len(self.nodes)
            for i, client in enumerate(clients):
                last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
                client.execute_command("CLUSTER ADDSLOTSRANGE", i * share, last)
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port, node.bus_port)
            self._wait_ok(clients)
        finally:
            for client in clients:
                client.close()
        return self

    @staticmethod
    def _wait_ok(clients: list) -> None:  # type: ignore[type-arg]
        """Every node sees every other and the whole slot range: cluster_state:ok everywhere."""
        deadline = time.monotonic() + 20
        while True:
            infos = [client.cluster("info") for client in clients]
            if all(
                info.get("cluster_state") == "ok"
                and int(info.get("cluster_known_nodes", 0)) == len(clients)
                for info in infos
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not become ok: {infos}")
            time.sleep(0.05)

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
