#!/usr/bin/env python3
"""Runs one anchor forecasting engine on train.csv and writes its 30-day forecasts in costcast's
format (series_id,date,mean,lo80,hi80,lo95,hi95). Prints one JSON line with the timing.

Engines, one core each (n_jobs=1), as a user would call them:
  statsforecast-mstl     MSTL(season_length=[7, 365]) with an AutoETS trend (weekly only on
                         series shorter than two years, which MSTL cannot fit a year on)
  statsforecast-autoets  AutoETS(season_length=7), damped trends allowed
  statsforecast-theta    AutoTheta(season_length=7)
  statsforecast-mfles    MFLES(season_length=[7, 365]) (weekly only under two years), conformal
                         intervals
  seasonal-naive         statsforecast SeasonalNaive(season_length=7)
  run-rate               the mean of the last 7 days, every day; interval from the last 28 days
  lightgbm               mlforecast, one LightGBM model over all series of a set and cut (lags 7,
                         14, 28, rolling means, calendar features, log1p target), conformal
                         intervals
  prophet                Prophet() with defaults (80% interval only)
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
    from statsforecast.models import MFLES, MSTL, AutoETS, AutoTheta, SeasonalNaive
    from statsforecast.utils import ConformalIntervals

    def seasons(long):
        return [7, 365] if long else [7]

    model = {
        "statsforecast-mstl": lambda long: MSTL(season_length=seasons(long), trend_forecaster=AutoETS(model="ZZN")),
        "statsforecast-autoets": lambda long: AutoETS(season_length=7),
        "statsforecast-theta": lambda long: AutoTheta(season_length=7),
        "statsforecast-mfles": lambda long: MFLES(
            season_length=seasons(long),
            prediction_intervals=ConformalIntervals(h=HORIZON, n_windows=2),
        ),
        "seasonal-naive": lambda long: SeasonalNaive(season_length=7),
    }[name]

    def run(df):
        sizes = df.groupby("unique_id")["y"].transform("size")
        parts = [(long, df[(sizes >= 2 * 365) == long]) for long in (True, False)]
        return pd.concat([run_part(part, long) for long, part in parts if len(part)])

    def run_part(df, long):
        sf = StatsForecast(models=[model(long)], freq="D", n_jobs=1)
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


def run_rate_engine(df):
    from statistics import NormalDist

    out = []
    z80, z95 = NormalDist().inv_cdf(0.9), NormalDist().inv_cdf(0.975)
    for sid, g in df.groupby("unique_id", sort=False):
        y = g["y"].to_numpy()
        rate = y[-7:].mean()
        sd = y[-28:].std(ddof=1) if len(y) >= 8 else 0.25 * rate
        days = pd.date_range(g["ds"].iloc[-1] + pd.Timedelta(days=1), periods=HORIZON, freq="D")
        out.append(
            pd.DataFrame(
                {
                    "series_id": sid,
                    "date": days.strftime("%Y-%m-%d"),
                    "mean": rate,
                    "lo80": rate - z80 * sd,
                    "hi80": rate + z80 * sd,
                    "lo95": rate - z95 * sd,
                    "hi95": rate + z95 * sd,
                }
            )
        )
    return pd.concat(out)


def lightgbm_engine(df):
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import GlobalSklearnTransformer
    from mlforecast.utils import PredictionIntervals
    from sklearn.preprocessing import FunctionTransformer

    log1p = FunctionTransformer(func=np.log1p, inverse_func=np.expm1)
    out = []
    # One global model per set, as a user would train one per kind of series. Cuts of one
    # series (a real series' rolling windows, a stress bill's ages) go to different models:
    # a later cut holds an earlier cut's held-out days, which a shared model would learn.
    set_of = df["unique_id"].str.split("/", regex=False).str[0].str.split("@", regex=False).str[0]
    cut_of = df["unique_id"].str.extract(r"@(.*)$", expand=False).fillna("")
    df = df.assign(set=set_of + "@" + cut_of)
    for _, part in df.groupby("set", sort=False):
        part = part.drop(columns="set")
        short = part.groupby("unique_id")["y"].transform("size") < 3 * HORIZON + 28
        part = part[~short]
        fcst = MLForecast(
            models={"lgb": lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=31, verbose=-1, n_jobs=1)},
            freq="D",
            lags=[7, 14, 28],
            lag_transforms={7: [RollingMean(window_size=7)], 28: [RollingMean(window_size=28)]},
            date_features=["dayofweek", "day", "month"],
            target_transforms=[GlobalSklearnTransformer(log1p)],
            num_threads=1,
        )
        fcst.fit(part, prediction_intervals=PredictionIntervals(n_windows=2, h=HORIZON))
        fc = fcst.predict(HORIZON, level=[80, 95])
        out.append(
            pd.DataFrame(
                {
                    "series_id": fc["unique_id"],
                    "date": pd.to_datetime(fc["ds"]).dt.strftime("%Y-%m-%d"),
                    "mean": fc["lgb"],
                    "lo80": fc["lgb-lo-80"],
                    "hi80": fc["lgb-hi-80"],
                    "lo95": fc["lgb-lo-95"],
                    "hi95": fc["lgb-hi-95"],
                }
            )
        )
    missing = set(df["unique_id"]) - set(pd.concat(out)["series_id"])
    if missing:
        # Series too short for the lags get the run rate, as a user of a global model would.
        out.append(run_rate_engine(df[df["unique_id"].isin(missing)].drop(columns="set")))
    return pd.concat(out)


def main():
    engine, train, out = sys.argv[1:4]
    df = pd.read_csv(train).rename(columns={"series_id": "unique_id", "date": "ds", "value": "y"})
    df["ds"] = pd.to_datetime(df["ds"])
    run = {"prophet": prophet_engine, "run-rate": run_rate_engine, "lightgbm": lightgbm_engine}.get(engine) or statsforecast_engine(engine)
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
