"""Connecting to the Redis that `REDIS_URL` names: one server or a Redis Cluster, plain or TLS.

A cluster is recognised from the server itself (``INFO cluster`` says ``cluster_enabled:1``),
asked once at start-up, or forced either way with ``REDIS_CLUSTER``. Azure Cache for Redis with
the OSS cluster policy, and Azure Managed Redis, are such clusters; they speak TLS
(``rediss://``, port 6380 or 10000), verified against the system's trusted CAs or against
``REDIS_CA_FILE`` for a private CA.

The bot needs nothing a cluster refuses: every key of a thread carries the thread's hash tag, so
each Lua script's KEYS share one slot, the one MULTI (channel settings) touches one key, and
pipelines of keys in several slots are split by node by redis-py's cluster pipeline
(`bot.store.keys` has the schema; ``tests/test_cluster.py`` runs the bot on three masters).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry as SyncRetry

log = logging.getLogger(__name__)

REDIS_POOL_SIZE = 64
"""redis-py's default async pool raises MaxConnectionsError past its limit; a blocking pool of a
sensible size queues instead (the benchmark runs 1,000 turns in flight over it)."""

CLUSTER_NODE_POOL_SIZE = 256
"""Connections per cluster node. redis-py's cluster pool does not queue (it raises
MaxConnectionsError, a `StoreUnavailable` for the turn), so it gets room for bursts; a command
holds its connection only for its round trip."""

DETECT_TIMEOUT = 2.0


def _options(ca_file: str | None, credential_provider: object | None) -> dict[str, Any]:
    """Connection options shared by every client: the CA file (TLS only) and Entra ID auth."""
    options: dict[str, Any] = {}
    if ca_file is not None:
        options["ssl_ca_certs"] = ca_file
    if credential_provider is not None:
        options["credential_provider"] = credential_provider
    return options


def detect_cluster(
    url: str, *, ca_file: str | None = None, credential_provider: object | None = None
) -> bool | None:
    """Whether the server at `url` is a cluster node; None when it cannot be asked (down,
    unreachable, INFO refused)."""
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=DETECT_TIMEOUT,
        socket_timeout=DETECT_TIMEOUT,
        retry=SyncRetry(NoBackoff(), 0),
        **_options(ca_file, credential_provider),
    )
    try:
        info = client.info("cluster")
    except (redis.RedisError, OSError) as exc:
        log.warning("could not ask Redis whether it is a cluster (%s)", type(exc).__name__)
        return None
    finally:
        client.close()
    return str(info.get("cluster_enabled", "0")) == "1"


def open_redis(
    url: str,
    *,
    cluster: bool,
    ca_file: str | None = None,
    credential_provider: object | None = None,
) -> Redis:
    """The async client for `url`; nothing connects until the first command.

    With `cluster`, a `RedisCluster`, typed as `Redis` for the modules that receive it: it
    offers the same keyed commands, EVAL and pipelines (a MULTI too, on one slot), and that the
    bot uses nothing else is what the cluster tests prove.
    """
    # redis-py's default retries with up to 10 s backoff; when Redis is down the user and
    # /readyz should hear about it in well under Slack's 3 seconds instead.
    backoff = ExponentialBackoff(cap=0.2, base=0.05)
    common: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 15,
        "decode_responses": True,
        **_options(ca_file, credential_provider),
    }
    if cluster:
        # The cluster's own retry also covers MOVED/ASK and reloading the slot map.
        client = RedisCluster.from_url(
            url, max_connections=CLUSTER_NODE_POOL_SIZE, retry=Retry(backoff, 2), **common
        )
        return cast(Redis, client)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=REDIS_POOL_SIZE, timeout=5, retry=Retry(backoff, 1), **common
    )
    return Redis(connection_pool=pool)


def connect(
    url: str,
    *,
    cluster: bool | None = None,
    ca_file: str | None = None,
    credential_provider: object | None = None,
) -> Redis:
    """`open_redis`, asking the server whether it is a cluster when `cluster` is None. A server
    that cannot be asked is taken for a single node, with a warning naming REDIS_CLUSTER."""
    if cluster is None:
        found = detect_cluster(url, ca_file=ca_file, credential_provider=credential_provider)
        if found is None:
            log.warning(
                "assuming a single Redis server; if it is a cluster (e.g. Azure Cache for Redis "
                "with the OSS cluster policy), set REDIS_CLUSTER=true"
            )
        cluster = bool(found)
    if cluster:
        log.info("Redis Cluster mode")
    return open_redis(
        url, cluster=cluster, ca_file=ca_file, credential_provider=credential_provider
    )


async def info_per_node(client: Redis, section: str) -> list[dict[str, Any]]:
    """INFO `section` of every master: one reply for a single server."""
    if isinstance(client, RedisCluster):
        replies = await client.info(section, target_nodes=RedisCluster.PRIMARIES)
        return list(replies.values())
    return [await client.info(section)]


def describe(client: Redis, url: str) -> str:
    """ "cluster" or "single server", and "TLS" for rediss:// (for doctor and the start log)."""
    kind = "cluster" if isinstance(client, RedisCluster) else "single server"
    return kind + (", TLS" if url.startswith("rediss://") else "")
