#!/usr/bin/env python3
"""Scores every engine's forecasts against the held-out days and prints the benchmark table.

Per series (or real-series window): MASE = MAE / in-sample MAE of the 7-day seasonal naive
forecast; 30-day-total error = |Σ forecast − Σ actual| / Σ actual; 80% coverage of days = share
of held-out days inside the 80% interval; 80% coverage of totals = share of series whose held-out
30-day total lies inside the total's 80% interval. The same definitions as `costcast backtest`.

The total's interval: costcast writes each day's shared (level) and independent (noise) standard
deviations, so its total's spread is Σ level ⊕ √Σ noise², as a budget computes it. The anchors
give daily intervals only; their total's interval treats days as independent (σ from each day's
80% interval, added in quadrature), which is what a user summing their daily intervals gets.
Those figures are marked with *.

The stress set is also scored by the age of its step at the cut, and three and five days after
it against AutoETS, which the targets name.

usage: forecast_eval.py DATA_DIR TIMINGS.jsonl ENGINE=FORECAST.csv ...
"""
import csv
import json
import math
import re
import statistics
import sys
from collections import defaultdict

# costcast as the bench runs it: the calendar model, auto, and calendar with its level error
# pooled with three backtest windows as a forecast run does.
OURS = ("costcast", "costcast-auto", "costcast-as-run")
ANCHORS = [
    "statsforecast-mstl",
    "statsforecast-autoets",
    "statsforecast-theta",
    "statsforecast-mfles",
    "lightgbm",
    "prophet",
    "seasonal-naive",
    "run-rate",
]
SIMPLE = ["seasonal-naive", "run-rate"]
Z80 = 1.2815515655


def load(path):
    out = defaultdict(list)
    for r in csv.DictReader(open(path)):
        out[r["series_id"]].append(r)
    return out


def dataset(sid):
    return sid.split("/")[0] if "/" in sid else sid.split("@")[0]


def age(sid):
    m = re.search(r"@a(\d+)$", sid)
    return int(m.group(1)) if m else None


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
    total, forecast_total = sum(a), sum(mean)
    inside = sum(float(r["lo80"]) <= x <= float(r["hi80"]) for r, x in zip(f, a)) / len(a)
    if f[0].get("sd_level") not in (None, ""):
        level = sum(float(r["sd_level"]) for r in f)
        noise = sum(float(r["sd_noise"]) ** 2 for r in f)
        sd, estimated = math.sqrt(level * level + noise), False
    else:
        sd = math.sqrt(sum(((float(r["hi80"]) - float(r["lo80"])) / (2 * Z80)) ** 2 for r in f))
        estimated = True
    total_inside = max(forecast_total - Z80 * sd, 0.0) <= total <= forecast_total + Z80 * sd
    return {
        "mase": mae / scale if scale > 0 else None,
        "total": 100 * abs(forecast_total - total) / total if total > 0 else None,
        "bias": 100 * (forecast_total - total) / total if total > 0 else None,
        "cov80": inside,
        "tcov80": float(total_inside),
        "estimated": estimated,
    }


