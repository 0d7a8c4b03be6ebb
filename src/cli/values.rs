//! Value parsers: each flag's text becomes a typed value, or a reason the CLI prints as
//! `--flag: reason` with exit code 2.

use crate::config::LogFormat;
use crate::domain::{Dimension, ModelChoice, ModelKind};

/// Longest forecast horizon, in days: a year and a leap day.
pub const MAX_HORIZON_DAYS: usize = 366;
/// Most backtest windows one command scores.
pub const MAX_BACKTEST_WINDOWS: usize = 52;

/// `text` or `json`.
pub fn log_format(s: &str) -> Result<LogFormat, String> {
    LogFormat::parse(s).ok_or_else(|| format!("{s:?} is not text or json"))
}

/// `auto` or a model this build has.
pub fn model(s: &str) -> Result<ModelChoice, String> {
    ModelChoice::parse_available(s).ok_or_else(|| match s == ModelKind::Prophet.as_str() {
        true => "prophet needs a build with `--features prophet`".to_string(),
        false => format!("{s:?} is not auto, {}", crate::config::model_names()),
    })
}

/// A cost dimension such as `service` or `tag:team`.
pub fn dimension(s: &str) -> Result<Dimension, String> {
    Dimension::parse(s).map_err(|e| e.to_string())
}

/// Days to forecast, 1 to [`MAX_HORIZON_DAYS`].
pub fn horizon(s: &str) -> Result<usize, String> {
    ranged(s, MAX_HORIZON_DAYS)
}

/// Backtest windows, 1 to [`MAX_BACKTEST_WINDOWS`].
pub fn windows(s: &str) -> Result<usize, String> {
    ranged(s, MAX_BACKTEST_WINDOWS)
}

fn ranged(s: &str, max: usize) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    match (1..=max).contains(&n) {
        true => Ok(n),
        false => Err(format!("{n} is outside 1..={max}")),
    }
}

/// Renders a clap error whose cause is one of our parsers as `--flag: reason`, as the rest of
/// the CLI's usage errors read; other clap errors (help, version, a missing flag) as clap does.
pub fn usage_message(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    let reason = std::error::Error::source(error)?;
    Some(format!("{flag}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizon_outside_its_range_names_the_range() {
        assert_eq!(horizon("0"), Err("0 is outside 1..=366".into()));
        assert_eq!(horizon("367"), Err("367 is outside 1..=366".into()));
        assert_eq!(horizon("30"), Ok(30));
        assert!(horizon("x").unwrap_err().contains("not a whole number"));
    }

    #[test]
    fn an_unknown_model_lists_the_known_ones() {
        let e = model("arima").unwrap_err();
        assert!(e.starts_with("\"arima\" is not auto, calendar"), "{e}");
        assert_eq!(model("auto"), Ok(ModelChoice::Auto));
    }
}
