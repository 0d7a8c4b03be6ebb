//! FOCUS billing exports (FOCUS 1.0 to 1.2), CSV or Parquet, through polars' lazy engine.
//!
//! The file is aggregated to (day × dimensions × raw `Tags` string) inside polars, so the rows
//! that reach Rust number the distinct combinations, not the export's lines. The `Tags` JSON is
//! then parsed once per distinct string: real exports repeat a few hundred tag strings across
//! millions of rows, and JSON parsing is what dominates otherwise.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{Batch, IngestError};
use crate::config::FocusSource;
use crate::domain::{CostPoint, Currency, Day, DayRange, Dimensions, Money};

/// Timestamps FOCUS allows in `ChargePeriodStart`: a date, optionally a time, optionally marked
/// UTC. Real exports write `2024-09-01 00:00:00` as often as `2024-09-01T00:00:00Z`.
const UTC_TIMESTAMP: &str =
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]00:?00)?$";

const DAY: &str = "ChargePeriodStart";
const CURRENCY: &str = "BillingCurrency";
const TAGS: &str = "Tags";

/// Columns that become dimensions, with the FOCUS names each may go by (newest first).
const DIMENSION_COLUMNS: [(&str, &[&str]); 6] = [
    ("provider", &["ServiceProviderName", "ProviderName"]),
    ("account", &["SubAccountId"]),
    ("service", &["ServiceName"]),
    ("service_category", &["ServiceCategory"]),
    ("charge_category", &["ChargeCategory"]),
    ("region", &["RegionId"]),
];

/// Of the dimension columns, those without which a row means nothing.
const MANDATORY_DIMENSIONS: [&str; 3] = ["provider", "service", "charge_category"];

/// Reads every file the source's path or glob matches.
pub fn fetch(
    source: &str,
    settings: &FocusSource,
    range: Option<DayRange>,
) -> Result<Batch, IngestError> {
    let pattern = settings.path.to_string_lossy().to_string();
    let mut files: Vec<PathBuf> = glob::glob(&pattern)
        .map_err(|e| IngestError::Unreadable {
            file: settings.path.clone(),
            message: format!("bad glob: {e}"),
        })?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(IngestError::NoFiles { pattern });
    }

    let mut totals = Totals::new();
    let mut rows_read = 0;
    for file in &files {
        rows_read += read_file(file, source, settings, range, &mut totals)?;
    }
    let points: Vec<CostPoint> = totals
        .into_iter()
        .map(|((day, dims, currency), amount)| CostPoint {
            day,
            dims,
            cost: Money::new(amount, currency),
        })
        .collect();
    let covered = match range {
        Some(r) => Some(r),
        None => match (
            points.iter().map(|p| p.day).min(),
            points.iter().map(|p| p.day).max(),
        ) {
            (Some(a), Some(b)) => DayRange::new(a, b).ok(),
            _ => None,
        },
    };
    Ok(Batch {
        source: source.to_string(),
        files,
        points,
        rows_read,
        covered,
    })
}

/// Daily amounts by (day, series, currency), summed across every file of a source.
type Totals = BTreeMap<(Day, Dimensions, Currency), f64>;

