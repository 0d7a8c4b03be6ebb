#!/usr/bin/env python3
"""Writes a deterministic FOCUS 1.2-style CSV export for the ingest benchmark.

usage: gen_focus.py OUT.csv [ROWS] [SEED]

Hourly charges over one year from 1,500 line-item templates — a template is one (provider,
account, service, region, charge category, tags) combination, as a real account uses some
services in some regions under some tags — drawn from 3 providers, 40 accounts, 60 services,
12 regions, every charge category (Usage 97%, then Purchase, Tax, Credit, Adjustment) and a
`Tags` JSON column of 270 distinct strings. Templates are drawn with skew (a few carry most
rows), so the export sums to a few hundred thousand (day, combination) groups, as real ones do.
"""
import sys

import numpy as np
import polars as pl

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
rng = np.random.default_rng(seed)

providers = np.array(["AWS", "Microsoft", "Google Cloud"])
accounts = np.array([f"{100000000000 + 7919 * i}" for i in range(40)])
services = np.array([f"Service {i:02d}" for i in range(60)])
categories_of_service = np.array(["Compute", "Storage", "Databases", "Networking", "AI and Machine Learning", "Analytics"])
regions = np.array(["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1",
                    "eastus", "westeurope", "northeurope", "us-central1", "europe-west1", "asia-east1"])
charge = np.array(["Usage", "Purchase", "Tax", "Credit", "Adjustment"])
teams = [f"team-{i:02d}" for i in range(18)]
envs = ["prod", "staging", "dev"]
apps = [f"app-{i}" for i in range(5)]
tags = np.array([f'{{"team": "{t}", "env": "{e}", "app": "{a}"}}' for t in teams for e in envs for a in apps])
assert len(tags) == 270

templates = 1500
t_provider = rng.integers(0, 3, templates)
t_account = rng.integers(0, len(accounts), templates)
t_service = rng.integers(0, len(services), templates)
t_region = rng.integers(0, len(regions), templates)
t_kind = rng.choice(len(charge), templates, p=[0.97, 0.01, 0.01, 0.005, 0.005])
t_tags = rng.integers(0, len(tags), templates)
weights = 1.0 / np.arange(1, templates + 1) ** 0.8
template = rng.choice(templates, rows, p=weights / weights.sum())

hours = rng.integers(0, 365 * 24, rows)
start = np.datetime64("2025-01-01T00:00:00")
stamps = (start + hours.astype("timedelta64[h]")).astype(str)
service = t_service[template]
kind = t_kind[template]
cost = np.round(rng.gamma(1.2, 0.8, rows), 10)
cost = np.where(kind == 3, -cost, cost)

df = pl.DataFrame({
    "BillingAccountId": np.full(rows, "900000000001"),
    "ChargePeriodStart": np.char.add(stamps, "Z"),
    "BillingCurrency": np.full(rows, "USD"),
    "ServiceProviderName": providers[t_provider[template]],
    "SubAccountId": accounts[t_account[template]],
    "ServiceName": services[service],
    "ServiceCategory": categories_of_service[service % len(categories_of_service)],
    "ChargeCategory": charge[kind],
    "RegionId": regions[t_region[template]],
    "BilledCost": np.round(cost * 1.08, 10),
    "EffectiveCost": cost,
    "Tags": tags[t_tags[template]],
})
df.write_csv(out)
print(f"{out}: {rows} rows")
