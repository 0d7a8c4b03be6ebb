//! Query parameters, read by hand from the raw pairs so each error names the parameter, a
//! repeated filter is allowed, and a misspelt parameter is an error instead of being ignored.

use std::str::FromStr;

use super::error::{ApiError, ApiResult};
use crate::domain::Day;

/// Longest day range a request may ask for: ten years is already more than any billing data.
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// Largest `offset` accepted.
const MAX_OFFSET: i64 = 10_000_000;

/// A request's query pairs, checked against the names its endpoint takes.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// How a response is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    /// `application/json` (the default).
    Json,
    /// `text/csv` with a header row.
    Csv,
}

/// A page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items per page.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

impl Page {
    /// The offset of the next page when `more` items exist past this one.
    pub fn next(&self, more: bool) -> Option<i64> {
        more.then_some(self.offset + self.limit)
    }
}

impl Params {
    /// Takes `pairs`, refusing names not in `allowed` and repeats of names not in `repeatable`.
    pub fn new(
        pairs: Vec<(String, String)>,
        allowed: &[&str],
        repeatable: &[&str],
    ) -> ApiResult<Params> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                let hint = if allowed.is_empty() {
                    "this endpoint takes no parameters".to_string()
                } else {
                    format!("this endpoint takes {}", allowed.join(", "))
                };
                return Err(ApiError::bad_param(
                    name,
                    format!("unknown parameter; {hint}"),
                ));
            }
            if !repeatable.contains(&name.as_str()) && pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_param(name, "given more than once"));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A `YYYY-MM-DD` day.
    pub fn day(&self, name: &str) -> ApiResult<Option<Day>> {
        self.get(name)
            .map(|v| {
                let day: Day = v.parse().map_err(|_| {
                    ApiError::bad_param(name, format!("{v:?} is not a YYYY-MM-DD date"))
                })?;
                if (1970..=2999).contains(&day.year()) {
                    Ok(day)
                } else {
                    Err(ApiError::bad_param(
                        name,
                        format!("{v} is outside the years 1970 to 2999"),
                    ))
                }
            })
            .transpose()
    }

    /// A whole number within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        self.get(name)
            .map(|v| {
                let n = i64::from_str(v.trim()).map_err(|_| {
                    ApiError::bad_param(name, format!("{v:?} is not a whole number"))
                })?;
                if (min..=max).contains(&n) {
                    Ok(n)
                } else {
                    Err(ApiError::bad_param(
                        name,
                        format!("{n} is outside {min}..={max}"),
                    ))
                }
            })
            .transpose()
    }

    /// `from` and `to` as a range of at most [`MAX_RANGE_DAYS`], defaulting to `default`.
    pub fn range(&self, default: (Day, Day)) -> ApiResult<(Day, Day)> {
        let from = self.day("from")?;
        let to = self.day("to")?;
        let (from, to) = match (from, to) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, default.1.max(f)),
            (None, Some(t)) => (default.0.min(t), t),
            (None, None) => default,
        };
        if from > to {
            return Err(ApiError::bad_param(
                "from",
                format!("{from} is after to ({to})"),
            ));
        }
        if from.days_until(to) >= MAX_RANGE_DAYS {
            return Err(ApiError::bad_param(
                "from",
                format!("the range {from} to {to} is longer than {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok((from, to))
    }

    /// `format=json|csv`.
    pub fn format(&self) -> ApiResult<OutFormat> {
        match self.get("format") {
            None | Some("json") => Ok(OutFormat::Json),
            Some("csv") => Ok(OutFormat::Csv),
            Some(other) => Err(ApiError::bad_param(
                "format",
                format!("{other:?} is not json or csv"),
            )),
        }
    }

    /// `limit` (1..=`max`, default `default`) and `offset`.
    pub fn page(&self, default: i64, max: i64) -> ApiResult<Page> {
        Ok(Page {
            limit: self.int("limit", 1, max)?.unwrap_or(default),
            offset: self.int("offset", 0, MAX_OFFSET)?.unwrap_or(0),
        })
    }

    /// A value that must be one of `choices`.
    pub fn choice<'a>(
        &self,
        name: &str,
        choices: &[&'a str],
        default: &'a str,
    ) -> ApiResult<&'a str> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
                ApiError::bad_param(name, format!("{v:?} is not one of {}", choices.join(", ")))
            }),
        }
    }
}
