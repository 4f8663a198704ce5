"""Evaluate the analyzers on NAB's labelled series with the DEFAULT configuration.

Replays every ``data/*/*.csv`` of the corpus exactly as ``sysops-agent replay``
does (same analyzers, same defaults, same dedup), collects the timestamps of
the firing notifications, writes them as NAB detections JSON and scores them
with ``score.py``. Prints the normalised scores and, per file, windows hit,
false alarms and alerts per day.

    .venv/bin/python bench/nab_eval.py
    .venv/bin/python bench/nab_eval.py --corpus ../shared/data/nab --out /tmp/detections.json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from sysops_agent.config import Config, load_config
from sysops_agent.model import AlertState
from sysops_agent.replay import Replayer, merged, read_file

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "nab"))
DEFAULT_SCORER = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "tools", "nab", "score.py")
)


def nab_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def detect(path: str, config: Config) -> Dict[str, object]:
    """Replay one CSV; returns firing timestamps, analyzers and the file's time span."""
    errors: List[str] = []
    replayer = Replayer(config, "nab", errors.append)
    with open(path, encoding="utf-8") as fh:
        first = last = None
        stamps: List[str] = []
        by_analyzer: Dict[str, int] = {}
        items = merged([(path, read_file(fh, path, None, errors.append))])

        def tracked():  # type: ignore[no-untyped-def]
            nonlocal first, last
            for item in items:
                if first is None:
                    first = item[2].ts
                last = item[2].ts
                yield item

        for alert in replayer.run(tracked()):
            if alert.state is AlertState.FIRING:
                stamps.append(nab_time(alert.timestamp))
                by_analyzer[alert.analyzer] = by_analyzer.get(alert.analyzer, 0) + 1
    days = ((last or 0) - (first or 0)) / 86400.0
    return {
        "stamps": stamps,
        "days": days,
        "by_analyzer": by_analyzer,
        "errors": errors,
        "samples": replayer.samples,
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--scorer", default=DEFAULT_SCORER)
    ap.add_argument(
        "--out",
        default=os.path.join(tempfile.gettempdir(), "sysops-nab-detections.json"),
        help="detections JSON to write (default: in the temp directory)",
    )
    ap.add_argument("--config", help="evaluate this configuration instead of the defaults")
    ap.add_argument("--files", nargs="*", help="only these category/name.csv keys")
    args = ap.parse_args(argv)

    loaded = load_config(args.config) if args.config else load_config(text="")
    if loaded.fatal:
        for p in loaded.fatal:
            print(p, file=sys.stderr)
        return 2
    config = loaded.config

    paths = sorted(glob.glob(os.path.join(args.corpus, "data", "*", "*.csv")))
    detections: Dict[str, List[str]] = {}
    info: Dict[str, Dict[str, object]] = {}
    t0 = time.perf_counter()
    samples = 0
    for path in paths:
        key = "/".join(path.split(os.sep)[-2:])
        if args.files and key not in args.files:
            continue
        result = detect(path, config)
        detections[key] = result["stamps"]  # type: ignore[assignment]
        info[key] = result
        samples += result["samples"]  # type: ignore[operator]
        if result["errors"]:
            n_err = len(result["errors"])  # type: ignore[arg-type]
            print(f"note: {key}: {n_err} line(s) skipped (duplicate timestamps)", file=sys.stderr)
    elapsed = time.perf_counter() - t0
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(detections, fh, indent=1)

    cmd = [sys.executable, args.scorer, "score", "--corpus", args.corpus]
    cmd += ["--detections", args.out, "--profile", "all", "--json"]
    if args.files:
        cmd += ["--files", *[f"data/{k}" for k in args.files]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    res = json.loads(proc.stdout)
    profiles = res["profiles"]
    std = profiles["standard"]

    print(f"{'file':<58} {'windows':>7} {'hit':>4} {'FA':>4} {'alerts':>6} {'/day':>6}  analyzers")
    no_anomaly_fa = 0
    no_anomaly_days = 0.0
    for key, f in std["per_file"].items():
        i = info.get(key, {})
        n = len(detections.get(key, []))
        days = float(i.get("days", 0.0) or 0.0)  # type: ignore[arg-type]
        per_day = n / days if days else 0.0
        who = ",".join(f"{a}:{c}" for a, c in sorted(i.get("by_analyzer", {}).items()))  # type: ignore[attr-defined]
        print(
            f"{key:<58} {f['windows']:>7} {f['tp']:>4} {f['fp']:>4} {n:>6} {per_day:>6.2f}  {who}"
        )
        if key.startswith("artificialNoAnomaly/"):
            no_anomaly_fa += n
            no_anomaly_days += days
    print()
    for name, p in profiles.items():
        print(
            f"NAB score ({name}): {p['normalized']:.1f}   TP {p['tp']}  FN {p['fn']}  FP {p['fp']}"
        )
    if no_anomaly_days:
        print(
            f"false alarms on artificialNoAnomaly: {no_anomaly_fa} in {no_anomaly_days:.1f} days "
            f"= {no_anomaly_fa / no_anomaly_days:.2f}/day"
        )
    print(f"detections: {args.out}")
    print(f"replayed {samples} samples in {elapsed:.2f} s ({samples / elapsed:,.0f} samples/s)")
    print(
        "published (standard profile, same 28 files): Numenta HTM 72.3, CAD OSE 71.5, "
        "ARTime 69.5, KNN CAD 57.1, earthgecko Skyline 55.1, Random Cut Forest 50.6, "
        "Etsy Skyline 46.2, Twitter ADVec 41.2, Windowed Gaussian 26.5, random 12.8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
