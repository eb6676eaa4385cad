"""Load benchmark: the real bot and a minimal baseline under the same signed Slack load.

    python -m bench.run                  # the full run (about 2.5 minutes): bench/README.md
    python -m bench.run --levels rate    # only the 100/s level (also: --rounds, --seconds)
    python -m bench.run --smoke          # a few seconds, no thresholds (the test suite runs it)

It starts a real redis-server, the fakes (`bench.fakes`: fake Azure with a configurable latency,
fake Slack, a Redis proxy counting round trips), the bot (`python -m bot serve`) and the baseline
(`bench.baseline`), and sends signed `app_mention` events in distinct threads:

* rate:     a fixed rate for some seconds (100/s for 20 s: about 200 turns in flight at 2 s),
            in rounds alternating bot and baseline so both see the same machine; each round
            gives one CPU ratio and the report shows their median
* followup: the same again, each mention now a reply in a thread the rate level started (its
            history is read, and the reply queues in its thread: the bot's most expensive turn)
* inflight: bursts of N turns sent as fast as the server acks them (1,000 in flight), in pairs
            alternating which target goes first (bot, baseline, baseline, bot, bot,
            baseline); each pair gives one throughput ratio and the report shows their median
* stream:   the bot with streaming on, for the time to first visible text

and reports ack latency, bot overhead per turn (reply at Slack − event sent − Azure's time),
time to first visible text, throughput, errors, duplicates and missing answers, CPU seconds per
turn, peak RSS, and Redis commands and round trips per turn. Medians and percentiles only: the
machine is shared, so the baseline measured in the same run is the yardstick, not absolute time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis

from fakes.redis_server import RedisServer
from fakes.server_thread import free_port
from fakes.slack_requests import SIGNING_SECRET, envelope, mention, sign

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the bot's worker processes with WEB_CONCURRENCY > 1)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += process_tree(int(child))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and every process below it."""
    total = 0.0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of `pid` and its descendants, summed (an upper bound)."""
    total = 0.0
    for each in process_tree(pid):
        try:
            lines = Path(f"/proc/{each}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:"))
    return total or float("nan")


class Fakes:
    """The `bench.fakes` subprocess, driven over its stdin."""

    def __init__(self, redis_port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fakes", "--redis-port", str(redis_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


@dataclass
class Sent:
    token: int
    ts: str
    sent: float
    ack_ms: float = float("nan")
    status: int = 0
    thread_ts: str | None = None
    """Set for a reply in an existing thread; None for a mention that starts one."""

    @property
    def thread(self) -> str:
        return self.thread_ts or self.ts


@dataclass
class Level:
    name: str
    target: str
    turns: int
    figures: dict[str, float] = field(default_factory=dict)
    cpu_ms_rounds: list[float] = field(default_factory=list)
    """CPU ms per turn in each interleaved round (rate level only)."""
    cpu_ratio_rounds: list[float] = field(default_factory=list)
    """Bot ÷ baseline CPU per turn in each interleaved round (rate level only)."""
    throughput_ratio_rounds: list[float] = field(default_factory=list)
    """Bot ÷ baseline throughput in each pair of bursts (inflight level only)."""


class Target:
    """The bot or the baseline as a server subprocess."""

    def __init__(
        self, kind: str, fakes: Fakes, redis_url: str, stream: bool, workers: int = 1
    ) -> None:
        self.kind = kind
        self.port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SLACK_", "BOT_"))
        }
        env.update(
            {
                "AZURE_OPENAI_ENDPOINT": fakes.info["azure"],
                "AZURE_OPENAI_KEY": fakes.info["azure_key"],
                "SLACK_API_URL": fakes.info["slack"],
                "SLACK_BOT_TOKEN": fakes.info["slack_token"],
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "REDIS_URL": redis_url,
                "PORT": str(self.port),
                "BOT_STREAM": "true" if stream else "false",
                "BOT_LOG_LEVEL": "INFO",
                "WEB_CONCURRENCY": str(workers),
            }
        )
        cmd = (
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            if kind == "bot"
            else [sys.executable, "-m", "bench.baseline"]
        )
        self.log = tempfile.NamedTemporaryFile(
            "w", prefix=f"bench-{kind}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited; see {self.log.name}")
            try:
                async with session.get(self.url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Runner:
    def __init__(self, fakes: Fakes, redis_port: int, latency: float) -> None:
        self.fakes = fakes
        self.redis = redis.Redis(port=redis_port)
        self.latency = latency
        self.next_token = 0

    def redis_calls(self) -> int:
        stats = self.redis.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))

    async def send(self, session: aiohttp.ClientSession, url: str, item: Sent) -> None:
        event = mention(
            f"bench-{item.token} what is the answer?",
            channel="CBENCH",
            ts=item.ts,
            thread_ts=item.thread_ts,
        )
        body = json.dumps(envelope(event))
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": sign(body, now),
        }
        start = time.monotonic()
        item.sent = start
        try:
            async with session.post(url + "/slack/events", data=body, headers=headers) as r:
                await r.read()
                item.status = r.status
        except aiohttp.ClientError:
            item.status = -1
        item.ack_ms = (time.monotonic() - start) * 1000

    def new_items(self, n: int) -> list[Sent]:
        items = []
        for _ in range(n):
            self.next_token += 1
            t = self.next_token
            items.append(Sent(t, f"{1800000000 + t}.{t % 1000000:06d}", 0.0))
        return items

    async def batch(
        self,
        target: Target,
        session: aiohttp.ClientSession,
        *,
        rate: float | None,
        count: int,
        stream: bool,
        threads: list[str] | None = None,
    ) -> Batch:
        """Send `count` mentions to `target` (at `rate`/s, or as a burst) and wait for answers;
        with `threads`, each mention is a reply in one of those existing threads."""
        self.fakes.ask("reset")
        self.fakes.ask(f"config {self.latency} {0.02 if stream else 0.0}")
        cpu0, calls0 = cpu_seconds(target.proc.pid), self.redis_calls()
        fakes_cpu0, wall0 = cpu_seconds(self.fakes.proc.pid), time.monotonic()
        rt0 = self.fakes.ask("results")["proxy"]["round_trips"]
        items = self.new_items(count)
        for item, thread in zip(items, threads or [], strict=False):
            item.thread_ts = thread
        started = time.monotonic()
        if rate:
            tasks = []
            for i, item in enumerate(items):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(self.send(session, target.url, item)))
            await asyncio.gather(*tasks)
        else:
            limit = asyncio.Semaphore(200)

            async def bounded(item: Sent) -> None:
                async with limit:
                    await self.send(session, target.url, item)

            await asyncio.gather(*(bounded(i) for i in items))
        sent_done = time.monotonic()
        by_ts = {i.thread: i for i in items}
        deadline = time.monotonic() + max(60.0, count / 20)
        # Poll the cheap count while turns still run; the full results (a big JSON dump that
        # holds the fakes' GIL) only once they are done, so it cannot delay a measured turn.
        while True:
            if self.fakes.ask("finished")["threads"] >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)  # let late duplicates, if any, arrive
        res = self.fakes.ask("results")
        finals = [m["final"] for m in res["slack"] if m["thread_ts"] in by_ts and m["final"]]
        finished = max(finals, default=sent_done)
        out = Batch(
            count=count,
            answering_seconds=finished - min(finals, default=started),
            send_seconds=sent_done - started,
        )
        out.cpu = cpu_seconds(target.proc.pid) - cpu0
        out.fakes_load = (cpu_seconds(self.fakes.proc.pid) - fakes_cpu0) / (
            time.monotonic() - wall0
        )
        out.redis_calls = self.redis_calls() - calls0 - 1  # the INFO above
        out.round_trips = res["proxy"]["round_trips"] - rt0
        out.rss = peak_rss_mb(target.proc.pid)
        azure = {c["token"]: c for c in res["azure"]}
        per_thread: dict[str, list[dict[str, Any]]] = {}
        for m in res["slack"]:
            if m["thread_ts"] in by_ts:
                per_thread.setdefault(m["thread_ts"], []).append(m)
        for ts, item in by_ts.items():
            msgs = [m for m in per_thread.get(ts, []) if m["final"]]
            if not msgs:
                out.missing += 1
                continue
            if len(msgs) > 1 or len(per_thread[ts]) > 1:
                out.duplicates += 1
            call = azure.get(item.token)
            final = min(m["final"] for m in msgs)
            if call:
                out.overhead.append(
                    (final - item.sent - (call["finished"] - call["started"])) * 1000
                )
                out.before_azure.append((call["started"] - item.sent) * 1000)
                out.after_azure.append((final - call["finished"]) * 1000)
                if stream and msgs[0]["first_text"] is not None:
                    out.ttft.append((msgs[0]["first_text"] - item.sent) * 1000)
                    out.ttft_excess.append((msgs[0]["first_text"] - call["first_token"]) * 1000)
        out.acks = [i.ack_ms for i in items]
        out.errors = sum(1 for i in items if i.status != 200)
        out.max_in_flight = max_in_flight(items, per_thread)
        out.threads = [i.thread for i in items]
        return out


@dataclass
class Batch:
    """Raw measurements of one batch of turns against one target."""

    count: int
    answering_seconds: float
    """From the first answer to the last."""
    send_seconds: float
    cpu: float = 0.0
    fakes_load: float = 0.0
    redis_calls: int = 0
    round_trips: int = 0
    rss: float = 0.0
    errors: int = 0
    duplicates: int = 0
    missing: int = 0
    max_in_flight: int = 0
    acks: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    before_azure: list[float] = field(default_factory=list)
    """Event sent → Azure request received, per turn (ms)."""
    after_azure: list[float] = field(default_factory=list)
    """Azure's answer finished → final reply at Slack, per turn (ms)."""
    ttft: list[float] = field(default_factory=list)
    ttft_excess: list[float] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)

    @property
    def cpu_ms_per_turn(self) -> float:
        return self.cpu / self.count * 1000


