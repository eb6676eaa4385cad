"""Checks of `bot.settings` that say where to find or how to fix a value: the Redis connection
settings."""

from __future__ import annotations

import os


def check_redis_url(url: str) -> None:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "REDIS_URL must start with redis:// or rediss:// (TLS), e.g. rediss://:ACCESS-KEY@"
            "NAME.redis.cache.windows.net:6380/0 (Azure portal: your cache > Settings > "
            "Authentication > Access keys); leave it empty for the embedded store"
        )


def check_ca_file(path: str, url: str | None) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"REDIS_CA_FILE: no such file {path!r} (a PEM file of CA certificates)")
    if url is None or not url.startswith("rediss://"):
        raise ValueError("REDIS_CA_FILE is only used with TLS: make REDIS_URL rediss://...")
