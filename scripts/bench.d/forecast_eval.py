#!/usr/bin/env python3
"""Scores every engine's forecasts against the held-out days and prints the benchmark table.

Per series (or real-series window): MASE = MAE / in-sample MAE of the 7-day seasonal naive
forecast; 30-day-total error = |Σ forecast − Σ actual| / Σ actual; 80% coverage = share of
held-out days inside the 80% interval. The same definitions as `costcast backtest`.

usage: forecast_eval.py DATA_DIR TIMINGS.jsonl ENGINE=FORECAST.csv ...
"""
import csv
import json
import statistics
import sys
from collections import defaultdict

ANCHORS = ["statsforecast-mstl", "statsforecast-autoets", "prophet", "seasonal-naive"]


def load(path, value="value"):
    out = defaultdict(list)
    for r in csv.DictReader(open(path)):
        out[r["series_id"]].append(r)
    return out


def dataset(sid):
    return sid.split("/")[0] if "/" in sid else sid.split("@")[0]


def quantile(values, q):
    v = sorted(values)
    return v[round((len(v) - 1) * q)] if v else float("nan")


def score(train, actual, forecast):
    y = [float(r["value"]) for r in train]
    scale = statistics.fmean(abs(y[i] - y[i - 7]) for i in range(7, len(y)))
    a = [float(r["value"]) for r in actual]
    by_day = {r["date"]: r for r in forecast}
    f = [by_day[r["date"]] for r in actual]
    mean = [float(r["mean"]) for r in f]
    mae = statistics.fmean(abs(m - x) for m, x in zip(mean, a))
    total = sum(a)
    inside = sum(float(r["lo80"]) <= x <= float(r["hi80"]) for r, x in zip(f, a)) / len(a)
    return {
        "mase": mae / scale if scale > 0 else None,
        "total": 100 * abs(sum(mean) - total) / total if total > 0 else None,
        "bias": 100 * (sum(mean) - total) / total if total > 0 else None,
        "cov80": inside,
    }


def main():
    data_dir, timings_path = sys.argv[1:3]
    engines = dict(arg.split("=", 1) for arg in sys.argv[3:])
    train, actual = load(f"{data_dir}/train.csv"), load(f"{data_dir}/actual.csv")
    timings = {}
    for line in open(timings_path):
        t = json.loads(line)
        timings[t["engine"]] = t["ms_per_series"]
    rows = defaultdict(dict)
    for engine, path in engines.items():
        forecasts = load(path)
        per_set = defaultdict(list)
        for sid in actual:
            if sid not in forecasts:
                raise SystemExit(f"{engine}: no forecast for {sid} in {path}")
            per_set[dataset(sid)].append(score(train[sid], actual[sid], forecasts[sid]))
        for name, scores in per_set.items():
            pick = lambda k: [s[k] for s in scores if s[k] is not None]
            rows[name][engine] = {
                "n": len(scores),
                "ms": timings.get(engine),
                "mase_mean": statistics.fmean(pick("mase")),
                "mase_median": statistics.median(pick("mase")),
                "total_median": statistics.median(pick("total")),
                "total_p90": quantile(pick("total"), 0.9),
                "bias_median": statistics.median(pick("bias")),
                "cov80": statistics.fmean(pick("cov80")),
            }
    header = f"{'method':<24} {'ms/series/core':>14} {'MASE mean':>9} {'MASE med':>9} {'total err med %':>15} {'total err p90 %':>15} {'bias med %':>10} {'80% cov':>8}"
    for name in sorted(rows, key=lambda n: (n != "synthetic", n)):
        table = rows[name]
        n = next(iter(table.values()))["n"]
        what = f"{n} series, 730 days, 30 held out" if name == "synthetic" else f"{n} rolling windows of 30 days"
        print(f"\n{name} ({what})")
        print(header)
        order = ["costcast", "costcast-auto"]
        for engine in order + [e for e in table if e not in order]:
            if engine not in table:
                continue
            r = table[engine]
            ms = f"{r['ms']:.2f}" if r["ms"] is not None else "—"
            print(
                f"{engine:<24} {ms:>14} {r['mase_mean']:>9.3f} {r['mase_median']:>9.3f} {r['total_median']:>15.2f} "
                f"{r['total_p90']:>15.2f} {r['bias_median']:>10.2f} {r['cov80']:>8.3f}"
            )
        anchors = {e: r for e, r in table.items() if e in ANCHORS}
        if "costcast" in table and anchors:
            c = table["costcast"]
            best_total = min(anchors, key=lambda e: anchors[e]["total_median"])
            best_mase = min(anchors, key=lambda e: anchors[e]["mase_mean"])
            print(
                f"costcast vs best anchor: total err median {c['total_median'] / anchors[best_total]['total_median']:.2f}× "
                f"({best_total}), MASE mean {c['mase_mean'] / anchors[best_mase]['mase_mean']:.2f}× ({best_mase})"
            )
    if "costcast" in timings:
        speed = [
            f"{timings[e] / timings['costcast']:.0f}× faster than {e}"
            for e in ("statsforecast-mstl", "prophet", "statsforecast-autoets")
            if e in timings
        ]
        auto = f" (--model auto: {timings['costcast-auto']:.1f} ms)" if "costcast-auto" in timings else ""
        print(
            f"\nspeed (all datasets together, one core each): costcast {timings['costcast']:.2f} ms per series{auto}; "
            + ", ".join(speed)
        )


if __name__ == "__main__":
    main()
