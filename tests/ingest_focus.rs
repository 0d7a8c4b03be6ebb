//! FOCUS ingestion into both stores: exact sums, idempotence, Parquet, and bad input that is
//! refused with its file, line and column named while the stored data stays as it was.

mod common;

use std::path::Path;

use common::*;
use costcast::domain::RunOutcome;
use polars::prelude::*;

fn source_toml(path: &str, cost_column: &str) -> String {
    format!(
        "[[sources]]\nname = \"focus\"\nkind = \"focus\"\npath = \"{path}\"\ncost_column = \"{cost_column}\"\ntags = [\"application\", \"env\"]\n"
    )
}

fn assert_same_to_the_cent(
    stored: &std::collections::BTreeMap<String, f64>,
    expected: &std::collections::BTreeMap<String, f64>,
    backend: &str,
) {
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{backend}: days differ"
    );
    for (day, want) in expected {
        let got = stored[day];
        assert!(
            (got - want).abs() < 0.005,
            "{backend} {day}: stored {got} vs file {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_focus_sample_matches_an_independent_sum_to_the_cent() {
    let fixture = fixture("focus_1.0_sample_multicloud_1000.csv");
    for column in ["EffectiveCost", "BilledCost"] {
        let expected = independent_daily_sums(&fixture, column);
        assert_eq!(expected.len(), 30, "the sample covers September 2024");
        for db in both_dbs().await {
            let cfg = config(
                &source_toml(&fixture.display().to_string(), column),
                Path::new("/"),
                &db,
            );
            let ctx = context(cfg).await;
            let report = ingest(&ctx).await.expect("the sample ingests");
            assert_eq!(report.stages[0].counts["rows_read"], 1000, "{}", db.backend);
            assert_same_to_the_cent(&daily_totals(&ctx.store).await, &expected, db.backend);

            // NULL tags become no tag, and the configured tag keys become dimensions.
            let series = ctx.store.series().await.unwrap();
            assert!(
                series
                    .iter()
                    .any(|s| s.dims.tags.get("env").map(String::as_str) == Some("prod"))
            );
            assert!(series.iter().any(|s| s.dims.tags.is_empty()));
            assert!(series.iter().any(|s| s.dims.provider == "Oracle"));
            ctx.store.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reingesting_the_same_file_leaves_every_total_unchanged() {
    let fixture = fixture("focus_1.0_sample_multicloud_1000.csv");
    for db in both_dbs().await {
        let ctx = context(config(
            &source_toml(&fixture.display().to_string(), "EffectiveCost"),
            Path::new("/"),
            &db,
        ))
        .await;
        ingest(&ctx).await.unwrap();
        let first = daily_totals(&ctx.store).await;
        let points = ctx.store.cost_summary().await.unwrap().points;
        let report = ingest(&ctx).await.unwrap();
        assert_eq!(
            report.stages[0].counts["points_removed"] as i64, points,
            "{}",
            db.backend
        );
        assert_eq!(daily_totals(&ctx.store).await, first, "{}", db.backend);
        assert_eq!(
            ctx.store.cost_summary().await.unwrap().points,
            points,
            "{}",
            db.backend
        );
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_exports_ingest_to_the_same_totals_as_csv() {
    let fixture = fixture("focus_1.0_sample_multicloud_1000.csv");
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("sample.parquet");
    let mut df = LazyCsvReader::new(PlRefPath::new(fixture.display().to_string()))
        .with_null_values(Some(NullValues::AllColumnsSingle("NULL".into())))
        .with_infer_schema_length(None)
        // Typed as a Parquet export would be: timestamps as datetimes, costs as floats.
        .with_try_parse_dates(true)
        .finish()
        .unwrap()
        .collect()
        .unwrap();
    assert!(matches!(
        df.column("ChargePeriodStart").unwrap().dtype(),
        DataType::Datetime(_, _)
    ));
    assert_eq!(
        df.column("EffectiveCost").unwrap().dtype(),
        &DataType::Float64
    );
    ParquetWriter::new(std::fs::File::create(&parquet).unwrap())
        .finish(&mut df)
        .unwrap();

    let expected = independent_daily_sums(&fixture, "EffectiveCost");
    for db in both_dbs().await {
        let ctx = context(config(
            &source_toml(&parquet.display().to_string(), "EffectiveCost"),
            Path::new("/"),
            &db,
        ))
        .await;
        ingest(&ctx).await.expect("parquet ingests");
        assert_same_to_the_cent(&daily_totals(&ctx.store).await, &expected, db.backend);
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gzipped_csv_exports_ingest_to_the_same_totals() {
    use std::io::Write;
    let fixture = fixture("focus_1.0_sample_multicloud_1000.csv");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("sample.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    encoder
        .write_all(&std::fs::read(&fixture).unwrap())
        .unwrap();
    encoder.finish().unwrap();

    let expected = independent_daily_sums(&fixture, "EffectiveCost");
    for db in both_dbs().await {
        let ctx = context(config(
            &source_toml("*.csv.gz", "EffectiveCost"),
            dir.path(),
            &db,
        ))
        .await;
        ingest(&ctx).await.expect("gzipped CSV ingests");
        assert_same_to_the_cent(&daily_totals(&ctx.store).await, &expected, db.backend);
        ctx.store.close().await;
    }
}

/// The sample with one cell replaced; `line` counts the header as line 1.
fn corrupt(line: usize, column: &str, value: &str) -> String {
    corrupt_fixture("focus_1.0_sample_multicloud_1000.csv", line, column, value)
}

fn without_column(column: &str) -> String {
    let text = std::fs::read_to_string(fixture("focus_1.0_sample_multicloud_1000.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let i = headers.iter().position(|h| h == column).unwrap();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(
        headers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, h)| h),
    )
    .unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        out.write_record(
            record
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, f)| f),
        )
        .unwrap();
    }
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

/// Ingests the good fixture, swaps in `bad` content, and checks the error and that nothing
/// stored changed.
async fn refused_without_loss(bad: String, expected_fragments: &[&str]) {
    let good = std::fs::read_to_string(fixture("focus_1.0_sample_multicloud_1000.csv")).unwrap();
    for db in both_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.csv");
        std::fs::write(&file, &good).unwrap();
        let ctx = context(config(
            &source_toml("export.csv", "EffectiveCost"),
            dir.path(),
            &db,
        ))
        .await;
        ingest(&ctx).await.expect("the good file ingests");
        let before = daily_totals(&ctx.store).await;
        let points = ctx.store.cost_summary().await.unwrap().points;

        std::fs::write(&file, &bad).unwrap();
        let err = ingest(&ctx)
            .await
            .expect_err("bad input is refused")
            .to_string();
        assert!(
            err.contains("export.csv"),
            "{}: error does not name the file: {err}",
            db.backend
        );
        for fragment in expected_fragments {
            assert!(
                err.contains(fragment),
                "{}: error lacks {fragment:?}: {err}",
                db.backend
            );
        }
        assert_eq!(
            daily_totals(&ctx.store).await,
            before,
            "{}: stored totals changed",
            db.backend
        );
        assert_eq!(
            ctx.store.cost_summary().await.unwrap().points,
            points,
            "{}",
            db.backend
        );
        // The source failed alone: the run is recorded as partial, naming it.
        let runs = ctx.store.runs(1).await.unwrap();
        assert_eq!(runs[0].outcome, RunOutcome::Partial, "{}", db.backend);
        assert_eq!(
            runs[0].detail.failed_sources[0].source, "focus",
            "{}",
            db.backend
        );
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_numeric_cost_names_the_file_line_and_column_and_stores_nothing() {
    refused_without_loss(
        corrupt(42, "EffectiveCost", "12,5"),
        &[
            "line 42",
            "column EffectiveCost",
            "\"12,5\" is not a number",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unparseable_date_names_the_file_line_and_column_and_stores_nothing() {
    refused_without_loss(
        corrupt(777, "ChargePeriodStart", "2024-13-45 00:00:00"),
        &["line 777", "column ChargePeriodStart", "2024-13-45"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_utc_timestamp_is_refused_rather_than_shifted_to_the_wrong_day() {
    refused_without_loss(
        corrupt(5, "ChargePeriodStart", "2024-09-18T22:00:00+05:00"),
        &["line 5", "column ChargePeriodStart", "not a UTC"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_mandatory_column_is_named_and_stores_nothing() {
    refused_without_loss(
        without_column("EffectiveCost"),
        &["missing mandatory column EffectiveCost"],
    )
    .await;
    refused_without_loss(
        without_column("ServiceName"),
        &["missing mandatory column ServiceName"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_cost_cell_names_the_line() {
    refused_without_loss(
        corrupt(10, "EffectiveCost", ""),
        &["line 10", "column EffectiveCost", "is empty"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_tags_json_names_the_line_and_column() {
    refused_without_loss(
        corrupt(3, "Tags", "{\"application\": "),
        &["line 3", "column Tags", "not a JSON object"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_glob_that_matches_nothing_is_an_error_not_an_empty_ingest() {
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(config(
        &source_toml("exports/*.csv", "EffectiveCost"),
        dir.path(),
        &db,
    ))
    .await;
    let err = ingest(&ctx).await.unwrap_err().to_string();
    assert!(
        err.contains("no file matches") && err.contains("exports/*.csv"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_currency_that_is_not_iso_4217_names_the_line_and_column() {
    refused_without_loss(
        corrupt(12, "BillingCurrency", "US Dollar"),
        &[
            "line 12",
            "column BillingCurrency",
            "\"US Dollar\" is not an ISO 4217 currency code",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn focus_1_2_names_and_every_charge_category_are_kept() {
    let file = fixture("focus_1.2_charge_categories.csv");
    for db in both_dbs().await {
        let toml = format!(
            "[[sources]]\nname = \"gcp\"\nkind = \"focus\"\npath = \"{}\"\ntags = [\"team\"]\n",
            file.display()
        );
        let ctx = context(config(&toml, Path::new("/"), &db)).await;
        ingest(&ctx).await.expect("a FOCUS 1.2 file ingests");
        let series = ctx.store.series().await.unwrap();
        let by_id: std::collections::BTreeMap<i64, _> =
            series.iter().map(|s| (s.id, s.dims.clone())).collect();
        let mut by_category: std::collections::BTreeMap<String, f64> = Default::default();
        for (id, _, amount) in ctx.store.daily_costs(None, None).await.unwrap() {
            *by_category
                .entry(by_id[&id].charge_category.clone())
                .or_default() += amount;
        }
        let expected = [
            ("Adjustment", -0.25),
            ("Credit", -5.0),
            ("Purchase", 300.0),
            ("Tax", 21.0),
            ("Usage", 12.0),
        ];
        assert_eq!(
            by_category.keys().map(String::as_str).collect::<Vec<_>>(),
            expected.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            "{}",
            db.backend
        );
        for (category, amount) in expected {
            assert!((by_category[category] - amount).abs() < 1e-9, "{category}");
        }
        // ServiceProviderName (1.2) wins over the deprecated ProviderName.
        assert!(
            series
                .iter()
                .any(|s| s.dims.provider == "Marketplace Vendor")
        );
        assert!(
            series
                .iter()
                .any(|s| s.dims.tags.get("team").map(String::as_str) == Some("web"))
        );
        ctx.store.close().await;
    }
}

/// The rows of `fixture` whose ChargePeriodStart falls on one of `days` (`2024-09-03`), with
/// the EffectiveCost of those on `doubled` doubled.
fn rows_on(fixture: &Path, days: &[&str], doubled: &str) -> String {
    let mut reader = csv::Reader::from_path(fixture).expect("fixture opens");
    let headers = reader.headers().expect("header").clone();
    let (day_i, cost_i) = (
        column_of(&headers, "ChargePeriodStart"),
        column_of(&headers, "EffectiveCost"),
    );
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).expect("write header");
    for record in reader.records() {
        let mut fields: Vec<String> = record.expect("record").iter().map(String::from).collect();
        let day = fields[day_i][..10].to_string();
        if !days.contains(&day.as_str()) {
            continue;
        }
        if day == doubled {
            let cost: f64 = fields[cost_i].parse().expect("a number");
            fields[cost_i] = (2.0 * cost).to_string();
        }
        out.write_record(&fields).expect("write record");
    }
    String::from_utf8(out.into_inner().expect("flush")).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_replaces_the_days_it_holds_and_a_source_taken_out_stops_counting() {
    let sample = fixture("focus_1.0_sample_multicloud_1000.csv");
    for db in both_dbs().await {
        let b = db.backend;
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("export.csv");
        std::fs::copy(&sample, &export).unwrap();
        let glob = dir.path().join("*.csv").display().to_string();
        let ctx = context(config(
            &source_toml(&glob, "EffectiveCost"),
            Path::new("/"),
            &db,
        ))
        .await;
        ingest(&ctx).await.expect("the sample ingests");
        let month = daily_totals(&ctx.store).await;
        assert_eq!(month.len(), 30, "{b}");

        // The next export holds a correction of 5 September (its costs doubled) and 29 September
        // only: those two days are replaced, the 23 between them (11.76 of cost) and the rest are not.
        std::fs::write(
            &export,
            rows_on(&sample, &["2024-09-05", "2024-09-29"], "2024-09-05"),
        )
        .unwrap();
        let corrected = independent_daily_sums(&export, "EffectiveCost");
        assert!(corrected["2024-09-05"] > month["2024-09-05"] + 0.01, "{b}");
        let report = ingest(&ctx).await.expect("the correction ingests");
        assert_eq!(report.stages[0].counts["days_written"], 2, "{b}");
        let after = daily_totals(&ctx.store).await;
        assert_eq!(after.len(), 30, "{b}");
        for (day, total) in &after {
            let want = corrected.get(day).unwrap_or(&month[day]);
            assert!((total - want).abs() < 0.005, "{b} {day}: {total} vs {want}");
        }

        // The source renamed in the config: the old name's data is dropped, so only what the
        // new source read counts.
        let renamed =
            source_toml(&glob, "EffectiveCost").replace("name = \"focus\"", "name = \"finance\"");
        let ctx = context(config(&renamed, Path::new("/"), &db)).await;
        let report = ingest(&ctx).await.expect("the renamed source ingests");
        assert_eq!(report.stages[0].counts["sources_dropped"], 1, "{b}");
        assert_same_to_the_cent(&daily_totals(&ctx.store).await, &corrected, b);
        let series = ctx.store.series().await.unwrap();
        assert!(series.iter().all(|s| s.dims.source == "finance"), "{b}");
        ctx.store.close().await;
    }
}
