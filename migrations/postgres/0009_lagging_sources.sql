-- Sources of the budget's scope that did not refresh or are too old to act on, as a JSON array.
-- NULL when every source was fresh, and for evaluations stored before this was recorded.
ALTER TABLE budget_evaluations ADD COLUMN lagging TEXT;
