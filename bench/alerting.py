"""How much CPU the alert pipeline and the channel formatters cost.

Run: ``.venv/bin/python bench/alerting.py``. Prints the CPU time per alert
through the manager (dedup → route → rate limit → group → a channel that
discards) on a virtual clock, and the time to build one payload per channel
for a single alert and for a batch of 50 hostile, long alerts.
"""

from __future__ import annotations

import asyncio
import time
from typing import List, Sequence

from sysops_agent.alerting.manager import AlertManager
from sysops_agent.channels import discord, slack, telegram
from sysops_agent.channels.registry import AlertingConfig
from sysops_agent.clock import VirtualClock
from sysops_agent.model import Alert, Severity, make_labels

N = 20_000


class NullChannel:
    name = "null"
    supports_batch = True
    min_severity = Severity.INFO

    def __init__(self) -> None:
        self.count = 0

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.count += len(alerts)

    async def aclose(self) -> None:
        return None


def alert(i: int, message: str = "CPU at 97%") -> Alert:
    return Alert(
        timestamp=1_700_000_000.0 + i,
        hostname="web1",
        severity=Severity.WARN,
        metric=f"metric_{i % 500}",
        value=97.0,
        threshold=90.0,
        message=message,
        analyzer="threshold",
        labels=make_labels(cpu=str(i % 7)),
    )


async def pipeline() -> None:
    clock = VirtualClock()
    cfg = AlertingConfig()
    cfg.rate_limit_per_minute = 1e6
    cfg.rate_limit_burst = 1_000_000
    cfg.dedup_window_secs = 0
    channel = NullChannel()
    manager = AlertManager(cfg, [channel], clock)
    task = asyncio.ensure_future(manager.run())
    alerts = [alert(i) for i in range(N)]
    start = time.process_time()
    for i, a in enumerate(alerts):
        await manager.submit(a)
        if i % 100 == 99:
            await clock.advance(1.0)
    await clock.advance(10)
    close = asyncio.ensure_future(manager.close())
    while not close.done():
        await clock.advance(1)
    elapsed = time.process_time() - start
    await task
    print(f"pipeline: {N} alerts in {elapsed:.2f} s CPU = {elapsed / N * 1e6:.0f} µs/alert")
    print(f"          delivered {channel.count}, counters {manager.counters()}")


def payloads() -> None:
    hostile = "@everyone <!channel> <b>&amp;</b> **x** 日本語 😀 " * 40
    single: List[Alert] = [alert(0, hostile)]
    batch: List[Alert] = [alert(i, hostile) for i in range(50)]
    builders = {
        "discord": lambda a: discord.build_payload(a, user_ids=["1"]),
        "slack": lambda a: slack.build_payload(a),
        "telegram": lambda a: telegram.render(telegram.build_pieces(a)),
    }
    for name, build in builders.items():
        for label, alerts in (("1 alert", single), ("50 alerts", batch)):
            reps = 200
            start = time.process_time()
            for _ in range(reps):
                build(alerts)
            ms = (time.process_time() - start) / reps * 1e3
            print(f"{name:9} payload, {label:9}: {ms:.2f} ms")


if __name__ == "__main__":
    asyncio.run(pipeline())
    payloads()
