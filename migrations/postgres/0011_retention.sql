-- The cost data's version, bumped by every write of cost or usage data: readers that cache
-- the data (the report API) reload exactly when it changed, whatever order runs finish in.
CREATE TABLE cost_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO cost_generation (id, generation) VALUES (1, 0);

-- Retention prunes by run age; the latest reads look up the newest run of each key.
CREATE INDEX runs_started ON runs (started_at);
CREATE INDEX alerts_channel ON alerts (channel, run_id);
CREATE INDEX forecast_accuracy_series ON forecast_accuracy (series, model, run_id);
CREATE INDEX schedule_claims_tick ON schedule_claims (tick);
