//! The command line: clap types that parse into typed values, one file per command, and what
//! each command prints. Exit codes: 0 success; 1 a run that failed (the message names the
//! stage); 2 bad usage or configuration. The work itself is in `app`, `pipeline`, `report`
//! and `demo`; a command here only picks what to call and prints its answer.

mod act;
mod backtest;
mod budgets;
mod config;
mod demo;
mod forecast;
mod ingest;
mod print;
mod report;
mod run;
mod serve;
pub mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveTime, Utc};
use clap::{Parser, Subcommand};
use tracing::level_filters::LevelFilter;

use crate::app::App;
use crate::config::{Config, ConfigError, LogFormat};
use crate::domain::Day;

/// costcast forecasts cloud spend and acts before a budget is blown.
#[derive(Debug, Parser)]
#[command(name = "costcast", version, about)]
pub struct Cli {
    /// Config file (default: ./costcast.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines on stderr: text, or json for a cluster's log collector (default:
    /// telemetry.log_format, text).
    #[arg(long, global = true, value_name = "FORMAT", env = "COSTCAST_LOG_FORMAT", value_parser = values::log_format)]
    pub log_format: Option<LogFormat>,
    /// Evaluate as if today were DAY (UTC), e.g. to replay a past month.
    #[arg(long, global = true, value_name = "DAY")]
    pub as_of: Option<Day>,
    /// Log what each stage does (-v), and more (-vv). A command prints only its answer and a
    /// summary line by default; `serve` and JSON logs are always at least -v.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Zero-config run on a generated demo organisation (SQLite in DIR).
    Demo(demo::DemoArgs),
    /// Run the jobs in jobs/ on their schedules and serve the report API and page (tokens
    /// from api.read_tokens / api.admin_tokens).
    Serve(serve::ServeArgs),
    /// Apply migrations to the configured database.
    Migrate,
    /// Read billing sources into the store.
    Ingest(ingest::IngestArgs),
    /// Forecast every series in the store, or a CSV file with --input.
    Forecast(forecast::ForecastArgs),
    /// Score models by rolling-origin backtest: fit up to an origin, forecast, compare.
    Backtest(backtest::BacktestArgs),
    /// Evaluate budgets and print their status.
    Budgets(budgets::BudgetsArgs),
    /// Make the cluster match each budget's ladder: apply its steps in effect, restore the rest.
    Act(act::ActArgs),
    /// Run one job from jobs/NAME.toml (what a CronJob runs).
    Run(run::RunArgs),
    /// Print what the store holds.
    Report {
        /// Which report.
        #[command(subcommand)]
        what: report::ReportKind,
    },
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: config::ConfigAction,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let globals = Globals {
        config: cli.config,
        log_format: cli.log_format,
        as_of: cli.as_of,
        verbose: cli.verbose,
        long_running: matches!(
            &cli.command,
            Command::Serve(_) | Command::Demo(demo::DemoArgs { serve: true, .. })
        ),
    };
    let now = globals.now();
    match cli.command {
        Command::Demo(args) => demo::run(&globals, args).await,
        Command::Serve(args) => serve::run(&globals, args).await,
        Command::Migrate => with_app(&globals, run::migrate).await,
        Command::Ingest(args) => {
            with_app(&globals, async |app| ingest::run(app, args, now).await).await
        }
        Command::Forecast(args) => forecast::run(&globals, args).await,
        Command::Backtest(args) => backtest::run(&globals, args).await,
        Command::Budgets(args) => {
            with_app(&globals, async |app| budgets::run(app, args, now).await).await
        }
        Command::Act(args) => with_app(&globals, async |app| act::run(app, args, now).await).await,
        Command::Run(args) => with_app(&globals, async |app| run::run(app, args, now).await).await,
        Command::Report { what } => {
            with_existing_app(&globals, async |app| report::run(app, what).await).await
        }
        Command::Config { action } => config::run(&globals, action),
    }
}

