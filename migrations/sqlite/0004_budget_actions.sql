-- Hysteresis: what each budget remembers between evaluations.
CREATE TABLE budget_state (
    budget        TEXT PRIMARY KEY,
    period_start  DATE NOT NULL,
    last_day      DATE NOT NULL,
    status        TEXT NOT NULL,
    steps         INTEGER,            -- ladder steps in effect; NULL when not acting
    calm_days     INTEGER NOT NULL DEFAULT 0,
    over_at_step  DOUBLE PRECISION NOT NULL DEFAULT 0,  -- projected overrun when the step was reached
    alerted       TEXT,               -- JSON: the status and steps last alerted, and the day
    updated_run   INTEGER NOT NULL REFERENCES runs (id)
);

-- The ladder position each evaluation led to, and the series driving it.
ALTER TABLE budget_evaluations ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE budget_evaluations ADD COLUMN drivers TEXT NOT NULL DEFAULT '[]';

-- Objects costcast has changed and not yet restored: one row per object, so two budgets
-- never hold the same object. The same record is kept in the object's annotation.
CREATE TABLE throttled_objects (
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    budget      TEXT NOT NULL,
    step        INTEGER NOT NULL,
    fields      TEXT NOT NULL,        -- JSON: [{field, original, set}]
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    PRIMARY KEY (kind, namespace, name)
);
CREATE INDEX throttled_objects_budget ON throttled_objects (budget);

-- Every operation on every object, with its outcome.
CREATE TABLE action_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    budget      TEXT NOT NULL,
    step        INTEGER NOT NULL,
    operation   TEXT NOT NULL,        -- apply | restore
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    fields      TEXT NOT NULL,
    outcome     TEXT NOT NULL,        -- done | planned | skipped | conflict | failed
    detail      TEXT NOT NULL
);
CREATE INDEX action_log_run ON action_log (run_id);

-- SQLite has no advisory locks: a row with an expiry stands in for one, so a runner that died
-- holding it does not block the next one for longer than the expiry.
CREATE TABLE leader_lock (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
