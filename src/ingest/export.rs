//! What file-based billing sources (FOCUS, legacy CUR) share: finding the files, and turning
//! summed combinations of raw column values into cost points.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::rollup::{self, Columns, Combination, DayWindow, Header, Rollup};
use super::{Batch, IngestError};
use crate::domain::{CostPoint, Currency, Day, DayRange, DaySpans, Dimensions, Money};

/// The files a path or glob matches, sorted; an error when there are none.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let pattern = path.to_string_lossy().to_string();
    let mut files: Vec<PathBuf> = glob::glob(&pattern)
        .map_err(|e| IngestError::Unreadable {
            file: path.to_path_buf(),
            message: format!("bad glob: {e}"),
        })?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(IngestError::NoFiles { pattern });
    }
    Ok(files)
}

/// Whether a file is Parquet (by extension); anything else is read as CSV, gzipped or not.
pub fn is_parquet(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// A fixed dimension a column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `provider`.
    Provider,
    /// `account`.
    Account,
    /// `service`.
    Service,
    /// `service_category`.
    ServiceCategory,
    /// `charge_category`.
    ChargeCategory,
    /// `region`.
    Region,
}

impl Slot {
    fn target(self, dims: &mut Dimensions) -> &mut String {
        match self {
            Slot::Provider => &mut dims.provider,
            Slot::Account => &mut dims.account,
            Slot::Service => &mut dims.service,
            Slot::ServiceCategory => &mut dims.service_category,
            Slot::ChargeCategory => &mut dims.charge_category,
            Slot::Region => &mut dims.region,
        }
    }
}

/// What a kept column means.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// The currency code.
    Currency,
    /// A dimension; when two columns fill one slot, the first non-empty wins.
    Dim(Slot),
    /// A FOCUS `Tags` JSON object.
    TagsJson,
    /// One tag's value, by key (CUR `resourceTags/user:KEY`).
    Tag(String),
}

/// How a source's kept columns become dimensions.
pub struct Conversion<'a> {
    /// The source's name.
    pub source: &'a str,
    /// Each kept column: what it means and its header name, in `Columns::kept` order.
    pub fields: Vec<(Field, String)>,
    /// Slots a row must fill, with the column name to blame when it does not.
    pub required: Vec<(Slot, String)>,
    /// Tag keys kept from `Tags` JSON.
    pub tag_keys: &'a [String],
    /// Values every row starts with (e.g. provider `AWS` for a CUR).
    pub defaults: Dimensions,
    /// Rewrites a raw value into costcast's vocabulary (e.g. CUR line item types).
    pub map: fn(Slot, &str) -> Option<String>,
}

/// Where a CSV layout keeps tags.
#[derive(Debug, Clone, Copy)]
pub enum TagColumns<'a> {
    /// One JSON object column (FOCUS `Tags`).
    Json(&'a str),
    /// One column per key, named a prefix plus the key (CUR `resourceTags/user:KEY`); the first
    /// prefix present wins.
    PerKey(&'a [&'a str]),
}

/// The columns of a billing CSV layout, by header name.
#[derive(Debug, Clone, Copy)]
pub struct CsvLayout<'a> {
    /// The charge day (a date or UTC timestamp).
    pub day: &'a str,
    /// The amount summed.
    pub cost: &'a str,
    /// The currency code.
    pub currency: &'a str,
    /// Dimension columns, with the names each may go by (preferred first).
    pub dims: &'a [(Slot, &'a [&'a str])],
    /// Slots a file must have a column for and a row a value in.
    pub required: &'a [Slot],
    /// Where tags are.
    pub tags: TagColumns<'a>,
}

impl CsvLayout<'_> {
    /// The names a slot's column may go by, for messages.
    pub fn names(&self, slot: Slot) -> String {
        self.dims
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, names)| names.join(" or "))
            .unwrap_or_default()
    }

    /// The kept columns of a file with this header, and what each means.
    fn columns(
        &self,
        file: &Path,
        header: &Header,
        tag_keys: &[String],
    ) -> Result<(Columns, Vec<(Field, String)>), IngestError> {
        let missing = |column: String| IngestError::MissingColumn {
            file: file.to_path_buf(),
            column,
        };
        let find = |name: &str| {
            header
                .find(&[name])
                .ok_or_else(|| missing(name.to_string()))
        };
        let (day, cost) = (find(self.day)?, find(self.cost)?);
        let mut kept = vec![find(self.currency)?];
        let mut fields = vec![(Field::Currency, self.currency.to_string())];
        for (slot, names) in self.dims {
            let before = kept.len();
            for name in *names {
                if let Some(i) = header.find(&[name]) {
                    kept.push(i);
                    fields.push((Field::Dim(*slot), name.to_string()));
                }
            }
            if kept.len() == before && self.required.contains(slot) {
                return Err(missing(self.names(*slot)));
            }
        }
        match self.tags {
            TagColumns::Json(column) => {
                if let Some(i) = header.find(&[column])
                    && !tag_keys.is_empty()
                {
                    kept.push(i);
                    fields.push((Field::TagsJson, column.to_string()));
                }
            }
            TagColumns::PerKey(prefixes) => {
                for key in tag_keys {
                    let names: Vec<String> = prefixes.iter().map(|p| format!("{p}{key}")).collect();
                    let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
                    if let Some(i) = header.find(&candidates) {
                        kept.push(i);
                        fields.push((Field::Tag(key.clone()), header.names()[i].clone()));
                    }
                }
            }
        }
        Ok((Columns { day, cost, kept }, fields))
    }
}

