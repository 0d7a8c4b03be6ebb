//! Legacy AWS CUR ingestion (the real anonymized sample) into both stores: sums to the cent,
//! charge categories in FOCUS terms, idempotence, and refused bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const SAMPLE: &str = "aws_cur_legacy_anonymized_2023-11.csv";

fn source_toml(path: &str) -> String {
    format!("[[sources]]\nname = \"cur\"\nkind = \"aws-cur\"\npath = \"{path}\"\n")
}

/// Per-day sums of `lineItem/UnblendedCost` and per-line-item-type sums, read with the csv
/// crate directly.
fn independent_sums(path: &Path) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (day, cost, kind) = (
        col("lineItem/UsageStartDate"),
        col("lineItem/UnblendedCost"),
        col("lineItem/LineItemType"),
    );
    let (mut by_day, mut by_kind) = (BTreeMap::new(), BTreeMap::new());
    for r in reader.records() {
        let r = r.unwrap();
        let amount: f64 = r[cost].parse().unwrap();
        *by_day.entry(r[day][..10].to_string()).or_insert(0.0) += amount;
        *by_kind.entry(r[kind].to_string()).or_insert(0.0) += amount;
    }
    (by_day, by_kind)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cur_sample_matches_an_independent_sum_to_the_cent() {
    let sample = fixture(SAMPLE);
    let (by_day, by_kind) = independent_sums(&sample);
    assert_eq!(by_day.len(), 14, "the sample covers 2023-11-01..14");
    for db in both_dbs().await {
        let ctx = context(config(
            &source_toml(&sample.display().to_string()),
            Path::new("/"),
            &db,
        ))
        .await;
        let report = ingest(&ctx).await.expect("the CUR sample ingests");
        assert_eq!(report.stages[0].counts["rows_read"], 1281, "{}", db.backend);
        let stored = daily_totals(&ctx.store).await;
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            by_day.keys().collect::<Vec<_>>()
        );
        for (day, want) in &by_day {
            assert!(
                (stored[day] - want).abs() < 0.005,
                "{} {day}: {} vs {want}",
                db.backend,
                stored[day]
            );
        }

        // Line item types become FOCUS charge categories; tax stays apart from usage.
        let series = ctx.store.series().await.unwrap();
        let mut by_category: BTreeMap<String, f64> = BTreeMap::new();
        let ids: BTreeMap<i64, String> = series
            .iter()
            .map(|s| (s.id, s.dims.charge_category.clone()))
            .collect();
        for (id, _, amount) in ctx.store.daily_costs(None, None).await.unwrap() {
            *by_category.entry(ids[&id].clone()).or_default() += amount;
        }
        assert_eq!(by_category.keys().collect::<Vec<_>>(), ["Tax", "Usage"]);
        assert!((by_category["Tax"] - by_kind["Tax"]).abs() < 0.005);
        assert!(
            series
                .iter()
                .all(|s| s.dims.provider == "AWS" && s.dims.account == "123412340534")
        );
        assert!(
            series
                .iter()
                .any(|s| s.dims.service == "Amazon Simple Storage Service")
        );
        assert!(series.iter().any(|s| s.dims.region == "ca-central-1"));

        // Idempotent.
        let before = ctx.store.cost_summary().await.unwrap();
        ingest(&ctx).await.expect("again");
        let after = ctx.store.cost_summary().await.unwrap();
        assert_eq!((before.points, before.total), (after.points, after.total));
        ctx.store.close().await;
    }
}

/// The sample with one cell replaced; `line` counts the header as line 1.
fn corrupt(line: usize, column: &str, value: &str) -> String {
    corrupt_fixture(SAMPLE, line, column, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cur_input_names_the_line_and_column_and_stores_nothing() {
    let good = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    let renamed = good.replacen("lineItem/UnblendedCost", "lineItem/Unblended", 1);
    for (bad, fragments) in [
        (
            corrupt(900, "lineItem/UnblendedCost", "12,5"),
            vec![
                "line 900",
                "column lineItem/UnblendedCost",
                "\"12,5\" is not a number",
            ],
        ),
        (
            corrupt(42, "lineItem/UsageStartDate", "11/01/2023"),
            vec![
                "line 42",
                "column lineItem/UsageStartDate",
                "not a UTC date",
            ],
        ),
        (
            renamed,
            vec!["missing mandatory column lineItem/UnblendedCost"],
        ),
    ] {
        for db in both_dbs().await {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("cur.csv");
            std::fs::write(&file, &good).unwrap();
            let ctx = context(config(&source_toml("cur.csv"), dir.path(), &db)).await;
            ingest(&ctx).await.expect("the good file ingests");
            let before = daily_totals(&ctx.store).await;

            std::fs::write(&file, &bad).unwrap();
            let err = ingest(&ctx).await.expect_err("refused").to_string();
            assert!(err.contains("cur.csv"), "{err}");
            for f in &fragments {
                assert!(err.contains(f), "{}: {err:?} lacks {f:?}", db.backend);
            }
            assert_eq!(
                daily_totals(&ctx.store).await,
                before,
                "{}: nothing lost",
                db.backend
            );
            ctx.store.close().await;
        }
    }
}
