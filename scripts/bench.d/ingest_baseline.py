#!/usr/bin/env python3
"""The Python polars baseline for `scripts/bench ingest`: the same work costcast does on a FOCUS
CSV — read, drop rows without a cost, take the kept tags from the `Tags` JSON, and sum the cost
per day and dimensions — with polars' streaming engine.

usage: ingest_baseline.py FILE.csv  → prints one JSON line: seconds, rows, groups, peak_rss_mb
"""
import json
import resource
import sys
import time

import polars as pl

path = sys.argv[1]
t0 = time.perf_counter()
lf = pl.scan_csv(path, infer_schema_length=0, null_values=["NULL", ""])
out = (
    lf.filter(pl.col("EffectiveCost").is_not_null())
    .with_columns(
        pl.col("ChargePeriodStart").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("day"),
        pl.col("EffectiveCost").cast(pl.Float64),
        pl.col("Tags").str.json_path_match("$.team").alias("team"),
        pl.col("Tags").str.json_path_match("$.env").alias("env"),
    )
    .group_by(["day", "BillingCurrency", "ServiceProviderName", "SubAccountId", "ServiceName",
               "ServiceCategory", "ChargeCategory", "RegionId", "team", "env"])
    .agg(pl.col("EffectiveCost").sum(), pl.len().alias("rows"))
    .collect(engine="streaming")
)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"engine": "python-polars " + pl.__version__, "seconds": round(seconds, 3),
                  "rows": int(out["rows"].sum()), "groups": out.height, "total": round(out["EffectiveCost"].sum(), 2),
                  "peak_rss_mb": round(peak, 1)}))
