"""Budget of the anomaly analyzer (issue 14): state bytes a series, µs a sample, replay rate.

* state: the bytes of one series' :class:`SeriesModel` after a week of
  samples (the object, its two seasonal arrays and the numbers in its slots;
  the shared config is not counted, nor the analyzer's dict entry, ~100 bytes);
* µs a sample: ``SeriesModel.step`` alone, and the whole analyzer through
  ``Replayer`` on NAB's files (store, feed, lifecycle included), for the new
  default and for the old zscore + ema pair in the same run.

    .venv/bin/python bench/anomaly_cost.py
"""

from __future__ import annotations

import glob
import os
import random
import sys
import time
from typing import List, Tuple

from sysops_agent.analyzers.anomaly import AnomalyConfig, SeriesModel
from sysops_agent.config import load_config
from sysops_agent.replay import Replayer, merged, read_file

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "nab"))


def state_bytes(model: SeriesModel) -> int:
    """The object, its seasonal arrays and every number its slots hold (not the shared config)."""
    total = sys.getsizeof(model) + sys.getsizeof(model.tod) + sys.getsizeof(model.week)
    for name in SeriesModel.__slots__:
        value = getattr(model, name)
        if isinstance(value, (int, float)):
            total += sys.getsizeof(value)
    return total


def step_cost() -> Tuple[int, float]:
    rng = random.Random(1)
    points = [(1.7e9 + i * 10.0, 50.0 + rng.gauss(0, 5)) for i in range(7 * 8640)]
    model = SeriesModel(AnomalyConfig(), 0.0)
    step = model.step
    t0 = time.perf_counter()
    for ts, x in points:
        step(ts, x, True)
    elapsed = time.perf_counter() - t0
    return state_bytes(model), elapsed / len(points) * 1e6


def replay_rate(config_text: str) -> float:
    config = load_config(text=config_text).config
    samples = 0
    elapsed = 0.0
    for path in sorted(glob.glob(os.path.join(CORPUS, "data", "*", "*.csv"))):
        errors: List[str] = []
        replayer = Replayer(config, "bench", errors.append)
        with open(path, encoding="utf-8") as fh:
            items = list(merged([(path, read_file(fh, path, None, errors.append))]))
        t0 = time.perf_counter()
        for _alert in replayer.run(items):
            pass
        elapsed += time.perf_counter() - t0
        samples += replayer.samples
    return samples / elapsed


def main() -> int:
    size, us = step_cost()
    print(f"state per series after a week at 10 s: {size} bytes")
    print(f"SeriesModel.step: {us:.2f} µs a sample")
    new = replay_rate("")
    old = replay_rate(
        "[analyzer.anomaly]\nenabled = false\n"
        "[analyzer.zscore]\nenabled = true\n[analyzer.ema]\nenabled = true\n"
    )
    none = replay_rate("[analyzer.anomaly]\nenabled = false\n")
    print(f"replay, NAB corpus (all analyzers, defaults):  {new:,.0f} samples/s")
    print(f"replay, old defaults (zscore + ema):           {old:,.0f} samples/s")
    print(f"replay, no statistical analyzer:               {none:,.0f} samples/s")
    print(f"anomaly analyzer in replay: {1e6 / new - 1e6 / none:.2f} µs a sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