/// The options every command takes.
pub struct Globals {
    config: Option<PathBuf>,
    log_format: Option<LogFormat>,
    as_of: Option<Day>,
    verbose: u8,
    long_running: bool,
}

impl Globals {
    /// Loads the config and starts logging as it (or `--log-format`) says.
    fn load_config(&self) -> Result<Config, Failure> {
        load_config(self.config.as_deref(), self, self.log_format)
    }

    /// costcast's own log level: warnings only for a one-shot command in a terminal, so its
    /// answer is not buried; info for a server, for JSON logs (a collector wants them) and at
    /// -v; debug at -vv.
    fn log_level(&self, format: LogFormat) -> LevelFilter {
        match self.verbose {
            0 if !self.long_running && format == LogFormat::Text => LevelFilter::WARN,
            0 | 1 => LevelFilter::INFO,
            _ => LevelFilter::DEBUG,
        }
    }

    /// Starts logging for a command that reads no config (so exports no traces).
    fn start_logging_without_config(&self) -> Result<(), Failure> {
        let format = self.log_format.unwrap_or_default();
        crate::telemetry::init(format, None, self.log_level(format))
            .map_err(|e| Failure::usage(e.to_string()))
    }

    /// The instant a run evaluates as: midday of `--as-of` (so "today" is the same day in
    /// every timezone's reading of the log), or now.
    fn now(&self) -> DateTime<Utc> {
        match self.as_of {
            Some(day) => day
                .date()
                .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("12:00:00 is a time of day"))
                .and_utc(),
            None => Utc::now(),
        }
    }

    /// The day a run evaluates as.
    fn today(&self) -> Day {
        Day::from_date(self.now().date_naive())
    }
}

/// Connects the configured app, runs `command` on it, and closes the store either way.
async fn with_app<T>(
    globals: &Globals,
    command: impl AsyncFnOnce(&App) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let app = connect(globals.load_config()?).await?;
    closing(app, command).await
}

/// As [`with_app`] for a command that only reads: it never creates a database.
async fn with_existing_app<T>(
    globals: &Globals,
    command: impl AsyncFnOnce(&App) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let app = App::connect_existing(globals.load_config()?)
        .await
        .map_err(Failure::run)?;
    closing(app, command).await
}

async fn closing<T>(
    app: App,
    command: impl AsyncFnOnce(&App) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let result = command(&app).await;
    app.store.close().await;
    result
}

/// Builds the app from `config`. Its clock stays the wall clock, which stamps runs; a replay's
/// day (`--as-of`) is handed to each run as its `now`.
async fn connect(config: Config) -> Result<App, Failure> {
    App::connect(config).await.map_err(Failure::run)
}

/// Loads the config at `path` (or ./costcast.toml, or the defaults) and starts logging as
/// `log_format` (or the config) says.
fn load_config(
    path: Option<&Path>,
    globals: &Globals,
    log_format: Option<LogFormat>,
) -> Result<Config, Failure> {
    let env = |k: &str| std::env::var(k).ok();
    let loaded = match path {
        Some(p) => Config::load(Some(p), &env),
        None => {
            let default = Path::new("costcast.toml");
            Config::load(default.exists().then_some(default), &env)
        }
    };
    let format = log_format.or(loaded.as_ref().ok().map(|c| c.telemetry.log_format));
    let otlp = loaded.as_ref().ok().and_then(|c| c.telemetry.otlp.as_ref());
    let format = format.unwrap_or_default();
    let traced = crate::telemetry::init(format, otlp, globals.log_level(format));
    let config = loaded?;
    traced.map_err(|e| Failure::usage(e.to_string()))?;
    Ok(config)
}

/// A command that failed, with its exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Bad usage or configuration: exit code 2.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A run that failed: exit code 1, with the error's cause chain.
    pub fn run(error: impl std::error::Error) -> Failure {
        Failure {
            code: 1,
            message: crate::telemetry::error_chain(&error),
        }
    }

    /// A run that failed for a reason with no error type of its own.
    fn message(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::usage(e.to_string())
    }
}