def summarise(scores, ms):
    pick = lambda k: [s[k] for s in scores if s[k] is not None]
    return {
        "n": len(scores),
        "ms": ms,
        "mase_mean": statistics.fmean(pick("mase")),
        "mase_median": statistics.median(pick("mase")),
        "total_median": statistics.median(pick("total")),
        "total_p90": quantile(pick("total"), 0.9),
        "bias_median": statistics.median(pick("bias")),
        "cov80": statistics.fmean(pick("cov80")),
        "tcov80": statistics.fmean(pick("tcov80")),
        "estimated": any(s["estimated"] for s in scores),
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
    by_age = defaultdict(dict)
    coverage_by_age = defaultdict(dict)
    for engine, path in engines.items():
        forecasts = load(path)
        per_set, per_age = defaultdict(list), defaultdict(list)
        for sid in actual:
            if sid not in forecasts:
                raise SystemExit(f"{engine}: no forecast for {sid} in {path}")
            s = score(train[sid], actual[sid], forecasts[sid])
            per_set[dataset(sid)].append(s)
            if age(sid) is not None:
                per_age[age(sid)].append(s)
        for name, scores in per_set.items():
            rows[name][engine] = summarise(scores, timings.get(engine))
        for a, scores in per_age.items():
            by_age[a][engine] = statistics.median(s["total"] for s in scores if s["total"] is not None)
            coverage_by_age[a][engine] = statistics.fmean(s["tcov80"] for s in scores)
    header = (
        f"{'method':<22} {'ms/series/core':>14} {'MASE mean':>9} {'MASE med':>9} {'total err med %':>15} "
        f"{'total err p90 %':>15} {'bias med %':>10} {'80% cov days':>12} {'80% cov totals':>14}"
    )
    order = ["synthetic", "bills", "stress"]
    for name in sorted(rows, key=lambda n: (order.index(n) if n in order else len(order), n)):
        table = rows[name]
        n = next(iter(table.values()))["n"]
        what = {
            "synthetic": f"{n} series of gen_series.py, 730 days, 30 held out",
            "bills": f"{n} series of gen_bills.py, 120-900 days, 30 held out",
            "stress": f"{n} cuts of gen_bills.py stress bills, 1-21 days after a step of -40% to +80%",
        }.get(name, f"{n} rolling windows of 30 days")
        print(f"\n{name} ({what})")
        print(header)
        first = [e for e in OURS if e in table]
        for engine in first + [e for e in table if e not in first]:
            r = table[engine]
            ms = f"{r['ms']:.2f}" if r["ms"] is not None else "—"
            star = "*" if r["estimated"] else " "
            print(
                f"{engine:<22} {ms:>14} {r['mase_mean']:>9.3f} {r['mase_median']:>9.3f} {r['total_median']:>15.2f} "
                f"{r['total_p90']:>15.2f} {r['bias_median']:>10.2f} {r['cov80']:>12.3f} {r['tcov80']:>13.3f}{star}"
            )
        anchors = {e: r for e, r in table.items() if e in ANCHORS}
        simple = {e: r for e, r in table.items() if e in SIMPLE}
        for mine in first:
            if not anchors:
                break
            c = table[mine]
            best_total = min(anchors, key=lambda e: anchors[e]["total_median"])
            best_mase = min(anchors, key=lambda e: anchors[e]["mase_mean"])
            line = (
                f"{mine} vs best anchor: total err median {c['total_median'] / anchors[best_total]['total_median']:.2f}× "
                f"({best_total}), MASE mean {c['mase_mean'] / anchors[best_mase]['mase_mean']:.2f}× ({best_mase})"
            )
            if simple:
                best_simple = min(simple, key=lambda e: simple[e]["total_median"])
                line += f"; vs best simple: total err median {c['total_median'] / simple[best_simple]['total_median']:.2f}× ({best_simple})"
            print(line)
    if by_age:
        engines_here = [e for e in OURS if e in engines] + [
            e for e in engines if e not in OURS
        ]
        print("\nstress: median 30-day-total error % by days since the step at the cut")
        print(f"{'method':<22} " + " ".join(f"{a:>6}" for a in sorted(by_age)))
        for e in engines_here:
            print(f"{e:<22} " + " ".join(f"{by_age[a].get(e, float('nan')):>6.2f}" for a in sorted(by_age)))
        if "statsforecast-autoets" in engines:
            for mine in [e for e in OURS if e in engines]:
                ratios = [
                    f"day {a}: {by_age[a][mine] / by_age[a]['statsforecast-autoets']:.2f}×"
                    for a in sorted(by_age)
                ]
                print(f"{mine} / AutoETS: " + ", ".join(ratios))
        print("\nstress: 80% coverage of 30-day totals by days since the step at the cut")
        print(f"{'method':<22} " + " ".join(f"{a:>6}" for a in sorted(coverage_by_age)))
        for e in [e for e in OURS if e in engines]:
            print(f"{e:<22} " + " ".join(f"{coverage_by_age[a][e]:>6.2f}" for a in sorted(coverage_by_age)))
    if "costcast" in timings:
        speed = [
            f"{timings[e] / timings['costcast']:.0f}× faster than {e}"
            for e in ("statsforecast-mstl", "prophet", "statsforecast-autoets", "statsforecast-theta", "lightgbm")
            if e in timings
        ]
        auto = f" (--model auto: {timings['costcast-auto']:.2f} ms)" if "costcast-auto" in timings else ""
        print(
            f"\nspeed (all datasets together, one core each): costcast {timings['costcast']:.2f} ms per series{auto}; "
            + ", ".join(speed)
        )


if __name__ == "__main__":
    main()
