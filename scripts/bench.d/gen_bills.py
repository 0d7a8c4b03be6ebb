#!/usr/bin/env python3
"""A second generator of daily cloud bills, with structure gen_series.py lacks.

Each bill draws its shape at random, so no one structure dominates:
- history of 120 to 900 days (short histories are common: a new account, a new team);
- growth that is flat, linear, declining, or an S-curve ramp (a launch) caught at any phase:
  before it, climbing, flattening or long done;
- a weekday cycle that is office-shaped, weekend-heavy (consumer traffic) or has one batch day;
- charges on a day of the month other than the 1st (the 15th, the last day, any day), every
  quarter, or once a year, billed with usage (no charge category to tell them apart);
- holiday dips (the last week of December) and promotion peaks (the Friday after the fourth
  Thursday of November and the weekend after it);
- a commitment discount that cuts cost late, and level changes (up or down) at any age from 2 to
  60 days before the cut;
- runaway jobs of 1 to 4 days that come back, scale-to-zero gaps;
- noise whose size grows with the level, and a noise floor on small bills.

Modes:
  bills   N OUT.csv SEED   N bills; each holds out its last 30 days
  stress  N OUT.csv SEED   N bills with one step of -40 % to +80 %, each cut at several ages
                           (days since the step: 1, 2, 3, 5, 7, 10, 14, 21); ids end in @aAGE

Writes long CSV: series_id,date,cost,split (split is train or test).
"""
import csv
import datetime as dt
import math
import random
import sys

HORIZON = 30
END = dt.date(2026, 1, 15)
STRESS_AGES = [1, 2, 3, 5, 7, 10, 14, 21]


def last_day(d):
    nxt = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (nxt - dt.timedelta(days=1)).day


def thanksgiving_friday(year):
    nov1 = dt.date(year, 11, 1)
    first_thu = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + dt.timedelta(days=22)


def shape(rng, days, start, late=True):
    """Returns the noise-free daily bill and a description of its parts."""
    level = math.exp(rng.uniform(math.log(3), math.log(30_000)))
    growth_kind = rng.choice(["flat", "linear", "decline", "ramp", "ramp", "ramp"])
    rate = rng.uniform(0.1, 1.0) / 365
    # A logistic ramp from 20 % to 100 % of the level; the midpoint anywhere from well before
    # the history to after the cut, so every phase of a launch appears.
    ramp_mid = rng.uniform(-0.3, 1.1) * days
    ramp_width = rng.uniform(10, 90)
    weekly = rng.choice(["office", "office", "weekend", "batch", "none"])
    weekly_amp = rng.uniform(0.1, 0.6)
    batch_day = rng.randrange(7)
    charges = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        kind = rng.choice(["monthly", "monthly", "quarterly", "yearly"])
        dom = rng.choice([1, 15, "last", rng.randint(2, 28)])
        charges.append(
            {
                "kind": kind,
                "dom": dom,
                "month": rng.randint(1, 12),
                "amount": level * rng.uniform(0.5, 8.0) * (4 if kind != "monthly" else 1),
            }
        )
    holiday = rng.choice([0.0, 0.0, 0.2, 0.4])
    promo = rng.choice([0.0, 0.0, 0.5, 1.5])
    steps = []
    for _ in range(rng.choice([0, 0, 1, 2]) if late else 0):
        steps.append((days - rng.randint(2, 60) - HORIZON, rng.uniform(0.5, 1.8)))
    if rng.random() < 0.2:
        steps.append((rng.randint(30, max(31, days - 60)), rng.uniform(0.4, 2.5)))
    discount_at = days - HORIZON - rng.randint(2, 60) if late and rng.random() < 0.15 else None
    discount = rng.uniform(0.15, 0.4)
    out = []
    for t in range(days):
        d = start + dt.timedelta(days=t)
        v = level
        if growth_kind == "linear":
            v *= 1 + rate * t
        elif growth_kind == "decline":
            v *= max(0.2, 1 - 0.6 * rate * t)
        elif growth_kind == "ramp":
            v *= 0.2 + 0.8 / (1 + math.exp(-(t - ramp_mid) / ramp_width))
        wd = d.weekday()
        if weekly == "office":
            v *= 1 + weekly_amp * (0.4 if wd < 5 else -1.0)
        elif weekly == "weekend":
            v *= 1 + weekly_amp * (-0.4 if wd < 5 else 1.0)
        elif weekly == "batch" and wd == batch_day:
            v *= 1 + 3 * weekly_amp
        for at, factor in steps:
            if t >= at:
                v *= factor
        if discount_at is not None and t >= discount_at:
            v *= 1 - discount
        if d.month == 12 and d.day >= 24 or d.month == 1 and d.day == 1:
            v *= 1 - holiday
        tf = thanksgiving_friday(d.year)
        if 0 <= (d - tf).days <= 3:
            v *= 1 + promo
        fee = 0.0
        for c in charges:
            dom = last_day(d) if c["dom"] == "last" else c["dom"]
            if d.day != dom:
                continue
            if c["kind"] == "monthly" or (
                c["kind"] == "quarterly" and (d.month - c["month"]) % 3 == 0
            ) or (c["kind"] == "yearly" and d.month == c["month"]):
                fee += c["amount"] * 0.15
        out.append((v, fee))
    return out


def noisy(rng, clean):
    """Noise that grows with the level (larger bills wobble less in share, more in dollars), runaway
    jobs that come back, and scale-to-zero gaps."""
    days = len(clean)
    base = rng.uniform(0.03, 0.18)
    spikes = {}
    for _ in range(rng.choice([0, 1, 2, 4])):
        at = rng.randrange(days - HORIZON)
        for k in range(rng.randint(1, 4)):
            spikes[at + k] = rng.uniform(1.8, 6)
    gap = None
    if rng.random() < 0.08:
        g0 = rng.randrange(20, max(21, days - HORIZON - 20))
        gap = (g0, g0 + rng.randrange(3, 15))
    out = []
    for t, (v, fee) in enumerate(clean):
        sd = base * (1 + 0.3 * math.log10(1 + v / 1000))
        x = v * math.exp(rng.gauss(0, sd)) + fee
        if t in spikes:
            x *= spikes[t]
        if gap and gap[0] <= t < gap[1]:
            x = 0.0
        out.append(max(x, 0.0))
    return out


def write(w, sid, start, values, cut):
    for t, v in enumerate(values[: cut + HORIZON]):
        d = start + dt.timedelta(days=t)
        w.writerow([sid, d.isoformat(), f"{v:.4f}", "train" if t < cut else "test"])


def main():
    mode, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["series_id", "date", "cost", "split"])
        for i in range(n):
            if mode == "bills":
                days = rng.choice([120, 200, 400, 600, 800, 900]) + HORIZON
                start = END - dt.timedelta(days=days - 1 - rng.randrange(0, 200))
                values = noisy(rng, shape(rng, days, start))
                write(w, f"b{i:05d}", start, values, days - HORIZON)
            elif mode == "stress":
                history = rng.choice([200, 400, 800])
                days = history + max(STRESS_AGES) + HORIZON
                start = END - dt.timedelta(days=days - 1 - rng.randrange(0, 200))
                clean = shape(rng, days, start, late=False)
                step_at = history
                step = rng.uniform(-0.4, 0.8)
                clean = [
                    ((v * (1 + step) if t >= step_at else v), fee) for t, (v, fee) in enumerate(clean)
                ]
                values = noisy(rng, clean)
                for age in STRESS_AGES:
                    write(w, f"x{i:05d}{step:+.2f}@a{age:02d}", start, values, step_at + age)
            else:
                raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
