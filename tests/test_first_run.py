"""First run: `cp .env.example .env` then `make run` (`python -m bot`). A configuration that is
missing or wrong lists every problem at once, each with where to find the value; the example
with its four values filled in starts the bot on the embedded store, no Redis needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.errors import ConfigError
from bot.settings import load_settings
from fakes.azure import FakeAzure
from fakes.server_thread import free_port
from fakes.slack import FakeSlack
from fakes.slack_requests import SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any of the bot's variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "SLACK_", "BOT_", "REDIS_"))
    }
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding `.env`, copied from `.env.example` as the README says."""
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


def test_first_run_example_lists_all_four_problems_at_once(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The untouched example: endpoint, key, bot token, signing secret, in one message."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "SLACK_", "BOT_", "REDIS_")):
            monkeypatch.delenv(name)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=str(workdir / ".env"), slack="auto")
    text = str(info.value)
    assert text.startswith("4 configuration problems:")
    for name, where in [
        ("AZURE_OPENAI_ENDPOINT", "Keys and Endpoint"),
        ("AZURE_OPENAI_KEY", "KEY1 or KEY2"),
        ("SLACK_BOT_TOKEN", "OAuth & Permissions"),
        ("SLACK_SIGNING_SECRET", "App Credentials"),
    ]:
        (line,) = [line for line in text.splitlines() if line.strip().startswith(name + " ")]
        assert where in line


def test_first_run_make_run_exits_2_with_the_list_not_a_traceback(workdir: Path) -> None:
    """`python -m bot` (what `make run` runs) on the example: exit 2, the list, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: 4 configuration problems:" in done.stderr
    assert "in .env (see .env.example)" in done.stderr


def test_first_run_type_errors_and_mode_requirements_are_listed_together() -> None:
    """Malformed values, a missing key and Socket Mode's missing token come in one message."""
    with pytest.raises(ConfigError) as info:
        load_settings(
            _env_file=None,
            slack="socket",
            azure_openai_endpoint="https://res.openai.azure.com/",
            bot_temperature="hot",
            bot_max_tokens="-1",
            redis_url="localhost:6379",
            slack_bot_token="xoxb-1",
        )
    lines = str(info.value).splitlines()
    assert lines[0] == "5 configuration problems:"
    named = sorted(re.match(r"\s+([A-Z_]+)", line).group(1) for line in lines[1:-1])  # type: ignore[union-attr]
    assert named == [
        "AZURE_OPENAI_KEY",
        "BOT_MAX_TOKENS",
        "BOT_TEMPERATURE",
        "REDIS_URL",
        "SLACK_APP_TOKEN",
    ]


def test_first_run_tokens_of_the_other_mode_are_not_required() -> None:
    """`ask` needs no Slack token; HTTP mode no app token; Socket Mode no signing secret."""
    base = {"azure_openai_endpoint": "https://res.openai.azure.com", "azure_openai_key": "k"}
    assert load_settings(_env_file=None, **base).slack_bot_token is None
    load_settings(
        _env_file=None, slack="http", slack_bot_token="xoxb-1", slack_signing_secret="s", **base
    )
    load_settings(
        _env_file=None, slack="socket", slack_bot_token="xoxb-1", slack_app_token="xapp-1", **base
    )
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is not set"):
        load_settings(_env_file=None, slack="auto", slack_bot_token="xoxb-1", **base)


def test_first_run_example_filled_in_serves_on_the_embedded_store(
    workdir: Path, azure: FakeAzure, slack: FakeSlack
) -> None:
    """The example with its four values filled in starts with no Redis: ready, with the warning."""
    env_file = workdir / ".env"
    text = env_file.read_text()
    for name, value in [
        ("AZURE_OPENAI_ENDPOINT", azure.endpoint),
        ("AZURE_OPENAI_KEY", azure.key),
        ("SLACK_BOT_TOKEN", slack.token),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
        ("SLACK_API_URL", slack.api_url),
    ]:
        text = re.sub(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
    env_file.write_text(text)
    port = free_port()
    log = workdir / "bot.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    assert "REDIS_URL is not set: using an embedded in-memory store" in log.read_text()
