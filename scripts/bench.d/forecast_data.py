#!/usr/bin/env python3
"""Builds the forecasting benchmark's inputs: train.csv and actual.csv (series_id,date,value).

- synthetic/<id>: gen_series.py series, 730 days of history, the last 30 days held out.
- bills/<id>: gen_bills.py bills (another generator, other structure), the last 30 days held out.
- stress/<id>@aAGE: gen_bills.py stress bills, cut AGE days after a step, 30 days held out.
- <real>@<origin>: the real daily series cut at WINDOWS origins 30 days apart (rolling origin),
  each window's next 30 days held out. Missing days are filled by linear interpolation, for
  every engine alike.

usage: forecast_data.py SERIES.csv BILLS.csv STRESS.csv REAL_DIR OUT_DIR [WINDOWS]
"""
import csv
import datetime as dt
import os
import sys
from collections import defaultdict

HORIZON = 30


def read_real(path):
    rows = list(csv.DictReader(open(path)))
    points = {dt.date.fromisoformat(r["ds"][:10]): float(r["y"]) for r in rows}
    days = sorted(points)
    out = []
    day = days[0]
    previous = (days[0], points[days[0]])
    while day <= days[-1]:
        if day in points:
            previous = (day, points[day])
            out.append((day, points[day]))
        else:
            following = min(d for d in days if d > day)
            span = (following - previous[0]).days
            share = (day - previous[0]).days / span
            out.append((day, previous[1] + share * (points[following] - previous[1])))
        day += dt.timedelta(days=1)
    return out


def main():
    series_csv, bills_csv, stress_csv, real_dir, out_dir = sys.argv[1:6]
    windows = int(sys.argv[6]) if len(sys.argv) > 6 else 12
    os.makedirs(out_dir, exist_ok=True)
    synthetic = defaultdict(list)
    for r in csv.DictReader(open(series_csv)):
        synthetic[r["series_id"]].append((r["date"], r["cost"]))
    with open(os.path.join(out_dir, "train.csv"), "w", newline="") as t, open(
        os.path.join(out_dir, "actual.csv"), "w", newline=""
    ) as a:
        train, actual = csv.writer(t), csv.writer(a)
        train.writerow(["series_id", "date", "value"])
        actual.writerow(["series_id", "date", "value"])
        for sid, points in synthetic.items():
            name = f"synthetic/{sid}"
            for d, v in points[:-HORIZON]:
                train.writerow([name, d, v])
            for d, v in points[-HORIZON:]:
                actual.writerow([name, d, v])
        for label, path in (("bills", bills_csv), ("stress", stress_csv)):
            for r in csv.DictReader(open(path)):
                out = train if r["split"] == "train" else actual
                out.writerow([f"{label}/{r['series_id']}", r["date"], r["cost"]])
        for file in sorted(os.listdir(real_dir)):
            if not file.endswith(".csv"):
                continue
            label = file.removeprefix("example_").removeprefix("wp_log_").removesuffix(".csv")
            points = read_real(os.path.join(real_dir, file))
            for k in range(windows, 0, -1):
                origin = len(points) - k * HORIZON
                name = f"{label}@{points[origin][0]}"
                for d, v in points[:origin]:
                    train.writerow([name, d.isoformat(), f"{v:.6f}"])
                for d, v in points[origin : origin + HORIZON]:
                    actual.writerow([name, d.isoformat(), f"{v:.6f}"])


if __name__ == "__main__":
    main()