def level_of(name: str, target: str, batches: list[Batch], stream: bool = False) -> Level:
    """A level's figures over all its batches' turns (percentiles over the pooled samples)."""
    count = sum(b.count for b in batches)
    acks = [x for b in batches for x in b.acks]
    overhead = [x for b in batches for x in b.overhead]
    level = Level(name, target, count)
    level.figures = {
        "ack_p50_ms": pct(acks, 50),
        "ack_p95_ms": pct(acks, 95),
        "ack_p99_ms": pct(acks, 99),
        "overhead_p50_ms": pct(overhead, 50),
        "overhead_p95_ms": pct(overhead, 95),
        "overhead_p99_ms": pct(overhead, 99),
        # the overhead's two parts: until Azure is asked, and after Azure has answered
        "before_azure_p50_ms": pct([x for b in batches for x in b.before_azure], 50),
        "after_azure_p50_ms": pct([x for b in batches for x in b.after_azure], 50),
        # answers per second while answers arrive (Azure's latency before the first is not in it)
        "throughput_turns_s": count / max(1e-9, sum(b.answering_seconds for b in batches)),
        "send_rate_s": count / max(1e-9, sum(b.send_seconds for b in batches)),
        "errors": float(sum(b.errors for b in batches)),
        "duplicates": float(sum(b.duplicates for b in batches)),
        "missing": float(sum(b.missing for b in batches)),
        "cpu_ms_per_turn": sum(b.cpu for b in batches) / count * 1000,
        "peak_rss_mb": max(b.rss for b in batches),
        "redis_cmds_per_turn": sum(b.redis_calls for b in batches) / count,
        "redis_round_trips_per_turn": sum(b.round_trips for b in batches) / count,
        "max_in_flight": float(max(b.max_in_flight for b in batches)),
        "fakes_cpu_cores": max(b.fakes_load for b in batches),
    }
    if stream:
        ttft = [x for b in batches for x in b.ttft]
        excess = [x for b in batches for x in b.ttft_excess]
        level.figures.update(
            {
                "ttft_p50_ms": pct(ttft, 50),
                "ttft_p95_ms": pct(ttft, 95),
                "ttft_p99_ms": pct(ttft, 99),
                "ttft_after_azure_first_token_p50_ms": pct(excess, 50),
                "ttft_after_azure_first_token_p99_ms": pct(excess, 99),
            }
        )
    return level


