"""Evaluate the analyzers on NAB's labelled series with the DEFAULT configuration.

Replays every ``data/*/*.csv`` of the corpus exactly as ``sysops-agent replay``
does (same analyzers, same defaults, same dedup), collects the timestamps of
the firing notifications, writes them as NAB detections JSON and scores them
with ``score.py``. Prints the normalised scores and, per file, windows hit,
false alarms and alerts per day.

    .venv/bin/python bench/nab_eval.py
    .venv/bin/python bench/nab_eval.py --corpus ../shared/data/nab --out /tmp/detections.json
    .venv/bin/python bench/nab_eval.py --folds
    .venv/bin/python bench/nab_eval.py --percent    # CPU files as percentages: at their resolution

``--folds`` is the check that cannot be fooled by tuning on the files it
scores: leave-one-category-out over the corpus's categories. For each
held-out category the anomaly analyzer's parameters are chosen from the small
declared :data:`GRID` by the standard score on the OTHER categories only, and
the held-out category is scored with that choice. It prints per fold the
chosen point and the held-out scores (three profiles), the mean and the
worst fold, and the score of the shipped defaults per category. A category
without labelled windows (artificialNoAnomaly) has no normalised score of its
own (NAB's null and perfect detectors tie there): its fold reports false
alarms per day instead and is left out of the mean and the worst fold.
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

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


def detect(path: str, config: Config, percent: bool = False) -> Dict[str, object]:
    """Replay one CSV; returns firing timestamps, analyzers and the file's time span.

    With ``percent``, a CPU utilization file (CloudWatch's unit: percent) is
    replayed as ``<stem>_percent``, a percentage stored at its unit's resolution.
    """
    errors: List[str] = []
    replayer = Replayer(config, "nab", errors.append)
    with open(path, encoding="utf-8") as fh:
        first = last = None
        stamps: List[str] = []
        by_analyzer: Dict[str, int] = {}
        stem = os.path.splitext(os.path.basename(path))[0]
        metric = f"{stem}_percent" if percent and "cpu_utilization" in stem else None
        items = merged([(path, read_file(fh, path, metric, errors.append))])

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


#: the declared grid of --folds: (key, values) of [analyzer.anomaly], all combinations.
#: Scale-free values only (thresholds in robust σ, time constants in seconds).
GRID: Tuple[Tuple[str, Tuple[Any, ...]], ...] = (
    ("threshold", (5.0, 6.0)),
    ("novelty_secs", (86400.0, 3 * 86400.0)),
    ("novelty_margin", (0.0, 1.0, 3.0)),
    ("shift_threshold", (4.0, 6.0, 8.0)),
    ("level_secs", (3600.0, 4 * 3600.0, 12 * 3600.0)),
)
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def grid_points() -> List[Dict[str, Any]]:
    points: List[Dict[str, Any]] = [{}]
    for key, values in GRID:
        points = [dict(p, **{key: v}) for p in points for v in values]
    return points


def point_config(point: Dict[str, Any]) -> Config:
    text = "[analyzer.anomaly]\n" + "".join(f"{k} = {v!r}\n" for k, v in point.items())
    loaded = load_config(text=text)
    if loaded.fatal:
        raise SystemExit("; ".join(str(p) for p in loaded.fatal))
    return loaded.config


def score(
    scorer: str, corpus: str, detections: Dict[str, List[str]], keys: Sequence[str], out: str
) -> Dict[str, Any]:
    """The scorer's JSON for ``detections`` restricted to ``keys`` (all profiles)."""
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({k: detections.get(k, []) for k in keys}, fh)
    cmd = [sys.executable, scorer, "score", "--corpus", corpus, "--detections", out]
    cmd += ["--profile", "all", "--json", "--files", *[f"data/{k}" for k in keys]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)["profiles"]  # type: ignore[no-any-return]


def folds(args: argparse.Namespace) -> int:
    paths = sorted(glob.glob(os.path.join(args.corpus, "data", "*", "*.csv")))
    keys = ["/".join(p.split(os.sep)[-2:]) for p in paths]
    cats = sorted({k.split("/")[0] for k in keys})
    by_cat = {c: [k for k in keys if k.startswith(c + "/")] for c in cats}
    points = grid_points()
    default_point: Dict[str, Any] = {}
    runs: List[Tuple[Dict[str, Any], Dict[str, List[str]], Dict[str, float]]] = []
    for point in [default_point, *points]:
        config = point_config(point)
        dets: Dict[str, List[str]] = {}
        days: Dict[str, float] = {}
        for path, key in zip(paths, keys):
            r = detect(path, config)
            dets[key] = r["stamps"]  # type: ignore[assignment]
            days[key] = float(r["days"])  # type: ignore[arg-type]
        runs.append((point, dets, days))
    out = args.out

    def fa_per_day(dets: Dict[str, List[str]], days: Dict[str, float], ks: List[str]) -> float:
        total = sum(days[k] for k in ks)
        return sum(len(dets[k]) for k in ks) / total if total else 0.0

    print(f"grid ({len(points)} points): " + ", ".join(f"{k} {list(v)}" for k, v in GRID))
    print(f"{'held out':<24} {'chosen on the others':<58} {'std':>6} {'lowFP':>6} {'lowFN':>6}")
    fold_scores: List[Tuple[str, float, float, float]] = []
    for held in cats:
        train = [k for c in cats if c != held for k in by_cat[c]]
        best: Optional[Tuple[float, int]] = None
        for i, (_point, dets, _days) in enumerate(runs[1:], start=1):
            std = score(args.scorer, args.corpus, dets, train, out)["standard"]["normalized"]
            if best is None or std > best[0]:
                best = (std, i)
        assert best is not None
        point, dets, days = runs[best[1]]
        chosen = " ".join(f"{k}={v:g}" for k, v in point.items())
        res = score(args.scorer, args.corpus, dets, by_cat[held], out)
        vals = [res[p]["normalized"] for p in PROFILES]
        if vals[0] is None:
            fa = fa_per_day(dets, days, by_cat[held])
            print(f"{held:<24} {chosen:<58} {'(no windows)':>20}  false alarms {fa:.2f}/day")
            continue
        fold_scores.append((held, vals[0], vals[1], vals[2]))
        print(f"{held:<24} {chosen:<58} {vals[0]:>6.1f} {vals[1]:>6.1f} {vals[2]:>6.1f}")
    if fold_scores:
        n = len(fold_scores)
        means = [sum(f[i] for f in fold_scores) / n for i in (1, 2, 3)]
        worst = min(fold_scores, key=lambda f: f[1])
        print(
            f"{'mean of the folds':<24} {'':<58} {means[0]:>6.1f} {means[1]:>6.1f} {means[2]:>6.1f}"
        )
        print(
            f"{'worst fold':<24} {worst[0]:<58} {worst[1]:>6.1f} {worst[2]:>6.1f} {worst[3]:>6.1f}"
        )
    best_all = max(
        runs[1:],
        key=lambda r: score(args.scorer, args.corpus, r[1], keys, out)["standard"]["normalized"],
    )
    print("chosen on all categories: " + " ".join(f"{k}={v:g}" for k, v in best_all[0].items()))
    old = load_config(
        text="[analyzer.anomaly]\nenabled = false\n[analyzer.zscore]\nenabled = true\n"
        "[analyzer.ema]\nenabled = true\n"
    ).config
    old_dets: Dict[str, List[str]] = {}
    for path, key in zip(paths, keys):
        old_dets[key] = detect(path, old)["stamps"]  # type: ignore[assignment]
    _point, dets, days = runs[0]
    for title, dd in (("shipped defaults", dets), ("the old zscore + ema defaults", old_dets)):
        print(f"{title}, per category and on all files (std lowFP lowFN):")
        for name, ks in [*by_cat.items(), ("all", keys)]:
            res = score(args.scorer, args.corpus, dd, ks, out)
            vals = [res[p]["normalized"] for p in PROFILES]
            text = " ".join("  n/a " if v is None else f"{v:>6.1f}" for v in vals)
            print(f"  {name:<24} {text}   false alarms {fa_per_day(dd, days, ks):.2f}/day")
    return 0


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
    ap.add_argument(
        "--folds", action="store_true", help="leave-one-category-out over the declared GRID"
    )
    ap.add_argument(
        "--percent",
        action="store_true",
        help="replay the CPU utilization files as percentages (stored at the unit's resolution)",
    )
    args = ap.parse_args(argv)
    if args.folds:
        return folds(args)

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
        result = detect(path, config, args.percent)
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
