//! FOCUS billing exports (FOCUS 1.0 to 1.2): CSV, gzipped CSV or Parquet.
//!
//! Either way a file is first summed to (day × distinct raw values of the kept columns) — by
//! [`super::rollup`] for CSV, by polars' lazy engine for Parquet — so what reaches the conversion
//! numbers the distinct combinations, not the export's lines. The `Tags` JSON is then parsed
//! once per distinct string: real exports repeat a few hundred tag strings across millions of
//! rows, and JSON parsing is what dominates otherwise.

use std::path::Path;

use polars::prelude::*;

use super::export::{self, Conversion, CsvLayout, Field, Slot, TagColumns, Totals};
use super::rollup::{Combination, Rollup};
use super::{Batch, IngestError};
use crate::config::FocusSource;
use crate::domain::{DayRange, Dimensions};

/// Timestamps FOCUS allows in `ChargePeriodStart`: a date, optionally a time, optionally marked
/// UTC. Real exports write `2024-09-01 00:00:00` as often as `2024-09-01T00:00:00Z`.
const UTC_TIMESTAMP: &str =
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]00:?00)?$";

const DAY: &str = "ChargePeriodStart";
const CURRENCY: &str = "BillingCurrency";
const TAGS: &str = "Tags";

/// Columns that become dimensions, with the FOCUS names each may go by (newest first).
const DIMENSION_COLUMNS: [(Slot, &[&str]); 6] = [
    (Slot::Provider, &["ServiceProviderName", "ProviderName"]),
    (Slot::Account, &["SubAccountId"]),
    (Slot::Service, &["ServiceName"]),
    (Slot::ServiceCategory, &["ServiceCategory"]),
    (Slot::ChargeCategory, &["ChargeCategory"]),
    (Slot::Region, &["RegionId"]),
];

/// Of the dimension columns, those without which a row means nothing.
const MANDATORY: [Slot; 3] = [Slot::Provider, Slot::Service, Slot::ChargeCategory];

/// Reads every file the source's path or glob matches.
pub fn fetch(
    source: &str,
    settings: &FocusSource,
    range: Option<DayRange>,
) -> Result<Batch, IngestError> {
    export::fetch_files(source, &settings.path, range, |file, totals| {
        if export::is_parquet(file) {
            read_parquet(file, source, settings, range, totals)
        } else {
            let base = conversion(source, settings);
            export::read_csv(file, &layout(settings), base, range, totals)
        }
    })
}

/// The FOCUS columns costcast reads.
fn layout(settings: &FocusSource) -> CsvLayout<'static> {
    CsvLayout {
        day: DAY,
        cost: settings.cost_column.column(),
        currency: CURRENCY,
        dims: &DIMENSION_COLUMNS,
        required: &MANDATORY,
        tags: TagColumns::Json(TAGS),
    }
}

/// How FOCUS values become dimensions (the kept columns are filled in per file).
fn conversion<'a>(source: &'a str, settings: &'a FocusSource) -> Conversion<'a> {
    Conversion {
        source,
        fields: Vec::new(),
        required: Vec::new(),
        tag_keys: &settings.tag_keys,
        defaults: Dimensions::default(),
        map: |_, _| None,
    }
}

/// Reads one FOCUS Parquet file with polars, adding its daily amounts inside `range` to
/// `totals`; returns the number of rows read. Columns may be typed (datetimes, floats) or text.
fn read_parquet(
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
    let path = PlRefPath::new(file.to_string_lossy().as_ref());
    let mut lf = LazyFrame::scan_parquet(path, ScanArgsParquet::default()).map_err(unreadable)?;
    let schema = lf.collect_schema().map_err(unreadable)?;
    let missing = |column: &'static str| IngestError::MissingColumn {
        file: file.to_path_buf(),
        column: column.to_string(),
    };
    let cost_column = settings.cost_column.column();
    for required in [DAY, cost_column, CURRENCY] {
        if schema.get(required).is_none() {
            return Err(missing(required));
        }
    }

    let (day, day_valid) = day_column(&schema);
    let cost = col(cost_column).cast(DataType::Float64);
    let cost_valid = cost.clone().is_not_null().and(cost.clone().is_finite());

    let (dims, dims_valid) = dimension_columns(&schema).map_err(missing)?;
    let tags = match schema.get(TAGS) {
        Some(_) => col(TAGS).cast(DataType::String),
        None => lit(NULL).cast(DataType::String),
    };
    let row_ok = day_valid
        .clone()
        .and(cost_valid.clone())
        .and(col(CURRENCY).is_not_null())
        .and(dims_valid.clone());

    let columns = kept_columns(day, tags, dims, cost, row_ok);
    let group_keys: Vec<Expr> = ["day", "currency", "tags"]
        .into_iter()
        .chain(DIMENSION_COLUMNS.iter().map(|(slot, _)| slot_name(*slot)))
        .map(col)
        .collect();
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
        let checks = checks(cost_column, day_valid, cost_valid, dims_valid);
        return Err(locate_bad_row(file, lf, checks));
    }
    let rows = column_sum(&df, "rows").map_err(unreadable)?;
    let (rollup, fields) = to_rollup(&df, range).map_err(unreadable)?;
    let layout = layout(settings);
    let mut conversion = conversion(source, settings);
    conversion.fields = fields;
    conversion.required = MANDATORY.map(|slot| (slot, layout.names(slot))).to_vec();
    let locate = |c: &Combination, field: usize| {
        let column = &conversion.fields[field].1;
        let value = c.values[field].as_deref().unwrap_or_default();
        first_row_with(&lf, column, value)
    };
    export::accumulate(file, rollup, &conversion, &locate, totals)?;
    Ok(rows)
}

