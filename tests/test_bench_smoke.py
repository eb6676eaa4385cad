"""The load benchmark still runs (a few seconds, tiny load, no thresholds), so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import _need_redis_server


def test_bench_smoke_runs_both_targets(tmp_path: Path) -> None:
    """`python -m bench.run --smoke` measures the bot and the baseline and answers every turn."""
    _need_redis_server()
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    levels = json.loads(out.read_text())["levels"]
    assert {(lv["target"], lv["name"]) for lv in levels} == {
        ("bot", "rate"),
        ("bot", "inflight"),
        ("baseline", "rate"),
        ("bot", "followup"),
        ("baseline", "followup"),
        ("baseline", "inflight"),
        ("bot", "stream"),
    }
    for lv in levels:
        assert lv["figures"]["missing"] == 0 and lv["figures"]["errors"] == 0, lv
        assert lv["figures"]["duplicates"] == 0, lv
    assert "bot ÷ baseline" in done.stdout
