"""Deployment files validate with real validators; manifest and doctor behave against the fakes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.slack_app import BASE_SCOPES, LISTENER_SUBSCRIPTIONS, SCOPES_FOR_EVENT, SUBSCRIPTIONS
from fakes.azure import FakeAzure
from fakes.slack import FakeSlack
from tests.slackbot_harness import bot_env

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is missing: it is a dev dependency (pip install -e '.[dev]')")
        return found
    return str(path)


def run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_kubernetes_manifests_validate_against_schemas() -> None:
    """Every Kubernetes manifest validates against the Kubernetes OpenAPI schemas."""
    files = sorted(str(p) for p in (ROOT / "deploy/kubernetes").glob("*.yaml"))
    assert len(files) >= 5
    done = run(tool("kubernetes-validate"), "--strict", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_deployment_has_probes_replicas_and_drain() -> None:
    """≥2 replicas, /healthz liveness, /readyz readiness, grace period longer than the drain."""
    text = (ROOT / "deploy/kubernetes/deployment.yaml").read_text()
    assert "replicas: 2" in text and "path: /readyz" in text and "path: /healthz" in text
    grace = int(text.split("terminationGracePeriodSeconds:")[1].split()[0])
    drain = int(text.split('name: BOT_DRAIN_SECONDS\n              value: "')[1].split('"')[0])
    assert grace > drain


def test_compose_file_validates() -> None:
    """docker-compose.yml validates against the Compose specification schema."""
    done = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(ROOT / "deploy/docker-compose.yml"),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_passes_hadolint() -> None:
    """The Dockerfile passes hadolint with no findings."""
    done = run(tool("hadolint"), str(ROOT / "deploy/Dockerfile"))
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / "deploy/Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "/healthz" in text and "USER 10001" in text


def test_shell_scripts_pass_shellcheck() -> None:
    """The Azure deploy script and .ci/run pass shellcheck."""
    done = run(tool("shellcheck"), "deploy/azure/deploy.sh", ".ci/run")
    assert done.returncode == 0, done.stdout + done.stderr


def test_procfile_runs_http_mode_on_port() -> None:
    """Procfile's web process is the HTTP server on $PORT."""
    assert (ROOT / "Procfile").read_text().strip() == "web: python -m bot serve --port $PORT"


def manifest(*args: str, extra: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SLACK_", "BOT_"))}
    env.update({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com", "AZURE_OPENAI_KEY": "k"})
    env.update(extra or {})
    done = run(sys.executable, "-m", "bot", "manifest", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_manifest_http_matches_what_the_code_listens_to() -> None:
    """Events, scopes and command come from the code's listener tables and the settings; the
    assistant pane's view, events and `assistant:write` are in, and so are the Home tab, its
    event and interactivity (for the settings form and 👍/👎)."""
    doc = manifest("--url", "https://bot.example.com/", extra={"BOT_SLASH_COMMAND": "/ask-ai"})
    tables = (SUBSCRIPTIONS, LISTENER_SUBSCRIPTIONS)
    expected_events = {e for table in tables for events in table.values() for e in events}
    assert {
        "assistant_thread_started",
        "assistant_thread_context_changed",
        "app_home_opened",
    } <= expected_events
    settings = doc["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == expected_events
    assert settings["event_subscriptions"]["request_url"] == "https://bot.example.com/slack/events"
    assert settings["interactivity"]["request_url"] == "https://bot.example.com/slack/events"
    assert settings["socket_mode_enabled"] is False
    scopes = set(doc["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        *BASE_SCOPES,
        *(SCOPES_FOR_EVENT[e] for e in expected_events if e in SCOPES_FOR_EVENT),
    }
    assert "assistant:write" in scopes
    assert doc["features"]["assistant_view"]["assistant_description"]
    assert doc["features"]["app_home"]["home_tab_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    (command,) = doc["features"]["slash_commands"]
    assert command["command"] == "/ask-ai" and command["url"].endswith("/slack/events")


def test_manifest_socket_mode_has_no_urls() -> None:
    """The Socket Mode manifest enables it and carries no request URLs."""
    doc = manifest("--socket")
    assert doc["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in doc["settings"]["event_subscriptions"]
    assert "url" not in doc["features"]["slash_commands"][0]


def doctor(
    azure: FakeAzure, slack: FakeSlack, redis_url: str | None, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = bot_env(azure, slack, redis_url, **extra)
    return run(sys.executable, "-m", "bot", "doctor", env=env)


def test_doctor_all_green_against_the_fakes(
    azure: FakeAzure, slack: FakeSlack, redis_url: str
) -> None:
    """With working settings every check is ✓ and the exit code is 0."""
    done = doctor(azure, slack, redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✗" not in done.stdout
    for name in ("settings", "azure", "slack", "slack scopes", "redis", "redis eviction"):
        assert f"✓ {name}:" in done.stdout
    assert azure.completions[-1].body["max_tokens"] == 1


@pytest.mark.parametrize(
    ("extra", "check", "fix"),
    [
        ({"AZURE_OPENAI_DEPLOYMENT": "gpt-4-the-model"}, "azure", "not the model name"),
        ({"AZURE_OPENAI_KEY": "wrong-key"}, "azure", "AZURE_OPENAI_KEY"),
        ({"SLACK_BOT_TOKEN": "xoxb-revoked"}, "slack", "reinstall"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "redis", "check REDIS_URL"),
    ],
)
def test_doctor_reports_each_broken_setting(
    azure: FakeAzure, slack: FakeSlack, redis_url: str, extra: dict[str, str], check: str, fix: str
) -> None:
    """Each broken setting gives its ✗ line with the right fix, and exit code 1."""
    done = doctor(azure, slack, redis_url, **extra)
    assert done.returncode == 1
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith(f"✗ {check}:"))
    following = done.stdout.split(line, 1)[1].splitlines()[1]
    assert fix in following
    assert "wrong-key" not in done.stdout


def test_doctor_flags_missing_scope(
    azure: FakeAzure, slack: FakeSlack, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token without users:read and files:read gets ✗ slack scopes naming each, what it is for,
    and how to add it."""
    import fakes.slack as fake

    scopes = fake.SCOPES.replace(",users:read", "").replace(",files:read", "")
    monkeypatch.setattr(fake, "SCOPES", scopes)
    done = doctor(azure, slack, redis_url)
    assert done.returncode == 1
    assert (
        "✗ slack scopes: missing files:read (files and images posted in threads), "
        "users:read (people's names in prompts, and who is an admin)"
    ) in done.stdout
    assert "reinstall" in done.stdout


def test_doctor_flags_evicting_redis(
    azure: FakeAzure, slack: FakeSlack, redis_server, redis_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A Redis with maxmemory and volatile-lru is ✗: it would drop history silently."""
    import redis

    client = redis.Redis(port=redis_server.port)
    client.config_set("maxmemory", "100mb")
    client.config_set("maxmemory-policy", "volatile-lru")
    try:
        done = doctor(azure, slack, redis_url)
    finally:
        client.config_set("maxmemory", "0")
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
    assert "✗ redis eviction:" in done.stdout and "noeviction" in done.stdout
    assert done.returncode == 1


def test_doctor_warns_about_embedded_store(azure: FakeAzure, slack: FakeSlack) -> None:
    """Without REDIS_URL the embedded store is a warning, not a failure."""
    done = doctor(azure, slack, None)
    assert "⚠ redis:" in done.stdout and "REDIS_URL" in done.stdout
    assert done.returncode == 0
