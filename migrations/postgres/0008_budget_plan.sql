-- The current month against its planned amount, as JSON, for budgets with a monthly plan.
-- NULL for budgets without one and for evaluations stored before plans existed.
ALTER TABLE budget_evaluations ADD COLUMN plan TEXT;
