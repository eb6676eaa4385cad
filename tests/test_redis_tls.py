"""Redis over TLS (`rediss://` and REDIS_CA_FILE), as Azure Cache for Redis serves it on port 6380:
redis-server with TLS only, certificates made by the test, a single server and a cluster."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings
from fakes.azure import FakeAzure
from fakes.redis_cluster import RedisClusterServers
from fakes.redis_server import RedisServer
from fakes.slack import FakeSlack, message_text
from fakes.slack_requests import mention
from fakes.tls import TlsFiles, make_tls_files
from tests.conftest import _need_redis_server
from tests.slackbot_harness import BotProcess, bot_env, final_thread


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def tls_server(tls: TlsFiles) -> Iterator[RedisServer]:
    _need_redis_server()
    server = RedisServer(tls=tls)
    server.start()
    yield server
    server.stop()


def doctor(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "doctor"], env=env, capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


def test_tls_bot_answers_over_rediss_with_ca_file(
    tls_server: RedisServer, tls: TlsFiles, azure: FakeAzure, slack: FakeSlack
) -> None:
    """rediss:// with the CA file: ready, a mention answered and stored; doctor says TLS."""
    assert tls_server.url.startswith("rediss://")
    env = bot_env(azure, slack, tls_server.url, REDIS_CA_FILE=tls.ca_cert)
    bot = BotProcess(env).wait_ready("/readyz")
    try:
        event = mention("over tls?", channel="CTLS1")
        bot.send_event(event)
        (reply,) = final_thread(slack, "CTLS1", event["ts"])
        assert message_text(reply) == "Answer to: Pat: over tls?"
    finally:
        bot.stop()
    client = tls_server.client()
    try:
        assert client.keys("bot:v1:msgs:*")
    finally:
        client.close()
    assert "✓ redis: reachable (single server, TLS)" in doctor(env)


def test_tls_server_signed_by_another_ca_is_refused(
    tls_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
    azure: FakeAzure,
    slack: FakeSlack,
) -> None:
    """A CA file that did not sign the server's certificate: not ready, and doctor says so."""
    other = make_tls_files(str(tmp_path_factory.mktemp("other")), ca_name="someone else")
    env = bot_env(azure, slack, tls_server.url, REDIS_CA_FILE=other.ca_cert, REDIS_CLUSTER="false")
    bot = BotProcess(env).wait_ready()
    try:
        assert bot.http.get("/readyz").status_code == 503
    finally:
        bot.stop()
    assert "✗ redis: cannot connect" in doctor(env)


def test_tls_plain_redis_url_to_a_tls_port_is_not_ready(
    tls_server: RedisServer, azure: FakeAzure, slack: FakeSlack
) -> None:
    """redis:// (no TLS) to a TLS-only port fails /readyz instead of hanging."""
    url = tls_server.url.replace("rediss://", "redis://")
    bot = BotProcess(bot_env(azure, slack, url, REDIS_CLUSTER="false")).wait_ready()
    try:
        assert bot.http.get("/readyz").status_code == 503
    finally:
        bot.stop()


def test_tls_cluster_is_detected_and_answers(
    tls: TlsFiles, azure: FakeAzure, slack: FakeSlack
) -> None:
    """Azure's shape: a cluster that speaks TLS only; detected, used, and named by doctor."""
    _need_redis_server()
    cluster = RedisClusterServers(3, tls=tls).start()
    try:
        env = bot_env(azure, slack, cluster.url, REDIS_CA_FILE=tls.ca_cert)
        bot = BotProcess(env).wait_ready("/readyz")
        try:
            event = mention("cluster over tls?", channel="CTLS2")
            bot.send_event(event)
            (reply,) = final_thread(slack, "CTLS2", event["ts"])
            assert message_text(reply) == "Answer to: Pat: cluster over tls?"
        finally:
            bot.stop()
        assert "✓ redis: reachable (cluster of 3 masters, TLS)" in doctor(env)
    finally:
        cluster.stop()


def test_tls_settings_check_ca_file_and_scheme(tls: TlsFiles) -> None:
    """REDIS_CA_FILE must exist and needs rediss://; REDIS_URL must be redis:// or rediss://."""
    base = {"azure_openai_endpoint": "https://res.openai.azure.com", "azure_openai_key": "k"}
    ok = load_settings(
        _env_file=None, **base, redis_url="rediss://127.0.0.1:6380/0", redis_ca_file=tls.ca_cert
    )
    assert ok.redis_ca_file == tls.ca_cert and ok.redis_cluster is None
    with pytest.raises(ConfigError, match=r"REDIS_CA_FILE: no such file '/no/ca\.pem'"):
        load_settings(
            _env_file=None, **base, redis_url="rediss://h:6380/0", redis_ca_file="/no/ca.pem"
        )
    with pytest.raises(ConfigError, match="REDIS_CA_FILE is only used with TLS"):
        load_settings(_env_file=None, **base, redis_url="redis://h/0", redis_ca_file=tls.ca_cert)
    with pytest.raises(ConfigError, match="REDIS_URL must start with redis:// or rediss://"):
        load_settings(_env_file=None, **base, redis_url="h.redis.cache.windows.net:6380")
