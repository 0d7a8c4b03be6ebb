//! Amounts with their currency, and how they are shown.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// An ISO 4217 currency code such as `USD`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses a three-letter code, upper-casing it.
    pub fn parse(s: &str) -> Result<Currency, DomainError> {
        let code = s.trim();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Currency(code.to_ascii_uppercase()))
        } else {
            Err(DomainError::BadCurrency(s.to_string()))
        }
    }

    /// US dollars, the default when a source names none.
    pub fn usd() -> Currency {
        Currency("USD".to_string())
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Currency, DomainError> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

/// An amount with its currency.
///
/// Amounts are `f64`: billing rows carry up to 10 decimals of sub-cent prices, and an f64 sum of a
/// million such rows stays well inside a cent of the exact total, which is the precision budgets
/// and reports need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// The amount, in units of `currency`.
    pub amount: f64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: f64, currency: Currency) -> Money {
        Money { amount, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_amount(self.amount), self.currency)
    }
}

/// Formats an amount with thousands separators and two decimals, e.g. `12,345.68`.
pub fn format_amount(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round() as u64;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if amount < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}{grouped}.{frac:02}")
}

/// Formats an amount rounded to whole units with thousands separators, e.g. `12,346`.
pub fn format_whole(amount: f64) -> String {
    let text = format_amount(amount.round());
    text.strip_suffix(".00").map(str::to_string).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(format_amount(1234567.891), "1,234,567.89");
        assert_eq!(format_amount(-12.5), "-12.50");
        assert_eq!(format_amount(0.004), "0.00");
        assert_eq!(format_whole(112_555.94), "112,556");
    }

    #[test]
    fn currency_codes_are_three_letters() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert!(Currency::parse("US Dollar").is_err());
    }
}
