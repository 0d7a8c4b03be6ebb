//! The demo organisation: a deterministic FOCUS billing export and the config that reads it.
//!
//! About 18 months of daily charges of a mid-sized company on three clouds: six teams tagged
//! `team`, 30 services, weekday/weekend cycles, fees on the 1st of each month, a November-
//! December peak for the customer-facing teams, a few runaway-job spikes (one of them still
//! running), and a step change when the ML team launches a hosted-LLM service. The same
//! `as_of` day always gives the same file.

pub mod explain;
mod org;

use org::{LAUNCH_DAYS_BEFORE_END, LAUNCH_LINE, Line, MONTHLY_FEES, RUNAWAYS, USAGE};

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::Config;
use crate::domain::Day;

/// Days of history in the export.
pub const HISTORY_DAYS: i64 = 548;

/// Share of the newest day that billing has reported: exports lag, and the newest day is
/// always partial.
const NEWEST_DAY_REPORTED: f64 = 0.55;

const SEED: u64 = 0x00c0_57ca_57de_000b;

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    /// The FOCUS CSV export.
    pub export: PathBuf,
    /// The config that reads it.
    pub config: PathBuf,
    /// The SQLite database the config points at.
    pub database: PathBuf,
    /// Rows in the export.
    pub rows: usize,
}

/// Writes the demo export and config into `dir`, with the history ending the day before
/// `as_of`.
pub fn write(dir: &Path, as_of: Day) -> Result<DemoFiles, DemoError> {
    let billing = dir.join("billing");
    std::fs::create_dir_all(&billing).map_err(|e| DemoError::Io(billing.clone(), e))?;
    // Absolute, so the paths printed for the user work from any folder. The config itself names
    // only paths relative to its folder, so the demo folder can be moved or renamed.
    let dir = dir
        .canonicalize()
        .map_err(|e| DemoError::Io(dir.to_path_buf(), e))?;
    let billing = dir.join("billing");
    let mut df = generate(as_of).map_err(DemoError::Polars)?;
    let export = billing.join("focus-demo.csv");
    let mut file = std::fs::File::create(&export).map_err(|e| DemoError::Io(export.clone(), e))?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(&mut df)
        .map_err(DemoError::Polars)?;

    let database = dir.join("costcast.db");
    let config = dir.join("costcast.toml");
    let text = demo_config(&df, as_of)?;
    std::fs::write(&config, text).map_err(|e| DemoError::Io(config.clone(), e))?;
    Ok(DemoFiles {
        export,
        config,
        database,
        rows: df.height(),
    })
}

/// Why the demo could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file could not be written.
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The export could not be built.
    #[error("cannot build the demo export: {0}")]
    Polars(PolarsError),
    /// The built-in configuration template did not read or write.
    #[error("the demo's configuration template is broken: {0}")]
    Template(String),
}

/// The demo's configuration before its budgets get amounts.
const TEMPLATE: &str = include_str!("costcast.toml");

/// The compute services the `compute` budget covers, as the template names them.
const COMPUTE_SERVICES: [&str; 3] = [
    "Amazon Elastic Compute Cloud",
    "Compute Engine",
    "Virtual Machines",
];

/// The Nov-Dec season's lift on day `d`: rising through November to a peak around Black
/// Friday, staying high until just before Christmas.
fn season(d: Day) -> f64 {
    match (d.month(), d.day_of_month()) {
        (11, n) => 1.0 + 0.30 * (n as f64 / 28.0).min(1.0),
        (12, n) if n <= 22 => 1.30,
        (12, n) => 1.30 - 0.25 * ((n - 22) as f64 / 9.0),
        _ => 1.0,
    }
}

fn rng_for(day: Day, line: usize) -> ChaCha8Rng {
    // Keyed by the calendar day, so a day's charges do not depend on where the history starts.
    let key = ((day.year() as u64) << 20) ^ ((day.ordinal() as u64) << 8) ^ ((line as u64) << 40);
    ChaCha8Rng::seed_from_u64(SEED ^ key)
}

