-- Backtest accuracy per series and model, as each forecast run (or `costcast backtest`)
-- measured it: the accuracy reports and budgets publish.
CREATE TABLE forecast_accuracy (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    series      TEXT NOT NULL,
    model       TEXT NOT NULL,
    windows     INTEGER NOT NULL,
    horizon     INTEGER NOT NULL,
    mape        REAL,
    smape       REAL,
    mase        REAL,
    total_error REAL,
    bias        REAL,
    coverage80  REAL NOT NULL,
    coverage95  REAL NOT NULL,
    PRIMARY KEY (run_id, series, model)
);

-- The backtest error of each budget's forecast, next to the evaluation it qualifies.
ALTER TABLE budget_evaluations ADD COLUMN forecast_error REAL;
