-- Days a source still marks as estimated (Cost Explorer): re-fetched until final.
CREATE TABLE estimated_days (
    source TEXT NOT NULL,
    day    TEXT NOT NULL,
    PRIMARY KEY (source, day)
);

-- Daily usage per namespace (Prometheus): core-hours, GiB-hours, GPU-hours, business units.
CREATE TABLE usage_points (
    source    TEXT NOT NULL,
    day       TEXT NOT NULL,
    namespace TEXT NOT NULL,
    labels    TEXT NOT NULL,  -- canonical JSON object of the kept labels
    metric    TEXT NOT NULL,  -- cpu_core_hours | memory_gib_hours | gpu_hours | units:NAME
    quantity  REAL NOT NULL,
    PRIMARY KEY (source, day, namespace, labels, metric)
);
CREATE INDEX usage_points_day ON usage_points (day);