/// Builds the export as a DataFrame with the FOCUS columns costcast and most tools read.
pub fn generate(as_of: Day) -> PolarsResult<DataFrame> {
    let end = as_of.add_days(-1);
    let start = end.add_days(-(HISTORY_DAYS - 1));
    let noise = Normal::new(0.0, 0.06).expect("a positive standard deviation is valid");
    let mut rows = Rows::default();
    for offset in 0..HISTORY_DAYS {
        let day = start.add_days(offset);
        let days_before_end = day.days_until(end);
        let reported = if day == end { NEWEST_DAY_REPORTED } else { 1.0 };
        let weekend = day.weekday_index() >= 5;
        for (i, l) in USAGE.iter().enumerate() {
            if i == LAUNCH_LINE && days_before_end > LAUNCH_DAYS_BEFORE_END {
                continue;
            }
            let mut rng = rng_for(day, i);
            let years_before_end = days_before_end as f64 / 365.0;
            let mut cost = l.daily / (1.0 + l.growth).powf(years_before_end);
            if weekend {
                cost *= l.weekend;
            }
            if l.seasonal {
                cost *= season(day);
            }
            for (line, begins, lasts, multiple) in RUNAWAYS {
                if line == i && days_before_end <= begins && days_before_end > begins - lasts {
                    cost *= multiple;
                }
            }
            let factor: f64 = 1.0 + noise.sample(&mut rng);
            cost *= factor.max(0.5) * reported;
            // Split across two or three resources, as real exports list each resource.
            let parts = rng.gen_range(2..=3);
            let mut weights: Vec<f64> = (0..parts).map(|_| rng.gen_range(0.5..1.5)).collect();
            let sum: f64 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= sum);
            for (k, w) in weights.iter().enumerate() {
                rows.push(day, l, l.charge, cost * w, &format!("{}-{}-{k}", l.team, i));
            }
        }
        if day.day_of_month() == 1 {
            for (j, (provider, service, category, charge, team, amount)) in
                MONTHLY_FEES.iter().enumerate()
            {
                let base = USAGE
                    .iter()
                    .find(|l| l.provider == *provider)
                    .unwrap_or(&USAGE[0]);
                let fee = Line {
                    provider,
                    service,
                    category,
                    charge,
                    team,
                    seasonal: false,
                    ..*base
                };
                let grown = amount / 1.12f64.powf(days_before_end as f64 / 365.0);
                rows.push(day, &fee, charge, grown * reported, &format!("fee-{j}"));
            }
        }
    }
    rows.into_frame()
}

#[derive(Default)]
struct Rows {
    day: Vec<String>,
    day_end: Vec<String>,
    period_start: Vec<String>,
    period_end: Vec<String>,
    provider: Vec<&'static str>,
    service: Vec<&'static str>,
    category: Vec<&'static str>,
    charge: Vec<&'static str>,
    account: Vec<&'static str>,
    region: Vec<&'static str>,
    resource: Vec<String>,
    tags: Vec<String>,
    billed: Vec<f64>,
    effective: Vec<f64>,
    list: Vec<f64>,
}