/// The columns summed per group: the day as a day number, currency, tags, the dimensions,
/// the cost, and whether the row is valid.
fn kept_columns(day: Expr, tags: Expr, dims: Vec<Expr>, cost: Expr, row_ok: Expr) -> Vec<Expr> {
    let mut columns = vec![
        day.cast(DataType::Int32).alias("day"),
        col(CURRENCY).cast(DataType::String).alias("currency"),
        tags.alias("tags"),
    ];
    columns.extend(dims);
    columns.push(cost.alias("cost"));
    columns.push(row_ok.alias("ok"));
    columns
}

/// The day of each row as a date, and whether it is one: text must be a UTC date or
/// timestamp, typed columns are cast.
fn day_column(schema: &Schema) -> (Expr, Expr) {
    let day_raw = col(DAY);
    match schema.get(DAY) {
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
                .str()
                .contains(lit(UTC_TIMESTAMP), true)
                .fill_null(lit(false));
            (parsed.clone(), shape_ok.and(parsed.is_not_null()))
        }
        _ => {
            let parsed = day_raw.cast(DataType::Date);
            (parsed.clone(), parsed.is_not_null())
        }
    }
}

/// One text column per dimension slot (the first of its FOCUS names present), and whether the
/// mandatory ones are all set; `Err` names a mandatory column the file lacks.
fn dimension_columns(schema: &Schema) -> Result<(Vec<Expr>, Expr), &'static str> {
    let mut dims = Vec::new();
    let mut dims_valid = lit(true);
    for (slot, candidates) in DIMENSION_COLUMNS {
        let name = slot_name(slot);
        let present: Vec<Expr> = candidates
            .iter()
            .filter(|c| schema.get(c).is_some())
            .map(|c| col(*c).cast(DataType::String))
            .collect();
        if present.is_empty() {
            if MANDATORY.contains(&slot) {
                return Err(candidates[candidates.len() - 1]);
            }
            dims.push(lit("").alias(name));
            continue;
        }
        let value = coalesce(&present);
        if MANDATORY.contains(&slot) {
            dims_valid = dims_valid.and(value.clone().is_not_null());
        }
        dims.push(value.fill_null(lit("")).alias(name));
    }
    Ok((dims, dims_valid))
}

/// What a row must satisfy, for naming the first that does not.
fn checks(cost_column: &'static str, day: Expr, cost: Expr, dims: Expr) -> [Check<'static>; 4] {
    [
        Check {
            column: DAY,
            raw: Some(DAY),
            valid: day,
            problem: "is not a UTC date or timestamp (YYYY-MM-DD[ HH:MM:SS][Z])",
        },
        Check {
            column: cost_column,
            raw: Some(cost_column),
            valid: cost,
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
            valid: dims,
            problem: "is empty",
        },
    ]
}

fn column_sum(df: &DataFrame, name: &str) -> PolarsResult<u64> {
    Ok(df.column(name)?.u64()?.iter().flatten().sum())
}

/// Where row `row` (0-based) of a Parquet file is, as a person would count it.
fn location(row: u64) -> String {
    format!("row {}", row + 1)
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
                location: location(row),
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
fn first_row_with(lf: &LazyFrame, column: &str, value: &str) -> String {
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
        Some(row) => location(row),
        None => "(row not found)".to_string(),
    }
}

/// The alias of a dimension column in the grouped frame.
fn slot_name(slot: Slot) -> &'static str {
    match slot {
        Slot::Provider => "provider",
        Slot::Account => "account",
        Slot::Service => "service",
        Slot::ServiceCategory => "service_category",
        Slot::ChargeCategory => "charge_category",
        Slot::Region => "region",
    }
}

/// The grouped frame as a [`Rollup`], so Parquet and CSV share one conversion; the fields name
/// the FOCUS column each value came from, for errors.
fn to_rollup(
    df: &DataFrame,
    range: Option<DayRange>,
) -> PolarsResult<(Rollup, Vec<(Field, String)>)> {
    let mut fields = vec![
        (Field::Currency, CURRENCY.to_string()),
        (Field::TagsJson, TAGS.to_string()),
    ];
    let mut names = vec!["currency", "tags"];
    for (slot, candidates) in DIMENSION_COLUMNS {
        fields.push((Field::Dim(slot), candidates.join("/")));
        names.push(slot_name(slot));
    }
    let columns: Vec<Vec<Option<String>>> = names
        .iter()
        .map(|n| -> PolarsResult<Vec<Option<String>>> {
            Ok(df
                .column(n)?
                .str()?
                .iter()
                .map(|v| v.filter(|v| !v.is_empty()).map(str::to_string))
                .collect())
        })
        .collect::<PolarsResult<_>>()?;
    let days = df.column("day")?.i32()?;
    let costs = df.column("cost")?.f64()?;
    let window = export::window(range);
    let mut rollup = Rollup::default();
    let mut index: std::collections::HashMap<Vec<Option<String>>, u32> = Default::default();
    for i in 0..df.height() {
        let (Some(day), Some(cost)) = (days.get(i), costs.get(i)) else {
            continue;
        };
        rollup.rows += 1;
        if window.is_some_and(|w| day < w.from || day > w.to) {
            continue;
        }
        let values: Vec<Option<String>> = columns.iter().map(|c| c[i].clone()).collect();
        let next = rollup.combinations.len() as u32;
        let id = *index.entry(values.clone()).or_insert_with(|| {
            rollup.combinations.push(Combination {
                values,
                first_line: 0,
            });
            next
        });
        *rollup.sums.entry((day, id)).or_default() += cost;
    }
    Ok((rollup, fields))
}
