-- One row per scheduled tick of a job that some `costcast serve` replica started: every
-- replica's scheduler fires at the same second, and the one whose insert lands runs it.
CREATE TABLE schedule_claims (
    job         TEXT NOT NULL,
    tick        TIMESTAMPTZ NOT NULL,     -- the cron occurrence, not when it fired
    claimed_by  TEXT NOT NULL,     -- host and process id
    PRIMARY KEY (job, tick)
);
