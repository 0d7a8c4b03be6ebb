"""Writes the cost data the API benchmark serves: SERIES daily series × DAYS days ending
yesterday, as two CSV files ready for PostgreSQL's COPY and SQLite's .import.

    python3 gen_api_store.py OUT_DIR SERIES DAYS [SEED]

series.csv:      id,source,provider,account,service,service_category,charge_category,region,tags,currency
cost_points.csv: series_id,day,amount

Series are accounts × services × regions with a team tag, and each has a lognormal level, a
weekly pattern, a trend and noise, so group sizes are as uneven as real bills.
"""

import csv
import datetime as dt
import math
import random
import sys


def main() -> None:
    out, n_series, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 42)
    services = [f"Service {i:02d}" for i in range(40)]
    regions = [f"region-{i}" for i in range(10)]
    teams = ["ml", "data", "web", "payments", "search", "platform", "mobile", "ads"]
    accounts = max(1, math.ceil(n_series / (len(services) * len(regions))))
    last = dt.date.today() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    day_text = [(first + dt.timedelta(days=d)).isoformat() for d in range(days)]
    weekday = [(first + dt.timedelta(days=d)).weekday() for d in range(days)]
    with open(f"{out}/series.csv", "w", newline="") as sf, open(f"{out}/cost_points.csv", "w", newline="") as pf:
        sw, pw = csv.writer(sf), csv.writer(pf)
        sid = 0
        for a in range(accounts):
            for s in services:
                for r in regions:
                    sid += 1
                    if sid > n_series:
                        return
                    team = teams[(a + services.index(s)) % len(teams)]
                    sw.writerow([sid, "bench", "AWS", f"{100000000000 + a}", s, "Compute", "Usage", r,
                                 '{"team":"%s"}' % team, "USD"])
                    level = rng.lognormvariate(2.0, 1.2)
                    trend = rng.uniform(-0.0005, 0.002)
                    weekend = rng.uniform(0.6, 1.0)
                    for d in range(days):
                        v = level * (1 + trend * d) * (weekend if weekday[d] >= 5 else 1.0)
                        v *= rng.uniform(0.9, 1.1)
                        pw.writerow([sid, day_text[d], f"{v:.4f}"])


if __name__ == "__main__":
    main()