impl Rows {
    fn push(&mut self, day: Day, l: &Line, charge: &'static str, cost: f64, resource: &str) {
        let cost = (cost * 1e4).round() / 1e4;
        self.day.push(format!("{day}T00:00:00Z"));
        self.day_end.push(format!("{}T00:00:00Z", day.add_days(1)));
        self.period_start
            .push(format!("{}T00:00:00Z", day.month_start()));
        self.period_end
            .push(format!("{}T00:00:00Z", day.month_end().add_days(1)));
        self.provider.push(l.provider);
        self.service.push(l.service);
        self.category.push(l.category);
        self.charge.push(charge);
        self.account.push(l.account);
        self.region.push(l.region);
        self.resource.push(format!("northwind-{resource}"));
        self.tags
            .push(format!(r#"{{"team": "{}", "env": "prod"}}"#, l.team));
        // Usage is covered 20% by commitments: billed and list prices differ from effective.
        let (billed, list) = if charge == "Usage" {
            (cost * 0.95, cost * 1.25)
        } else {
            (cost, cost)
        };
        self.billed.push((billed * 1e4).round() / 1e4);
        self.effective.push(cost);
        self.list.push((list * 1e4).round() / 1e4);
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.day.len();
        let constant = |v: &str| vec![v.to_string(); n];
        DataFrame::new_infer_height(vec![
            Column::new("BilledCost".into(), self.billed),
            Column::new("BillingAccountId".into(), constant("northwind-billing")),
            Column::new("BillingCurrency".into(), constant("USD")),
            Column::new("BillingPeriodEnd".into(), self.period_end),
            Column::new("BillingPeriodStart".into(), self.period_start),
            Column::new("ChargeCategory".into(), self.charge),
            Column::new("ChargePeriodEnd".into(), self.day_end),
            Column::new("ChargePeriodStart".into(), self.day),
            Column::new("EffectiveCost".into(), self.effective),
            Column::new("ListCost".into(), self.list),
            Column::new("ProviderName".into(), self.provider),
            Column::new("RegionId".into(), self.region),
            Column::new("ResourceId".into(), self.resource),
            Column::new("ServiceCategory".into(), self.category),
            Column::new("ServiceName".into(), self.service),
            Column::new("SubAccountId".into(), self.account),
            Column::new("Tags".into(), self.tags),
        ])
    }
}

/// Last full month's spend of the rows matching `predicate`.
fn last_month_spend(df: &DataFrame, as_of: Day, predicate: Expr) -> PolarsResult<f64> {
    let last_month = as_of.month_start().add_days(-1);
    let (from, to) = (
        format!("{}", last_month.month_start()),
        format!("{}", last_month.add_days(1)),
    );
    let out = df
        .clone()
        .lazy()
        .filter(
            predicate
                .and(col("ChargePeriodStart").gt_eq(lit(from)))
                .and(col("ChargePeriodStart").lt(lit(to))),
        )
        .select([col("EffectiveCost").sum()])
        .collect()?;
    Ok(out.column("EffectiveCost")?.f64()?.get(0).unwrap_or(0.0))
}

/// Drops the empty tables and lists serde writes for unset sections, so the file says only
/// what the demo sets and a section appended to it by hand is not a duplicate.
fn prune(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            table.iter_mut().for_each(|(_, v)| prune(v));
            table.retain(|_, v| match v {
                toml::Value::Table(t) => !t.is_empty(),
                toml::Value::Array(a) => !a.is_empty(),
                _ => true,
            });
        }
        toml::Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fn round_to(amount: f64, step: f64) -> f64 {
    (amount / step).round() * step
}

/// The demo's configuration: the built-in template read as the config type, with each
/// budget's amount set from the generated spend, written back as TOML.
fn demo_config(df: &DataFrame, as_of: Day) -> Result<String, DemoError> {
    let team = |t: &str| {
        col("Tags")
            .str()
            .contains_literal(lit(format!(r#""team": "{t}""#)))
    };
    let spend = |filter: Expr| last_month_spend(df, as_of, filter).map_err(DemoError::Polars);
    let ml = spend(team("ml"))?;
    let data = spend(team("data"))?;
    let compute = spend(
        COMPUTE_SERVICES
            .iter()
            .fold(lit(false), |any, s| any.or(col("ServiceName").eq(lit(*s)))),
    )?;
    let mut raw = Config::parse_raw(TEMPLATE, Path::new("demo/costcast.toml"))
        .map_err(|e| DemoError::Template(e.to_string()))?;
    // The ML team grows fastest and has a runaway job this month: its budget, set a little
    // under last month's spend, is the one the demo shows breaching.
    for (budget, amount) in [
        ("ml-team", round_to(ml * 0.92, 1000.0)),
        ("data-team", round_to(data * 1.30, 1000.0)),
        ("compute", round_to(compute * 1.10, 1000.0)),
    ] {
        if !raw.set_budget_amount(budget, amount) {
            return Err(DemoError::Template(format!("it has no budget {budget:?}")));
        }
    }
    let mut value = toml::Value::try_from(&raw).map_err(|e| DemoError::Template(e.to_string()))?;
    prune(&mut value);
    let body = toml::to_string_pretty(&value).map_err(|e| DemoError::Template(e.to_string()))?;
    Ok(format!(
        "# costcast demo configuration, written by `costcast demo` for {as_of}.\n\
         # Paths are relative to this file's folder.\n\
         # Add a Slack incoming webhook to send the alert instead of printing it:\n\
         # [notify.slack]\n\
         # webhook_url = \"https://hooks.slack.com/services/...\"\n\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_is_the_same_for_the_same_day() {
        let as_of = Day::parse("2025-11-20").unwrap();
        let a = generate(as_of).unwrap();
        let b = generate(as_of).unwrap();
        assert!(a.equals(&b));
        assert!(a.height() > 40_000, "{} rows", a.height());
    }

    #[test]
    fn the_season_peaks_late_november() {
        assert!(season(Day::parse("2025-11-28").unwrap()) > 1.29);
        assert_eq!(season(Day::parse("2025-07-01").unwrap()), 1.0);
    }

    #[test]
    fn the_written_config_reads_back_with_every_budget_funded() {
        let as_of = Day::parse("2025-11-20").unwrap();
        let text = demo_config(&generate(as_of).unwrap(), as_of).unwrap();
        let raw = Config::parse_raw(&text, Path::new("costcast.toml")).unwrap();
        let config = Config::from_raw(raw, Path::new("/demo"), &|_| None).unwrap();
        let names: Vec<&str> = config.budgets.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["ml-team", "data-team", "compute"]);
        for b in &config.budgets {
            assert!(b.amount.amount >= 1000.0, "{}: {}", b.name, b.amount.amount);
        }
        assert_eq!(config.budgets[0].actions.len(), 3);
        assert_eq!(config.sources[0].name, "demo-focus");
        assert_eq!(config.database_url.expose(), "sqlite:///demo/costcast.db");
        assert!(!text.contains("[redacted]"), "{text}");
        assert!(
            !text.contains("[daemon]") && !text.contains("= []"),
            "{text}"
        );
        let appended = format!("{text}\n[daemon]\nshutdown_grace_secs = 4\n");
        Config::parse_raw(&appended, Path::new("costcast.toml")).unwrap();
    }
}