def max_in_flight(items: list[Sent], per_thread: dict[str, list[dict[str, Any]]]) -> int:
    marks = []
    for item in items:
        finals = [m["final"] for m in per_thread.get(item.thread, []) if m["final"]]
        marks.append((item.sent, 1))
        if finals:
            marks.append((min(finals), -1))
    level = peak = 0
    for _, delta in sorted(marks):
        level += delta
        peak = max(peak, level)
    return peak


def print_report(levels: list[Level], args: argparse.Namespace) -> None:
    print(
        f"\nAzure latency {args.latency:.1f} s before the first token; all on loopback; "
        f"{os.cpu_count()} cores; the bot with WEB_CONCURRENCY={args.workers}. "
        "Medians/percentiles over each level's turns.\n"
    )
    keys = sorted({k for lv in levels for k in lv.figures})
    header = ["figure"] + [f"{lv.target}:{lv.name}" for lv in levels]
    rows = [header]
    for key in keys:
        rows.append(
            [key] + [f"{lv.figures[key]:.2f}" if key in lv.figures else "-" for lv in levels]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print("\nbot ÷ baseline at the same level:")
    base = {lv.name: lv for lv in levels if lv.target == "baseline"}
    for lv in levels:
        if lv.target == "bot" and lv.name in base:
            b = base[lv.name].figures
            ratios = {
                k: lv.figures[k] / b[k]
                for k in (
                    "cpu_ms_per_turn",
                    "throughput_turns_s",
                    "ack_p99_ms",
                    "overhead_p50_ms",
                    "peak_rss_mb",
                    "redis_round_trips_per_turn",
                )
                if b.get(k)
            }
            print(f"  {lv.name}: " + ", ".join(f"{k} ×{v:.2f}" for k, v in ratios.items()))
            if lv.cpu_ratio_rounds:
                rounds = ", ".join(f"×{r:.2f}" for r in lv.cpu_ratio_rounds)
                median = pct(lv.cpu_ratio_rounds, 50)
                print(f"  {lv.name}: cpu_ms_per_turn per round {rounds}; median ×{median:.2f}")
                pairs = zip(lv.cpu_ms_rounds, base[lv.name].cpu_ms_rounds, strict=True)
                print(
                    f"  {lv.name}: cpu ms per turn per round, bot/baseline: "
                    + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs)
                )
            if lv.throughput_ratio_rounds:
                rounds = ", ".join(f"{r:.0%}" for r in lv.throughput_ratio_rounds)
                median = pct(lv.throughput_ratio_rounds, 50)
                print(f"  {lv.name}: throughput per pair of bursts {rounds}; median {median:.0%}")