fn is_parquet(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

fn scan(file: &Path) -> PolarsResult<LazyFrame> {
    let path = PlRefPath::new(file.to_string_lossy().as_ref());
    if is_parquet(file) {
        LazyFrame::scan_parquet(path, ScanArgsParquet::default())
    } else {
        // Every column is read as text, so a bad cell becomes an error that names it rather
        // than a silently inferred type.
        LazyCsvReader::new(path)
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_null_values(Some(NullValues::AllColumns(vec!["NULL".into(), "".into()])))
            .finish()
    }
}

/// Reads one FOCUS file, adding its daily amounts inside `range` to `totals`; returns the
/// number of rows read.
fn read_file(
    file: &Path,
    source: &str,
    settings: &FocusSource,
    range: Option<DayRange>,
    totals: &mut Totals,
) -> Result<u64, IngestError> {
    let unreadable = |e: PolarsError| IngestError::Unreadable {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    let mut lf = scan(file).map_err(unreadable)?;
    let schema = lf.collect_schema().map_err(unreadable)?;
    let missing = |column: &str| IngestError::MissingColumn {
        file: file.to_path_buf(),
        column: column.to_string(),
    };
    let cost_column = settings.cost_column.column();
    for required in [DAY, cost_column, CURRENCY] {
        if schema.get(required).is_none() {
            return Err(missing(required));
        }
    }

    let day_raw = col(DAY);
    let (day, day_valid) = match schema.get(DAY) {
        Some(DataType::String) => {
            let parsed =
                day_raw
                    .clone()
                    .str()
                    .slice(lit(0), lit(10))
                    .str()
                    .to_date(StrptimeOptions {
                        format: Some("%Y-%m-%d".into()),
                        strict: false,
                        exact: true,
                        cache: true,
                    });
            let shape_ok = day_raw
                .clone()
                .str()
                .contains(lit(UTC_TIMESTAMP), true)
                .fill_null(lit(false));
            (parsed.clone(), shape_ok.and(parsed.is_not_null()))
        }
        _ => {
            let parsed = day_raw.clone().cast(DataType::Date);
            (parsed.clone(), parsed.is_not_null())
        }
    };
    let cost = col(cost_column).cast(DataType::Float64);
    let cost_valid = cost.clone().is_not_null().and(cost.clone().is_finite());

    let mut dims = Vec::new();
    let mut dims_valid = lit(true);
    for (name, candidates) in DIMENSION_COLUMNS {
        let present: Vec<Expr> = candidates
            .iter()
            .filter(|c| schema.get(c).is_some())
            .map(|c| col(*c).cast(DataType::String))
            .collect();
        if present.is_empty() {
            if MANDATORY_DIMENSIONS.contains(&name) {
                return Err(missing(candidates[candidates.len() - 1]));
            }
            dims.push(lit("").alias(name));
            continue;
        }
        let value = coalesce(&present);
        if MANDATORY_DIMENSIONS.contains(&name) {
            dims_valid = dims_valid.and(value.clone().is_not_null());
        }
        dims.push(value.fill_null(lit("")).alias(name));
    }
    let tags = if schema.get(TAGS).is_some() {
        col(TAGS).cast(DataType::String)
    } else {
        lit(NULL).cast(DataType::String)
    };
    let row_ok = day_valid
        .clone()
        .and(cost_valid.clone())
        .and(col(CURRENCY).is_not_null())
        .and(dims_valid.clone());

    let mut columns = vec![
        day.cast(DataType::Int32).alias("day"),
        col(CURRENCY).cast(DataType::String).alias("currency"),
        tags.alias("tags"),
    ];
    columns.extend(dims);
    let group_keys: Vec<Expr> = ["day", "currency", "tags"]
        .into_iter()
        .chain(DIMENSION_COLUMNS.iter().map(|(name, _)| *name))
        .map(col)
        .collect();
    columns.push(cost.alias("cost"));
    columns.push(row_ok.alias("ok"));
    let df = lf
        .clone()
        .select(columns)
        .group_by(group_keys)
        .agg([
            col("cost").sum(),
            len().cast(DataType::UInt64).alias("rows"),
            col("ok").not().cast(DataType::UInt64).sum().alias("bad"),
        ])
        .collect()
        .map_err(unreadable)?;

    let bad = column_sum(&df, "bad").map_err(unreadable)?;
    if bad > 0 {
        let checks = [
            Check {
                column: DAY,
                raw: Some(DAY),
                valid: day_valid,
                problem: "is not a UTC date or timestamp (YYYY-MM-DD[ HH:MM:SS][Z])",
            },
            Check {
                column: cost_column,
                raw: Some(cost_column),
                valid: cost_valid,
                problem: "is not a number",
            },
            Check {
                column: CURRENCY,
                raw: Some(CURRENCY),
                valid: col(CURRENCY).is_not_null(),
                problem: "is empty",
            },
            Check {
                column: "ServiceProviderName/ProviderName, ServiceName or ChargeCategory",
                raw: None,
                valid: dims_valid,
                problem: "is empty",
            },
        ];
        return Err(locate_bad_row(file, lf, checks));
    }
    let rows = column_sum(&df, "rows").map_err(unreadable)?;
    accumulate(file, &lf, &df, source, &settings.tag_keys, range, totals)?;
    Ok(rows)
}

fn column_sum(df: &DataFrame, name: &str) -> PolarsResult<u64> {
    Ok(df.column(name)?.u64()?.iter().flatten().sum())
}

/// Where row `row` (0-based, header excluded) is, as a person opening the file would say it.
fn location(file: &Path, row: u64) -> String {
    if is_parquet(file) {
        format!("row {}", row + 1)
    } else {
        // Line 1 is the header. Quoted fields spanning lines would shift this; FOCUS exports
        // do not write them.
        format!("line {}", row + 2)
    }
}

/// Finds the first row failing one of `checks` and says which column and value.
/// A validity rule for a row, and how to name its failure.
struct Check<'a> {
    /// The column(s) named in the error.
    column: &'a str,
    /// The column whose value is quoted in the error, if a single one is at fault.
    raw: Option<&'a str>,
    /// True for rows that pass.
    valid: Expr,
    /// What is wrong, after the quoted value.
    problem: &'a str,
}

fn locate_bad_row<const N: usize>(
    file: &Path,
    lf: LazyFrame,
    checks: [Check<'_>; N],
) -> IngestError {
    let mut select = vec![col("__row")];
    let mut any_bad = lit(false);
    for (i, check) in checks.iter().enumerate() {
        let bad = check.valid.clone().not().fill_null(lit(true));
        select.push(bad.clone().alias(format!("bad{i}")));
        if let Some(raw) = check.raw {
            select.push(col(raw).cast(DataType::String).alias(format!("raw{i}")));
        }
        any_bad = any_bad.or(bad);
    }
    let found = lf
        .with_row_index("__row", None)
        .filter(any_bad)
        .select(select)
        .limit(1)
        .collect();
    let unreadable = |e: PolarsError| IngestError::Unreadable {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    let df = match found {
        Ok(df) => df,
        Err(e) => return unreadable(e),
    };
    let cell = |name: &str| -> Option<AnyValue<'_>> { df.column(name).ok()?.get(0).ok() };
    let row = match cell("__row") {
        Some(AnyValue::UInt32(r)) => r as u64,
        Some(AnyValue::UInt64(r)) => r,
        _ => 0,
    };
    for (i, check) in checks.iter().enumerate() {
        if matches!(cell(&format!("bad{i}")), Some(AnyValue::Boolean(true))) {
            let problem = match cell(&format!("raw{i}")) {
                Some(AnyValue::Null) => "is empty".to_string(),
                Some(v) => match v.get_str() {
                    Some(text) => format!("{text:?} {}", check.problem),
                    None => check.problem.to_string(),
                },
                None => check.problem.to_string(),
            };
            return IngestError::BadValue {
                file: file.to_path_buf(),
                location: location(file, row),
                column: check.column.to_string(),
                problem,
            };
        }
    }
    IngestError::Unreadable {
        file: file.to_path_buf(),
        message: "a row failed validation but could not be located".into(),
    }
}

/// The first row whose column `column` equals `value`, for errors found after aggregation.
fn first_row_with(file: &Path, lf: &LazyFrame, column: &str, value: &str) -> String {
    let found = lf
        .clone()
        .with_row_index("__row", None)
        .filter(col(column).cast(DataType::String).eq(lit(value)))
        .select([col("__row").cast(DataType::UInt64)])
        .limit(1)
        .collect();
    match found
        .ok()
        .and_then(|df| df.column("__row").ok()?.u64().ok()?.get(0))
    {
        Some(row) => location(file, row),
        None => "(row not found)".to_string(),
    }
}

/// Adds aggregated rows inside `range` to `totals`: tag JSON parsed once per distinct string,
/// days and currencies converted, rows that now share a key (tags that differ only in keys
/// not kept, or the same day in another file) merged.
fn accumulate(
    file: &Path,
    lf: &LazyFrame,
    df: &DataFrame,
    source: &str,
    tag_keys: &[String],
    range: Option<DayRange>,
    totals: &mut Totals,
) -> Result<(), IngestError> {
    let internal = |e: PolarsError| IngestError::Unreadable {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    let strs = |name: &str| -> Result<Vec<Option<String>>, IngestError> {
        Ok(df
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(internal)?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let days: Vec<Option<i32>> = df
        .column("day")
        .and_then(|c| c.i32().cloned())
        .map_err(internal)?
        .iter()
        .collect();
    let costs: Vec<Option<f64>> = df
        .column("cost")
        .and_then(|c| c.f64().cloned())
        .map_err(internal)?
        .iter()
        .collect();
    let currencies = strs("currency")?;
    let tags = strs("tags")?;
    let dim_values: Vec<Vec<Option<String>>> = DIMENSION_COLUMNS
        .iter()
        .map(|(name, _)| strs(name))
        .collect::<Result<_, _>>()?;

    let epoch = Day::from_ymd(1970, 1, 1).expect("the epoch is a valid date");
    let mut parsed_tags: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut parsed_currencies: HashMap<String, Currency> = HashMap::new();
    for i in 0..df.height() {
        let (Some(day), Some(cost)) = (days[i], costs[i]) else {
            continue;
        };
        let day = epoch.add_days(day as i64);
        if range.is_some_and(|r| !r.contains(day)) {
            continue;
        }
        let raw_currency = currencies[i].clone().unwrap_or_default();
        let currency = match parsed_currencies.get(&raw_currency) {
            Some(c) => c.clone(),
            None => {
                let c = Currency::parse(&raw_currency).map_err(|e| IngestError::BadValue {
                    file: file.to_path_buf(),
                    location: first_row_with(file, lf, CURRENCY, &raw_currency),
                    column: CURRENCY.to_string(),
                    problem: e.to_string(),
                })?;
                parsed_currencies.insert(raw_currency, c.clone());
                c
            }
        };
        let kept_tags = match &tags[i] {
            None => BTreeMap::new(),
            Some(raw) => match parsed_tags.get(raw) {
                Some(t) => t.clone(),
                None => {
                    let t =
                        select_tags(raw, tag_keys).map_err(|problem| IngestError::BadValue {
                            file: file.to_path_buf(),
                            location: first_row_with(file, lf, TAGS, raw),
                            column: TAGS.to_string(),
                            problem,
                        })?;
                    parsed_tags.insert(raw.clone(), t.clone());
                    t
                }
            },
        };
        let value = |d: usize| dim_values[d][i].clone().unwrap_or_default();
        let dims = Dimensions {
            source: source.to_string(),
            provider: value(0),
            account: value(1),
            service: value(2),
            service_category: value(3),
            charge_category: value(4),
            region: value(5),
            tags: kept_tags,
        };
        *totals.entry((day, dims, currency)).or_default() += cost;
    }
    Ok(())
}

/// Keeps the configured keys of a FOCUS `Tags` JSON object. Values that are not strings are
/// kept as their JSON text.
fn select_tags(raw: &str, keys: &[String]) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        let shown: String = raw.chars().take(60).collect();
        format!("{shown:?} is not a JSON object ({e})")
    })?;
    let object = value.as_object().ok_or_else(|| {
        let shown: String = raw.chars().take(60).collect();
        format!("{shown:?} is not a JSON object")
    })?;
    Ok(keys
        .iter()
        .filter_map(|k| {
            let v = object.get(k)?;
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => return None,
                other => other.to_string(),
            };
            Some((k.clone(), text))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_only_the_configured_keys() {
        let t = select_tags(
            r#"{"team": "ml", "env": "prod", "n": 3}"#,
            &["team".into(), "n".into()],
        )
        .unwrap();
        assert_eq!(t.get("team").map(String::as_str), Some("ml"));
        assert_eq!(t.get("n").map(String::as_str), Some("3"));
        assert!(!t.contains_key("env"));
    }

    #[test]
    fn tags_that_are_not_an_object_are_refused() {
        assert!(select_tags("[1,2]", &[]).is_err());
        assert!(select_tags("{team:", &[]).is_err());
    }
}
