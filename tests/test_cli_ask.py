"""`python -m bot ask` end to end in a subprocess against the fake Azure server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.azure import FakeAzure, Fault

ROOT = Path(__file__).resolve().parent.parent


def this_checkout(env: dict[str, str]) -> dict[str, str]:
    """`env` with this checkout first on the import path, so the subprocess runs this code even
    where the installed package points at another working tree."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}


def run_ask(
    azure: FakeAzure, *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "SLACK_", "BOT_", "REDIS_"))
    }
    base.update({"AZURE_OPENAI_ENDPOINT": azure.endpoint, "AZURE_OPENAI_KEY": azure.key})
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", "ask", *args],
        capture_output=True,
        text=True,
        env=this_checkout(base),
        timeout=60,
        cwd=cwd,
    )


def test_ask_prints_answer_and_usage_line(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The quickstart as a command: the answer, then prompt · completion · total · deployment."""
    out = run_ask(azure, "What is Azure?", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "Answer to: What is Azure?"
    assert lines[-1].startswith("prompt ")
    assert "· completion " in lines[-1] and "tokens · gpt-35-turbo" in lines[-1]
    assert azure.key not in out.stdout + out.stderr


def test_ask_json_prints_raw_body(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--json prints the response body as Azure sent it."""
    import json

    out = run_ask(azure, "hi", "--json", "--system", "Talk like a pirate.", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["object"] == "chat.completion" and body["usage"]["total_tokens"] > 0
    assert azure.completions[-1].body["messages"][0] == {
        "role": "system",
        "content": "Talk like a pirate.",
    }


def test_ask_thread_continues_in_redis(azure: FakeAzure, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A second `ask --thread t` sends the first question and answer to Azure."""
    env = {"REDIS_URL": redis_url}
    assert run_ask(azure, "first", "--thread", "t", env=env, cwd=str(tmp_path)).returncode == 0
    out = run_ask(azure, "second", "--thread", "t", env=env, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    sent = [m["content"] for m in azure.completions[-1].body["messages"]]
    assert sent[1:] == ["first", "Answer to: first", "second"]


def test_ask_stream_prints_text_and_usage(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--stream prints the answer as it arrives and still ends with the usage line."""
    out = run_ask(azure, "stream me", "--stream", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "Answer to: stream me"
    assert out.stdout.splitlines()[-1].startswith("prompt ")


@pytest.mark.parametrize(
    ("env", "fault", "words"),
    [
        ({"AZURE_OPENAI_KEY": "wrong"}, None, "rejected the bot's credentials"),
        ({"AZURE_OPENAI_DEPLOYMENT": "gpt-4"}, None, "not the model name"),
        ({"AZURE_OPENAI_API_VERSION": "2031-01-01"}, None, "api-version"),
        ({}, Fault("content_filter"), "content filter blocked your message (hate)"),
        ({"AZURE_OPENAI_MAX_RETRIES": "0"}, Fault("server_error"), "unavailable"),
    ],
)
def test_ask_api_errors_exit_1_with_message(
    azure: FakeAzure,
    tmp_path,
    env: dict[str, str],  # type: ignore[no-untyped-def]
    fault: Fault | None,
    words: str,
) -> None:
    """Each Azure error prints its specific message and exits 1, without a traceback."""
    if fault:
        azure.push(fault)
    out = run_ask(azure, "hi", env=env, cwd=str(tmp_path))
    assert out.returncode == 1
    assert words in out.stderr
    assert "Traceback" not in out.stderr
    assert "wrong" not in out.stderr.replace("went wrong", "")


def test_ask_config_error_exits_2_with_fix(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A missing key exits 2 and says where to find it."""
    out = run_ask(azure, "hi", env={"AZURE_OPENAI_KEY": ""}, cwd=str(tmp_path))
    assert out.returncode == 2
    assert "AZURE_OPENAI_KEY" in out.stderr and "Keys and Endpoint" in out.stderr


def test_ask_reads_dotenv(azure: FakeAzure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A .env file in the working directory is read."""
    (tmp_path / ".env").write_text("AZURE_OPENAI_DEPLOYMENT=gpt-4o\n")
    out = run_ask(azure, "hi", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("gpt-4o")