async def rate_level(
    runner: Runner,
    session: aiohttp.ClientSession,
    bot: Target,
    base: Target,
    args: argparse.Namespace,
    name: str = "rate",
    threads: dict[str, list[Batch]] | None = None,
) -> tuple[list[Level], dict[str, list[Batch]]]:
    """The rate level in rounds that alternate bot and baseline (the first of each round
    alternates too), so both meet the same drift of a shared machine; each round gives one CPU
    ratio, and the report shows their median next to the pooled figures. With `threads` (the
    rate level's batches), every mention replies in one of the threads that target answered."""
    count = max(1, int(args.rate * args.seconds / args.rounds))
    batches: dict[str, list[Batch]] = {"bot": [], "baseline": []}
    for i in range(args.rounds):
        for target in (bot, base) if i % 2 == 0 else (base, bot):
            parents = threads[target.kind][i].threads if threads else None
            batches[target.kind].append(
                await runner.batch(
                    target, session, rate=args.rate, count=count, stream=False, threads=parents
                )
            )
    ratios = [
        b.cpu_ms_per_turn / a.cpu_ms_per_turn if a.cpu else float("nan")
        for b, a in zip(batches["bot"], batches["baseline"], strict=True)
    ]
    levels = [level_of(name, kind, batches[kind]) for kind in ("bot", "baseline")]
    for level in levels:
        level.cpu_ms_rounds = [b.cpu_ms_per_turn for b in batches[level.target]]
    levels[0].cpu_ratio_rounds = ratios
    return levels, batches


