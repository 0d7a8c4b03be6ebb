-- Backtest accuracy per series and model, as each forecast run (or `costcast backtest`)
-- measured it: the accuracy reports and budgets publish.
CREATE TABLE forecast_accuracy (
    run_id      BIGINT NOT NULL REFERENCES runs (id),
    series      TEXT NOT NULL,
    model       TEXT NOT NULL,
    windows     INTEGER NOT NULL,
    horizon     INTEGER NOT NULL,
    mape        DOUBLE PRECISION,
    smape       DOUBLE PRECISION,
    mase        DOUBLE PRECISION,
    total_error DOUBLE PRECISION,
    bias        DOUBLE PRECISION,
    coverage80  DOUBLE PRECISION NOT NULL,
    coverage95  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, series, model)
);

-- The backtest error of each budget's forecast, next to the evaluation it qualifies.
ALTER TABLE budget_evaluations ADD COLUMN forecast_error DOUBLE PRECISION;
