-- What each forecast series does (trend class, seasonality, recent change), as JSON: one value
-- per series, repeated on its rows like the model and note. NULL on forecasts stored before.
ALTER TABLE forecasts ADD COLUMN shape TEXT;
