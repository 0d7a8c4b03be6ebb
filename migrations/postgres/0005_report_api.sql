-- A budget's mode as set through the report API (POST /api/v1/budgets/{name}/mode); it wins
-- over the config file's until removed, so an on-call engineer can stop a budget acting
-- without a config deploy.
CREATE TABLE budget_modes (
    budget  TEXT PRIMARY KEY,
    mode    TEXT NOT NULL,        -- observe | enforce
    set_at  TIMESTAMPTZ NOT NULL
);

-- The report API lists a budget's actions newest first.
CREATE INDEX action_log_budget ON action_log (budget, id);