/// Streams one CSV file (plain or gzipped) of `layout` through [`rollup`] and adds its daily
/// amounts to `totals`; returns the rows read. `conversion` comes without fields: the header
/// decides them.
pub fn read_csv(
    file: &Path,
    layout: &CsvLayout<'_>,
    mut conversion: Conversion<'_>,
    range: Option<DayRange>,
    totals: &mut Totals,
) -> Result<u64, IngestError> {
    let mut fields = Vec::new();
    let choose = |header: &Header| {
        let (columns, f) = layout.columns(file, header, conversion.tag_keys)?;
        fields = f;
        Ok(columns)
    };
    let started = std::time::Instant::now();
    let rollup = rollup::sum_csv(file, choose, window(range))?;
    let rows = rollup.rows;
    tracing::debug!(
        file = %file.display(),
        rows,
        combinations = rollup.combinations.len(),
        groups = rollup.sums.len(),
        seconds = started.elapsed().as_secs_f64(),
        "File summed."
    );
    conversion.fields = fields;
    conversion.required = layout
        .required
        .iter()
        .map(|slot| (*slot, layout.names(*slot)))
        .collect();
    let locate = |c: &Combination, _: usize| format!("line {}", c.first_line);
    accumulate(file, rollup, &conversion, &locate, totals)?;
    Ok(rows)
}

/// Reads every file a source's path or glob matches with `read`, into one batch.
pub fn fetch_files(
    source: &str,
    path: &Path,
    range: Option<DayRange>,
    mut read: impl FnMut(&Path, &mut Totals) -> Result<u64, IngestError>,
) -> Result<Batch, IngestError> {
    let files = expand(path)?;
    let mut totals = Totals::new();
    let mut rows_read = 0;
    for file in &files {
        rows_read += read(file, &mut totals)?;
    }
    Ok(batch(source, files, totals, rows_read, range))
}

/// Daily amounts per series, summed across every file of a source. Series are interned, so
/// adding a day's amount is one hash of two integers, not a comparison of dimension strings.
#[derive(Debug, Default)]
pub struct Totals {
    series: Vec<(Dimensions, Currency)>,
    index: HashMap<(Dimensions, Currency), usize>,
    amounts: HashMap<(Day, usize), f64, foldhash::fast::RandomState>,
}

impl Totals {
    /// No amounts yet.
    pub fn new() -> Totals {
        Totals::default()
    }

    /// The index of a series, added if new.
    fn series_index(&mut self, dims: Dimensions, currency: Currency) -> usize {
        let next = self.series.len();
        *self
            .index
            .entry((dims.clone(), currency.clone()))
            .or_insert_with(|| {
                self.series.push((dims, currency));
                next
            })
    }

    /// The points, ordered by series and day.
    fn into_points(self) -> Vec<CostPoint> {
        let mut amounts: Vec<((Day, usize), f64)> = self.amounts.into_iter().collect();
        amounts.sort_by_key(|((day, series), _)| (*series, *day));
        amounts
            .into_iter()
            .map(|((day, series), amount)| {
                let (dims, currency) = &self.series[series];
                CostPoint {
                    day,
                    dims: dims.clone(),
                    cost: Money::new(amount, currency.clone()),
                }
            })
            .collect()
    }
}

