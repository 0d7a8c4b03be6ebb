use super::secrets::resolve_sqlite;
use super::*;
use crate::domain::{Builtin, Day, Event, HolidayCalendar, ModelChoice};

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    let raw = Config::parse_raw(text, Path::new("costcast.toml"))?;
    Config::from_raw(raw, Path::new("/etc/costcast"), &no_env)
}

#[test]
fn a_relative_sqlite_path_is_read_from_the_config_files_folder() {
    let url = |s: &str| resolve_sqlite(DatabaseUrl::new(s), Path::new("/etc/costcast"));
    assert_eq!(url("sqlite://c.db").expose(), "sqlite:///etc/costcast/c.db");
    assert_eq!(
        url("sqlite:c.db?mode=rwc").expose(),
        "sqlite:///etc/costcast/c.db?mode=rwc"
    );
    assert_eq!(url("sqlite:///var/c.db").expose(), "sqlite:///var/c.db");
    assert_eq!(url("sqlite::memory:").expose(), "sqlite::memory:");
    assert_eq!(url("postgres://h/db").expose(), "postgres://h/db");
    let here = resolve_sqlite(DatabaseUrl::new("sqlite://c.db"), Path::new(""));
    assert_eq!(here.expose(), "sqlite://c.db");
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let c = load("").unwrap();
    // The default file sits beside the config file, wherever the command runs from.
    assert_eq!(
        c.database_url.expose(),
        "sqlite:///etc/costcast/costcast.db"
    );
    assert_eq!(c.forecast.horizon_days, 45);
    assert_eq!(c.forecast.grain.len(), 2);
}

#[test]
fn a_negative_budget_amount_names_the_key() {
    let err =
        load("[[budgets]]\nname='a'\namount=5\n[[budgets]]\nname='b'\namount=-1\n").unwrap_err();
    assert_eq!(err.to_string(), "budgets[1].amount: must be > 0, got -1");
}

#[test]
fn a_monthly_plan_sets_the_amount_and_must_fit_its_period() {
    let plan = (1..=12).map(|m| (m * 100).to_string()).collect::<Vec<_>>();
    let c = load(&format!(
        "[[budgets]]\nname='y'\nperiod='yearly'\nmonthly_plan=[{}]\n",
        plan.join(",")
    ))
    .unwrap();
    assert_eq!(c.budgets[0].amount.amount, 7800.0, "the plan's total");
    let err = load("[[budgets]]\nname='q'\nperiod='quarterly'\nmonthly_plan=[1, 2]\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "budgets[0].monthly_plan: needs 3 amounts (one per month of a quarterly period), got 2"
    );
    let err = load("[[budgets]]\nname='m'\nmonthly_plan=[1]\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("budgets[0].monthly_plan: only a quarterly or yearly"),
        "{err}"
    );
    let err = load("[[budgets]]\nname='q'\nperiod='quarterly'\namount=5\nmonthly_plan=[1, 2, 3]\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "budgets[0].monthly_plan: plans 6 in all, more than the amount 5"
    );
    let err = load("[[budgets]]\nname='a'\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "budgets[0].amount: is required (or a monthly_plan)"
    );
}

#[test]
fn holidays_and_events_are_read_with_their_keys() {
    let c = load("").unwrap();
    assert_eq!(*c.forecast.holidays, HolidayCalendar::default());
    let c = load(
        "[forecast]\nholidays = ['year-end']\n[[forecast.events]]\nname = 'sale'\n\
         days = ['2025-11-11', '2026-11-11']\nlength_days = 2\n",
    )
    .unwrap();
    let expected = HolidayCalendar::new(
        vec![Builtin::YearEnd],
        vec![Event {
            name: "sale".into(),
            starts: vec![
                Day::parse("2025-11-11").unwrap(),
                Day::parse("2026-11-11").unwrap(),
            ],
            length_days: 2,
        }],
    );
    assert_eq!(*c.forecast.holidays, expected);
    let err = load("[forecast]\nholidays = ['diwali']\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "forecast.holidays[0]: \"diwali\" is not one of year-end, thanksgiving"
    );
    let err = load("[[forecast.events]]\nname = 'x'\ndays = ['2025-13-01']\n").unwrap_err();
    assert!(
        err.to_string().starts_with("forecast.events[0].days[0]: "),
        "{err}"
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_name() {
    let err = load("[forecast]\nhorizon = 3\n").unwrap_err();
    assert!(err.to_string().contains("horizon"), "{err}");
}

#[test]
fn the_forecast_model_and_backtest_windows_are_checked_by_name() {
    let c = load("[forecast]\nmodel = 'auto'\nbacktest_windows = 0\n").unwrap();
    assert_eq!(
        (c.forecast.model, c.forecast.backtest_windows),
        (ModelChoice::Auto, 0)
    );
    let err = load("[forecast]\nmodel = 'arima'\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forecast.model") && err.contains("\"arima\" is not auto, calendar"),
        "{err}"
    );
    let err = load("[forecast]\nbacktest_windows = 99\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forecast.backtest_windows: 99 is outside 0..=24"),
        "{err}"
    );
}

#[test]
fn an_unknown_cost_column_names_the_key() {
    let err = load("[[sources]]\nname='b'\nkind='focus'\npath='x.csv'\ncost_column='Cost'\n")
        .unwrap_err();
    assert!(
        err.to_string().starts_with("sources[0].cost_column:"),
        "{err}"
    );
}

#[test]
fn environment_overrides_the_file_and_secrets_stay_redacted() {
    let raw = Config::parse_raw(
        "[database]\nurl='sqlite://a.db'\n[notify.slack]\nwebhook_url='https://hooks.example/T0/B0/s3cr3t'\n",
        Path::new("c.toml"),
    )
    .unwrap();
    let env = |k: &str| {
        (k == "COSTCAST_DATABASE_URL").then(|| "postgres://u:hunter2@db:5432/cc".to_string())
    };
    let c = Config::from_raw(raw, Path::new(""), &env).unwrap();
    assert_eq!(c.database_url.expose(), "postgres://u:hunter2@db:5432/cc");
    let printed = format!("{}\n{:?}", c.to_redacted_toml(), c);
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!printed.contains("s3cr3t"), "{printed}");
    assert!(
        printed.contains("postgres://u:[redacted]@db:5432/cc"),
        "{printed}"
    );
}

#[test]
fn a_bad_environment_number_names_the_variable() {
    let env = |k: &str| (k == "COSTCAST_FORECAST_HORIZON_DAYS").then(|| "soon".to_string());
    let err = Config::from_raw(RawConfig::default(), Path::new(""), &env).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("COSTCAST_FORECAST_HORIZON_DAYS:"),
        "{err}"
    );
}
