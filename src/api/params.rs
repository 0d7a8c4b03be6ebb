//! Query parameters: each endpoint declares one `Deserialize + IntoParams` struct, read by the
//! [`Params`] extractor. The same struct feeds the OpenAPI document, so no parameter is declared
//! twice; a rejection names the parameter, a repeated parameter is refused unless its field is a
//! list, and a misspelt one is refused (`deny_unknown_fields`) instead of being ignored.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult};
use crate::domain::Day;

/// Longest day range a request may ask for: ten years is already more than any billing data.
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// A request's query string read as `T`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs = serde_html_form::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(Params)
            .map_err(|e| rejection(raw, &e))
    }
}

/// The 400 for a query string that did not read as the endpoint's parameters.
fn rejection(raw: &str, e: &serde_path_to_error::Error<serde_html_form::de::Error>) -> ApiError {
    let name = e.path().to_string();
    let given = form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, _)| *k == name)
        .count();
    // The form reader hands a repeated key to a single-valued field as a list it cannot read;
    // saying so is clearer than its "unsupported value".
    let message = if given > 1 {
        "given more than once".to_string()
    } else {
        e.inner()
            .to_string()
            .replace("unknown field", "unknown parameter")
            .replace("there are no fields", "this endpoint takes no parameters")
    };
    ApiError::bad_param(&name, message)
}

/// The parameters of an endpoint that takes none.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

/// `format` only.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatOnly {
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    pub format: OutFormat,
}

/// How a response is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutFormat {
    /// `application/json` (the default).
    #[default]
    Json,
    /// `text/csv` with a header row.
    Csv,
}

/// A `YYYY-MM-DD` day in the years 1970 to 2999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayParam(pub Day);

impl<'de> Deserialize<'de> for DayParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DayParam, D::Error> {
        let text = String::deserialize(d)?;
        let day: Day = text
            .parse()
            .map_err(|_| de::Error::custom(format!("{text:?} is not a YYYY-MM-DD date")))?;
        if (1970..=2999).contains(&day.year()) {
            Ok(DayParam(day))
        } else {
            Err(de::Error::custom(format!(
                "{text} is outside the years 1970 to 2999"
            )))
        }
    }
}

/// A whole number within `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(pub i64);

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let n: i64 = text
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("{text:?} is not a whole number")))?;
        if (MIN..=MAX).contains(&n) {
            Ok(Bounded(n))
        } else {
            Err(de::Error::custom(format!("{n} is outside {MIN}..={MAX}")))
        }
    }
}

/// Items skipped before a page.
pub type Offset = Bounded<0, 10_000_000>;

/// A page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items per page.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

impl Page {
    /// The page a `limit` and `offset` ask for, `default` items long unless told.
    pub fn of<const MAX: i64>(
        limit: Option<Bounded<1, MAX>>,
        offset: Option<Offset>,
        default: i64,
    ) -> Page {
        Page {
            limit: limit.map_or(default, |l| l.0),
            offset: offset.map_or(0, |o| o.0),
        }
    }

    /// The offset of the next page when `more` items exist past this one.
    pub fn next(&self, more: bool) -> Option<i64> {
        more.then_some(self.offset + self.limit)
    }
}

/// `from` and `to` as a range of at most [`MAX_RANGE_DAYS`]; a missing end comes from
/// `default`.
pub fn range(
    from: Option<DayParam>,
    to: Option<DayParam>,
    default: (Day, Day),
) -> ApiResult<(Day, Day)> {
    let (from, to) = match (from.map(|d| d.0), to.map(|d| d.0)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        from: Option<DayParam>,
        limit: Option<Bounded<1, 100>>,
        #[serde(default)]
        filter: Vec<String>,
    }

    async fn read(query: &str) -> Result<Query, String> {
        let (mut parts, ()) = axum::http::Request::builder()
            .uri(format!("/x?{query}"))
            .body(())
            .expect("a valid request")
            .into_parts();
        let read = Params::<Query>::from_request_parts(&mut parts, &()).await;
        read.map(|p| p.0).map_err(|e| e.message().to_string())
    }

    fn message(query: &str) -> String {
        let raw = query;
        let pairs = serde_html_form::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        let e = serde_path_to_error::deserialize::<_, Query>(pairs).expect_err("refused");
        rejection(raw, &e).message().to_string()
    }

    #[tokio::test]
    async fn a_list_takes_repeats_and_a_single_value_refuses_them() {
        let q = read("filter=team:ml&filter=team:web&limit=5&from=2025-01-31")
            .await
            .expect("reads");
        assert_eq!(q.filter, ["team:ml", "team:web"]);
        assert_eq!(q.limit, Some(Bounded(5)));
        assert_eq!(q.from, Some(DayParam("2025-01-31".parse().expect("a day"))));
        assert_eq!(
            read("from=2025-01-01&from=2025-02-01").await.unwrap_err(),
            "from: given more than once"
        );
    }

    #[test]
    fn each_refusal_names_its_parameter_and_says_why() {
        let cases = [
            (
                "from=2025-01-01&from=2025-02-01",
                "from: given more than once",
            ),
            ("colour=red", "colour: unknown parameter `colour`"),
            ("limit=0", "limit: 0 is outside 1..=100"),
            ("limit=ten", "limit: \"ten\" is not a whole number"),
            (
                "from=2025-13-01",
                "from: \"2025-13-01\" is not a YYYY-MM-DD date",
            ),
            (
                "from=0001-01-01",
                "from: 0001-01-01 is outside the years 1970 to 2999",
            ),
        ];
        for (query, want) in cases {
            let got = message(query);
            assert!(got.contains(want), "{query}: {got}");
        }
    }
}