/// Converts a file's rollup and adds it to `totals`. `locate` says where a combination first
/// appeared (`line N` or `row N`), for errors.
pub fn accumulate(
    file: &Path,
    rollup: Rollup,
    conversion: &Conversion<'_>,
    locate: &dyn Fn(&Combination, usize) -> String,
    totals: &mut Totals,
) -> Result<(), IngestError> {
    let epoch = Day::from_ymd(1970, 1, 1).expect("the epoch is a valid date");
    let mut parsed_tags: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut keys = Vec::with_capacity(rollup.combinations.len());
    for combination in &rollup.combinations {
        let bad = |field: usize, problem: String| IngestError::BadValue {
            file: file.to_path_buf(),
            location: locate(combination, field),
            column: conversion.fields[field].1.clone(),
            problem,
        };
        let (dims, currency) = series_of(combination, conversion, &mut parsed_tags, &bad)?;
        keys.push(totals.series_index(dims, currency));
    }
    for ((day, combination), amount) in rollup.sums {
        let series = keys[combination as usize];
        *totals
            .amounts
            .entry((epoch.add_days(i64::from(day)), series))
            .or_default() += amount;
    }
    Ok(())
}

/// The dimensions and currency of one combination of kept values; `bad` builds the error
/// naming a field of it.
fn series_of(
    combination: &Combination,
    conversion: &Conversion<'_>,
    parsed_tags: &mut HashMap<String, BTreeMap<String, String>>,
    bad: &dyn Fn(usize, String) -> IngestError,
) -> Result<(Dimensions, Currency), IngestError> {
    let mut dims = conversion.defaults.clone();
    dims.source = conversion.source.to_string();
    let mut filled: Vec<Slot> = Vec::new();
    let mut currency = None;
    for (i, (field, _)) in conversion.fields.iter().enumerate() {
        let Some(raw) = combination.values.get(i).and_then(Option::as_deref) else {
            continue;
        };
        match field {
            Field::Currency => {
                currency = Some(Currency::parse(raw).map_err(|e| bad(i, e.to_string()))?);
            }
            Field::Dim(slot) => {
                if !filled.contains(slot) {
                    *slot.target(&mut dims) =
                        (conversion.map)(*slot, raw).unwrap_or_else(|| raw.to_string());
                    filled.push(*slot);
                }
            }
            Field::TagsJson => {
                let tags = match parsed_tags.get(raw) {
                    Some(t) => t.clone(),
                    None => {
                        let t = select_tags(raw, conversion.tag_keys).map_err(|p| bad(i, p))?;
                        parsed_tags.insert(raw.to_string(), t.clone());
                        t
                    }
                };
                dims.tags.extend(tags);
            }
            Field::Tag(key) => {
                dims.tags.insert(key.clone(), raw.to_string());
            }
        }
    }
    let position = |wanted: Field| {
        conversion
            .fields
            .iter()
            .position(|(f, _)| *f == wanted)
            .unwrap_or(0)
    };
    for (slot, column) in &conversion.required {
        if slot.target(&mut dims).is_empty() {
            let mut e = bad(position(Field::Dim(*slot)), "is empty".into());
            if let IngestError::BadValue { column: c, .. } = &mut e {
                c.clone_from(column);
            }
            return Err(e);
        }
    }
    match currency {
        Some(c) => Ok((dims, c)),
        None => Err(bad(position(Field::Currency), "is empty".into())),
    }
}

/// The rollup window for an optional day range.
pub fn window(range: Option<DayRange>) -> Option<DayWindow> {
    let epoch = Day::from_ymd(1970, 1, 1).expect("the epoch is a valid date");
    range.map(|r| DayWindow {
        from: epoch.days_until(r.start()) as i32,
        to: epoch.days_until(r.end()) as i32,
    })
}

/// The batch for a file source: its points, and the days it covers (the requested range, or
/// the days the files hold, and none between them: a back-dated correction in this month's
/// file replaces its own day, not the weeks between it and this month), whose stored data it
/// replaces.
pub fn batch(
    source: &str,
    files: Vec<PathBuf>,
    totals: Totals,
    rows_read: u64,
    range: Option<DayRange>,
) -> Batch {
    let points = totals.into_points();
    let covered = match range {
        Some(range) => Some(DaySpans::of(range)),
        None => DaySpans::runs(points.iter().map(|p| p.day)),
    };
    Batch {
        source: source.to_string(),
        files,
        points,
        usage: Vec::new(),
        rows_read,
        covered,
        requests: 0,
        estimated: Vec::new(),
    }
}

/// Keeps the configured keys of a FOCUS `Tags` JSON object. Values that are not strings are
/// kept as their JSON text.
pub fn select_tags(raw: &str, keys: &[String]) -> Result<BTreeMap<String, String>, String> {
    let shown = || -> String { raw.chars().take(60).collect() };
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| format!("{:?} is not a JSON object ({e})", shown()))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("{:?} is not a JSON object", shown()))?;
    Ok(keys
        .iter()
        .filter_map(|k| {
            let text = match object.get(k)? {
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
