-- One row per cost series: the dimensions a source reports a cost under.
CREATE TABLE series (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    source           TEXT NOT NULL,
    provider         TEXT NOT NULL,
    account          TEXT NOT NULL,
    service          TEXT NOT NULL,
    service_category TEXT NOT NULL,
    charge_category  TEXT NOT NULL,
    region           TEXT NOT NULL,
    tags             TEXT NOT NULL,  -- canonical JSON object of the configured tag keys
    currency         TEXT NOT NULL,
    UNIQUE (source, provider, account, service, service_category, charge_category, region, tags, currency)
);

-- One row per series and day: re-ingesting a day replaces it.
CREATE TABLE cost_points (
    series_id INTEGER NOT NULL REFERENCES series (id),
    day       TEXT NOT NULL,
    amount    REAL NOT NULL,
    PRIMARY KEY (series_id, day)
);
CREATE INDEX cost_points_day ON cost_points (day);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT NOT NULL DEFAULT 'running',  -- running | ok | failed
    detail      TEXT NOT NULL DEFAULT '{}'         -- JSON: per-stage counts and errors
);

CREATE TABLE forecasts (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    series      TEXT NOT NULL,
    model       TEXT NOT NULL,
    history_end TEXT NOT NULL,
    note        TEXT,
    day         TEXT NOT NULL,
    mean        REAL NOT NULL,
    lo80        REAL NOT NULL,
    hi80        REAL NOT NULL,
    lo95        REAL NOT NULL,
    hi95        REAL NOT NULL,
    sd_level    REAL NOT NULL,  -- error shared by every day of the horizon
    sd_noise    REAL NOT NULL,  -- error independent from day to day
    PRIMARY KEY (run_id, series, day)
);
CREATE INDEX forecasts_series ON forecasts (series, run_id);

CREATE TABLE anomalies (
    run_id   INTEGER NOT NULL REFERENCES runs (id),
    series   TEXT NOT NULL,
    day      TEXT NOT NULL,
    actual   REAL NOT NULL,
    expected REAL NOT NULL,
    PRIMARY KEY (run_id, series, day)
);

CREATE TABLE budget_evaluations (
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    budget          TEXT NOT NULL,
    as_of           TEXT NOT NULL,
    period_start    TEXT NOT NULL,
    period_end      TEXT NOT NULL,
    amount          REAL NOT NULL,
    currency        TEXT NOT NULL,
    actual_to_date  REAL NOT NULL,
    reported_through TEXT,
    forecast_days   INTEGER NOT NULL,
    projected       REAL NOT NULL,
    lo80            REAL NOT NULL,
    hi80            REAL NOT NULL,
    p_breach        REAL NOT NULL,
    status          TEXT NOT NULL,
    mode            TEXT NOT NULL,
    PRIMARY KEY (run_id, budget)
);
CREATE INDEX budget_evaluations_budget ON budget_evaluations (budget, run_id);

CREATE TABLE planned_changes (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    budget      TEXT NOT NULL,
    step        INTEGER NOT NULL,
    action      TEXT NOT NULL,  -- JSON of the action kind and its parameters
    namespaces  TEXT NOT NULL,  -- JSON array
    selector    TEXT NOT NULL,
    description TEXT NOT NULL,
    mode        TEXT NOT NULL,
    outcome     TEXT NOT NULL,  -- planned | applied | failed
    PRIMARY KEY (run_id, budget, step)
);

CREATE TABLE alerts (
    run_id   INTEGER NOT NULL REFERENCES runs (id),
    channel  TEXT NOT NULL,
    payload  TEXT NOT NULL,     -- the JSON body sent (or that would be sent)
    outcome  TEXT NOT NULL,     -- sent | not-configured | failed: ...
    PRIMARY KEY (run_id, channel)
);