async def inflight_level(
    runner: Runner,
    session: aiohttp.ClientSession,
    bot: Target,
    base: Target,
    args: argparse.Namespace,
) -> list[Level]:
    """`--inflight-rounds` pairs of bursts of `--inflight` turns, alternating which target goes
    first (bot, baseline, baseline, bot, bot, baseline, …); figures pooled over every burst (one
    burst is too short to average out a shared machine), plus each pair's throughput ratio."""
    batches: dict[str, list[Batch]] = {"bot": [], "baseline": []}
    for i in range(args.inflight_rounds):
        for target in (bot, base) if i % 2 == 0 else (base, bot):
            batches[target.kind].append(
                await runner.batch(target, session, rate=None, count=args.inflight, stream=False)
            )
    levels = [level_of("inflight", kind, batches[kind]) for kind in ("bot", "baseline")]
    levels[0].throughput_ratio_rounds = [
        (a.count / a.answering_seconds) / (b.count / b.answering_seconds)
        for a, b in zip(batches["bot"], batches["baseline"], strict=True)
        if a.answering_seconds > 0 and b.answering_seconds > 0
    ]
    return levels


async def main_async(args: argparse.Namespace) -> list[Level]:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    redis_server = RedisServer("--maxclients", "10000")
    redis_server.start()
    redis_port = redis_server.port
    fakes = Fakes(redis_port)
    runner = Runner(fakes, redis_port, args.latency)
    redis_url = f"redis://127.0.0.1:{fakes.info['redis_port']}/0"
    for _ in range(100):
        try:
            runner.redis.ping()
            break
        except redis.ConnectionError:
            await asyncio.sleep(0.05)
    levels: list[Level] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            if {"rate", "inflight"} & set(args.levels):
                bot = Target("bot", fakes, redis_url, stream=False, workers=args.workers)
                base = Target("baseline", fakes, redis_url, stream=False)
                try:
                    for target in (bot, base):
                        await target.ready(session)
                        # Warm-up at the full rate for a little longer than Azure's latency,
                        # so the connection pools already hold what the rate level needs.
                        await runner.batch(
                            target,
                            session,
                            rate=args.rate,
                            count=max(5, int(args.rate * args.latency * 1.25)),
                            stream=False,
                        )
                    if "rate" in args.levels:
                        rate, started = await rate_level(runner, session, bot, base, args)
                        levels += rate
                        if "followup" in args.levels:
                            followup, _ = await rate_level(
                                runner, session, bot, base, args, "followup", started
                            )
                            levels += followup
                    if "inflight" in args.levels:
                        levels += await inflight_level(runner, session, bot, base, args)
                finally:
                    bot.stop()
                    base.stop()
            if "stream" in args.levels:
                target = Target("bot", fakes, redis_url, stream=True)
                try:
                    await target.ready(session)
                    streamed = await runner.batch(
                        target,
                        session,
                        rate=args.stream_turns / args.latency,
                        count=args.stream_turns,
                        stream=True,
                    )
                    levels.append(level_of("stream", "bot", [streamed], stream=True))
                finally:
                    target.stop()
    finally:
        fakes.stop()
        redis_server.stop()
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load")
    parser.add_argument("--rate", type=int, default=100, help="mentions per second (rate level)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the rate level")
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved bot/baseline rounds of the rate level"
    )
    parser.add_argument("--inflight", type=int, default=1000, help="turns in the burst level")
    parser.add_argument(
        "--inflight-rounds", type=int, default=3, help="pairs of bursts in the burst level"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="the bot's WEB_CONCURRENCY (worker processes); the baseline is one process",
    )
    parser.add_argument("--stream-turns", type=int, default=100, help="turns in the stream level")
    parser.add_argument("--latency", type=float, default=2.0, help="Azure seconds to first token")
    parser.add_argument(
        "--levels",
        type=lambda text: text.split(","),
        default=["rate", "followup", "inflight", "stream"],
        help="comma-separated subset of rate,followup,inflight,stream (followup needs rate)",
    )
    parser.add_argument("--out", default="bench/results/latest.json")
    args = parser.parse_args()
    if args.smoke:
        args.rate, args.seconds, args.inflight, args.stream_turns, args.latency = 10, 1, 20, 10, 0.2
        args.rounds = args.inflight_rounds = 2
    levels = asyncio.run(main_async(args))
    print_report(levels, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"args": vars(args), "levels": [vars(lv) for lv in levels]}, indent=2)
    )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
