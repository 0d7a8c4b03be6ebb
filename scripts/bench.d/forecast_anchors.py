#!/usr/bin/env python3
"""Runs one anchor forecasting engine on train.csv and writes its 30-day forecasts in costcast's
format (series_id,date,mean,lo80,hi80,lo95,hi95). Prints one JSON line with the timing.

Engines, one core each (n_jobs=1), as a user would call them:
  statsforecast-mstl     MSTL(season_length=[7, 365]) with an AutoETS trend
  statsforecast-autoets  AutoETS(season_length=7)
  prophet                Prophet() with defaults (80% interval only)
  seasonal-naive         statsforecast SeasonalNaive(season_length=7)
Forecasts are clipped at zero, as anyone forecasting cost would do; it only helps the engines.

usage: forecast_anchors.py ENGINE TRAIN.csv OUT.csv [HORIZON]
"""
import json
import logging
import sys
import time

import numpy as np
import pandas as pd

HORIZON = int(sys.argv[4]) if len(sys.argv) > 4 else 30


def statsforecast_engine(name):
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, SeasonalNaive

    model = {
        "statsforecast-mstl": lambda: MSTL(season_length=[7, 365], trend_forecaster=AutoETS(model="ZZN")),
        "statsforecast-autoets": lambda: AutoETS(season_length=7),
        "seasonal-naive": lambda: SeasonalNaive(season_length=7),
    }[name]

    def run(df):
        sf = StatsForecast(models=[model()], freq="D", n_jobs=1)
        fc = sf.forecast(df=df, h=HORIZON, level=[80, 95])
        if "unique_id" not in fc.columns:
            fc = fc.reset_index()
        label = [c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
        return pd.DataFrame(
            {
                "series_id": fc["unique_id"],
                "date": pd.to_datetime(fc["ds"]).dt.strftime("%Y-%m-%d"),
                "mean": fc[label],
                "lo80": fc[f"{label}-lo-80"],
                "hi80": fc[f"{label}-hi-80"],
                "lo95": fc[f"{label}-lo-95"],
                "hi95": fc[f"{label}-hi-95"],
            }
        )

    return run


def prophet_engine(df):
    from prophet import Prophet

    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).disabled = True
    out = []
    for sid, g in df.groupby("unique_id", sort=False):
        m = Prophet(interval_width=0.8)
        m.fit(g[["ds", "y"]])
        fc = m.predict(m.make_future_dataframe(periods=HORIZON, include_history=False))
        out.append(
            pd.DataFrame(
                {
                    "series_id": sid,
                    "date": fc["ds"].dt.strftime("%Y-%m-%d"),
                    "mean": fc["yhat"],
                    "lo80": fc["yhat_lower"],
                    "hi80": fc["yhat_upper"],
                    "lo95": np.nan,
                    "hi95": np.nan,
                }
            )
        )
    return pd.concat(out)


def main():
    engine, train, out = sys.argv[1:4]
    df = pd.read_csv(train).rename(columns={"series_id": "unique_id", "date": "ds", "value": "y"})
    df["ds"] = pd.to_datetime(df["ds"])
    run = prophet_engine if engine == "prophet" else statsforecast_engine(engine)
    # Compile and load everything once before timing (numba JIT, the Stan model).
    first = df["unique_id"].iloc[0]
    run(df[df["unique_id"] == first])
    started = time.perf_counter()
    fc = run(df)
    seconds = time.perf_counter() - started
    for c in ("mean", "lo80", "hi80", "lo95", "hi95"):
        fc[c] = fc[c].clip(lower=0)
    fc.to_csv(out, index=False, float_format="%.4f")
    n = df["unique_id"].nunique()
    print(json.dumps({"engine": engine, "series": n, "seconds": seconds, "ms_per_series": 1000 * seconds / n}))


if __name__ == "__main__":
    main()
