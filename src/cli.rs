//! The command line: argument parsing, wiring, and what each command prints. Exit codes: 0
//! success; 1 a run that failed (the message names the stage); 2 bad usage or configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, NaiveTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat, SourceKind};
use crate::domain::Accuracy;
use crate::domain::money::format_amount;
use crate::domain::{Day, DayRange, Dimension, ModelChoice, ModelKind, Status};
use crate::forecast::Target;
use crate::forecast::backtest::{self, Plan, Summary};
use crate::pipeline::{self, Context, Job, RunOptions, RunReport, Step};
use crate::report::{self, Format};
use crate::store::{RunOutcome, Store, StoredSeries};
use crate::{demo, serving, standalone, startup};

/// costcast forecasts cloud spend and acts before a budget is blown.
#[derive(Debug, Parser)]
#[command(name = "costcast", version, about)]
pub struct Cli {
    /// Config file (default: ./costcast.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines on stderr: text, or json for a cluster's log collector (default:
    /// telemetry.log_format, text).
    #[arg(long, global = true, value_name = "FORMAT", env = "COSTCAST_LOG_FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Evaluate as if today were DAY (UTC), e.g. to replay a past month.
    #[arg(long, global = true, value_name = "DAY")]
    pub as_of: Option<Day>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Zero-config run on a generated demo organisation (SQLite in DIR).
    Demo {
        /// Folder for the demo export, config and database.
        #[arg(long, default_value = "costcast-demo")]
        dir: PathBuf,
        /// Then serve the report page and API on the demo data, with fresh tokens.
        #[arg(long)]
        serve: bool,
        /// Address to serve on (with --serve).
        #[arg(long, value_name = "ADDR", default_value = crate::config::DEFAULT_LISTEN, requires = "serve")]
        listen: std::net::SocketAddr,
    },
    /// Run the jobs in jobs/ on their schedules and serve the report API and page (tokens
    /// from api.read_tokens / api.admin_tokens).
    Serve {
        /// Address to listen on (default: api.listen, 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Serve the API only, for replicas beside the one that runs the jobs.
        #[arg(long)]
        no_scheduler: bool,
        /// Folder holding job files (default: daemon.jobs_dir, `jobs`).
        #[arg(long, value_name = "DIR")]
        jobs_dir: Option<PathBuf>,
    },
    /// Apply migrations to the configured database.
    Migrate,
    /// Read billing sources into the store.
    Ingest {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Only days from DAY.
        #[arg(long, value_name = "DAY")]
        from: Option<Day>,
        /// Only days up to DAY (included).
        #[arg(long, value_name = "DAY")]
        to: Option<Day>,
    },
    /// Forecast every series in the store, or a CSV file with --input.
    Forecast {
        /// Long CSV `series_id,date,value` to forecast without a database.
        #[arg(long, value_name = "IN.csv")]
        input: Option<PathBuf>,
        /// Days to forecast (with --input; the store uses forecast.horizon_days).
        #[arg(long, default_value_t = 45)]
        horizon: usize,
        /// Where to write the forecast CSV (default: stdout).
        #[arg(long, value_name = "OUT.csv", requires = "input")]
        output: Option<PathBuf>,
        /// auto, or a model (with --input; the store uses forecast.model).
        #[arg(long, default_value = "calendar", requires = "input")]
        model: String,
        /// 30-day windows of each series' own history whose missed totals widen its level
        /// error, as a forecast run does with forecast.backtest_windows (with --input).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=24), requires = "input")]
        backtest_windows: u8,
    },
    /// Score models by rolling-origin backtest: fit up to an origin, forecast, compare.
    Backtest {
        /// Long CSV `series_id,date,value`; without it, the store's forecast series.
        #[arg(long, value_name = "IN.csv")]
        input: Option<PathBuf>,
        /// Days forecast from each origin.
        #[arg(long, default_value_t = 30)]
        horizon: usize,
        /// Origins, `horizon` days apart, the newest `horizon` days before the end.
        #[arg(long, default_value_t = 3)]
        windows: usize,
        /// Models to score (auto and every model by default).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Output: a summary per model (table), or every series and model (csv, json).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Evaluate budgets and print their status.
    Budgets {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Make the cluster match each budget's ladder: apply its steps in effect, restore the rest.
    Act {
        /// Plan only, even for budgets in enforce mode.
        #[arg(long)]
        dry_run: bool,
        /// Restore instead.
        #[command(subcommand)]
        what: Option<ActCommand>,
    },
    /// Run one job from jobs/NAME.toml (what a CronJob runs).
    Run {
        /// The job's name.
        #[arg(long)]
        job: String,
        /// Folder holding job files (default: daemon.jobs_dir, `jobs`).
        #[arg(long, value_name = "DIR")]
        jobs_dir: Option<PathBuf>,
        /// Plan and build alerts, but apply and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print what the store holds.
    Report {
        /// Which report.
        #[command(subcommand)]
        what: ReportKind,
    },
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// What `act` can do besides reconciling.
#[derive(Debug, Subcommand)]
pub enum ActCommand {
    /// Put back everything costcast changed for a budget, or for all, from the objects'
    /// annotations (the store is not needed for that).
    Restore {
        /// The budget whose changes to restore.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        budget: Option<String>,
        /// Every budget's changes.
        #[arg(long)]
        all: bool,
        /// Say what would be restored, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Options every report takes.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// From DAY.
    #[arg(long, value_name = "DAY")]
    from: Option<Day>,
    /// Up to DAY (included).
    #[arg(long, value_name = "DAY")]
    to: Option<Day>,
    /// Dimensions to group costs by, e.g. service,team.
    #[arg(long, value_delimiter = ',', default_value = "service")]
    group_by: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// The reports.
#[derive(Debug, Subcommand)]
pub enum ReportKind {
    /// Cost totals grouped by dimensions.
    Costs(ReportArgs),
    /// The newest forecast of every series (a summary in table format).
    Forecasts(ReportArgs),
    /// The newest evaluation of every budget.
    Budgets(ReportArgs),
    /// The changes planned by the newest run.
    Actions(ReportArgs),
    /// Days smoothed out of the fit as anomalies.
    Anomalies(ReportArgs),
    /// Recent runs and their stages.
    Runs(ReportArgs),
    /// Cost per 1,000 units (e.g. requests) per namespace, from Prometheus sources.
    Units(ReportArgs),
    /// Backtest accuracy of every forecast series, from the newest forecast run.
    Accuracy(ReportArgs),
}

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration, secrets redacted.
    Print,
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

    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    fn run(error: impl std::error::Error) -> Failure {
        Failure {
            code: 1,
            message: crate::telemetry::error_chain(&error),
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

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    LogFormat::parse(s).ok_or_else(|| format!("{s:?} is not text or json"))
}

/// Loads the config and starts logging as it (or `--log-format`) says.
fn load_config(path: Option<&Path>, log_format: Option<LogFormat>) -> Result<Config, Failure> {
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
    let traced = crate::telemetry::init(format.unwrap_or_default(), otlp);
    let config = loaded?;
    traced.map_err(|e| Failure::usage(e.to_string()))?;
    Ok(config)
}

async fn connect(config: Config) -> Result<Context, Failure> {
    startup::context(config).await.map_err(Failure::run)
}

fn now_for(as_of: Option<Day>) -> DateTime<Utc> {
    match as_of {
        // Midday, so "today" is the same day in every timezone's reading of the log.
        Some(day) => day
            .date()
            .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default())
            .and_utc(),
        None => Utc::now(),
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let now = now_for(cli.as_of);
    // Commands that read a config start logging once it is read; the rest start it here.
    if matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Forecast { input: Some(_), .. }
            | Command::Backtest { input: Some(_), .. }
    ) {
        // No config, so no trace export: nothing to fail.
        let _ = crate::telemetry::init(cli.log_format.unwrap_or_default(), None);
    }
    match cli.command {
        Command::Demo { dir, serve, listen } => {
            run_demo(
                &dir,
                Day::from_date(now.date_naive()),
                now,
                serve.then_some(listen),
            )
            .await
        }
        Command::Serve {
            listen,
            no_scheduler,
            jobs_dir,
        } => {
            let config = load_config(cli.config.as_deref(), cli.log_format)?;
            if !config.api.has_tokens() {
                return Err(Failure::usage(
                    "serve needs a token: set api.read_tokens (and api.admin_tokens) in the config, \
                     or COSTCAST_API_READ_TOKENS / COSTCAST_API_ADMIN_TOKENS (comma-separated)",
                ));
            }
            let addr = listen.unwrap_or(config.api.listen);
            let jobs = match no_scheduler {
                true => Vec::new(),
                false => {
                    let dir = jobs_dir.unwrap_or_else(|| config.daemon.jobs_dir.clone());
                    pipeline::job::load_all(&dir).map_err(|e| {
                        Failure::usage(format!(
                            "{e} (or pass --no-scheduler for an API-only replica)"
                        ))
                    })?
                }
            };
            let scheduled = match jobs.is_empty() {
                true => "no scheduler".to_string(),
                false => format!(
                    "jobs {}",
                    jobs.iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let ctx = connect(config).await?;
            serving::serve(ctx, addr, jobs, serving::shutdown_signal(), |bound| {
                eprintln!("Serving the report page on http://{bound}/ and the API on http://{bound}/api/v1/, {scheduled} (Ctrl-C stops).");
            })
            .await
            .map_err(Failure::run)
        }
        Command::Config {
            action: ConfigAction::Print,
        } => {
            let config = load_config(cli.config.as_deref(), cli.log_format)?;
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Forecast {
            input: Some(input),
            horizon,
            output,
            model,
            backtest_windows,
        } => {
            let horizon = check_horizon(horizon)?;
            let windows = usize::from(backtest_windows);
            let choice = parse_models(std::slice::from_ref(&model))?[0];
            let series = standalone::read_series(&input).map_err(Failure::run)?;
            let done = match &output {
                Some(path) => {
                    let mut file = std::fs::File::create(path).map_err(|e| {
                        Failure::run(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", path.display()),
                        ))
                    })?;
                    standalone::forecast(&series, horizon, choice, windows, &mut file)
                }
                None => {
                    standalone::forecast(&series, horizon, choice, windows, &mut std::io::stdout())
                }
            }
            .map_err(Failure::run)?;
            let count = done.series;
            let threads = rayon::current_num_threads();
            if let Some(path) = &output {
                eprintln!(
                    "Forecast {count} series {horizon} days ahead with {choice} into {}: fitting \
                     took {:.2} s on {threads} threads, {:.3} ms per series per thread.",
                    path.display(),
                    done.fit_seconds,
                    1000.0 * done.fit_seconds * threads as f64 / count.max(1) as f64,
                );
            }
            if count == 0 {
                return Err(Failure::run(std::io::Error::other(format!(
                    "{}: no series to forecast",
                    input.display()
                ))));
            }
            Ok(())
        }
        Command::Backtest {
            input: Some(input),
            horizon,
            windows,
            models,
            format,
        } => {
            let plan = backtest_plan(horizon, windows)?;
            let choices = parse_models(&models)?;
            let series = standalone::read_series(&input).map_err(Failure::run)?;
            let targets: Vec<(Target, Day)> = series
                .iter()
                .map(|(id, s)| {
                    let target = Target {
                        name: id.clone(),
                        usage: s.points(),
                        recurring: Vec::new(),
                        holidays: Default::default(),
                    };
                    (target, s.day(s.values.len() - 1))
                })
                .collect();
            print_backtest(&targets, &choices, plan, format).map(|_| ())
        }
        command => {
            let config = load_config(cli.config.as_deref(), cli.log_format)?;
            let ctx = connect(config).await?;
            let result = run_with_store(&ctx, command, now).await;
            ctx.store.close().await;
            result
        }
    }
}

async fn run_with_store(
    ctx: &Context,
    command: Command,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let (job, steps, options) = match command {
        Command::Migrate => {
            println!(
                "Database {} ({}) is up to date.",
                ctx.config.database_url.redacted(),
                ctx.store.backend()
            );
            return Ok(());
        }
        Command::Ingest { source, from, to } => {
            let range = match (from, to) {
                (None, None) => None,
                (from, to) => Some(
                    DayRange::new(
                        from.or(Day::from_ymd(1, 1, 1)).unwrap_or(Day::today_utc()),
                        to.or(Day::from_ymd(9999, 12, 31))
                            .unwrap_or(Day::today_utc()),
                    )
                    .map_err(|e| Failure::usage(format!("--from/--to: {e}")))?,
                ),
            };
            if let Some(name) = &source
                && ctx.config.source(name).is_none()
            {
                return Err(Failure::usage(format!(
                    "--source: no source named {name:?} in the configuration"
                )));
            }
            (
                "ingest".to_string(),
                vec![Step::Ingest],
                RunOptions {
                    source,
                    range,
                    ..RunOptions::default()
                },
            )
        }
        Command::Backtest {
            horizon,
            windows,
            models,
            format,
            input: None,
        } => {
            let plan = backtest_plan(horizon, windows)?;
            let choices = parse_models(&models)?;
            let targets = pipeline::load_targets(ctx, Day::from_date(now.date_naive()))
                .await
                .map_err(Failure::run)?;
            let scores = print_backtest(&targets, &choices, plan, format)?;
            // Stored like a run's, so reports and budgets publish the newest score per model.
            let run = ctx
                .store
                .start_run("backtest", Utc::now())
                .await
                .map_err(Failure::run)?;
            ctx.store
                .save_accuracy(run, &scores)
                .await
                .map_err(Failure::run)?;
            let detail = serde_json::json!({ "backtested": scores.len(), "windows": plan.windows });
            ctx.store
                .finish_run(run, Utc::now(), RunOutcome::Ok, &detail)
                .await
                .map_err(Failure::run)?;
            eprintln!("Stored {} scores as run {run}.", scores.len());
            return Ok(());
        }
        Command::Forecast { .. } => (
            "forecast".into(),
            vec![Step::Forecast],
            RunOptions::default(),
        ),
        Command::Budgets { format } => {
            let report = execute(
                ctx,
                "budgets",
                &[Step::Budgets],
                now,
                &RunOptions::default(),
            )
            .await?;
            let table = match format {
                Format::Table => report::budgets_summary(&report.evaluations),
                _ => report::budgets(&report.evaluations),
            };
            print!("{}", table.render(format));
            return Ok(());
        }
        Command::Act {
            what:
                Some(ActCommand::Restore {
                    budget,
                    all: _,
                    dry_run,
                }),
            ..
        } => {
            if let Some(name) = &budget
                && !ctx.config.budgets.iter().any(|b| &b.name == name)
                && ctx
                    .store
                    .throttled(Some(name))
                    .await
                    .map_err(Failure::run)?
                    .is_empty()
            {
                return Err(Failure::usage(format!(
                    "--budget: no budget named {name:?} is configured or holds changes"
                )));
            }
            let report = pipeline::restore(ctx, budget.as_deref(), dry_run, now)
                .await
                .map_err(Failure::run)?;
            print_run(&report);
            let n = report.actions.len();
            eprintln!("Restore run {}: {n} object(s) looked at.", report.run_id);
            return Ok(());
        }
        Command::Act {
            dry_run,
            what: None,
        } => (
            "act".into(),
            vec![Step::Act],
            RunOptions {
                dry_run,
                ..RunOptions::default()
            },
        ),
        Command::Run {
            job,
            jobs_dir,
            dry_run,
        } => {
            let dir = jobs_dir.as_deref().unwrap_or(&ctx.config.daemon.jobs_dir);
            let loaded = Job::load(dir, &job).map_err(|e| Failure::usage(e.to_string()))?;
            let options = RunOptions {
                dry_run,
                source_kinds: loaded.source_kinds,
                stop: stop_on_signal(ctx.config.daemon.shutdown_grace),
                ..RunOptions::default()
            };
            (job, loaded.steps, options)
        }
        Command::Report { what } => return print_report(ctx, what).await,
        Command::Demo { .. }
        | Command::Serve { .. }
        | Command::Config { .. }
        | Command::Backtest { input: Some(_), .. } => unreachable!("handled before connecting"),
    };
    let report = execute(ctx, &job, &steps, now, &options).await?;
    print_run(&report);
    Ok(())
}

/// A stop that SIGTERM or SIGINT asks for (a CronJob pod being deleted): the stage in progress
/// may finish for four fifths of `grace`, then it is interrupted, so the pod exits before the
/// kubelet kills it.
fn stop_on_signal(grace: std::time::Duration) -> pipeline::Stop {
    let stop = pipeline::Stop::new();
    let signalled = stop.clone();
    tokio::spawn(async move {
        serving::shutdown_signal().await;
        signalled.finish();
        tokio::time::sleep(grace.mul_f64(0.8)).await;
        signalled.abort();
    });
    stop
}

fn check_horizon(horizon: usize) -> Result<usize, Failure> {
    match (1..=366).contains(&horizon) {
        true => Ok(horizon),
        false => Err(Failure::usage(format!(
            "--horizon: {horizon} is outside 1..=366"
        ))),
    }
}

fn backtest_plan(horizon: usize, windows: usize) -> Result<Plan, Failure> {
    let horizon = check_horizon(horizon)?;
    if !(1..=52).contains(&windows) {
        return Err(Failure::usage(format!(
            "--windows: {windows} is outside 1..=52"
        )));
    }
    Ok(Plan { horizon, windows })
}

/// `--model`/`--models` values; every choice when empty.
fn parse_models(names: &[String]) -> Result<Vec<ModelChoice>, Failure> {
    if names.is_empty() {
        return Ok(ModelChoice::every());
    }
    names
        .iter()
        .map(|n| {
            ModelChoice::parse_available(n).ok_or_else(|| {
                if n == ModelKind::Prophet.as_str() {
                    return Failure::usage(
                        "--model: prophet needs a build with `--features prophet`",
                    );
                }
                Failure::usage(format!(
                    "--model: {n:?} is not auto, {}",
                    crate::config::model_names()
                ))
            })
        })
        .collect()
}

fn print_backtest(
    targets: &[(Target, Day)],
    choices: &[ModelChoice],
    plan: Plan,
    format: Format,
) -> Result<Vec<Accuracy>, Failure> {
    let started = Instant::now();
    let scores = backtest::run(targets, choices, plan);
    if scores.is_empty() {
        return Err(Failure::run(std::io::Error::other(format!(
            "no series has the {} days of history a {}-day window needs",
            plan.horizon + backtest::MIN_TRAIN_DAYS,
            plan.horizon
        ))));
    }
    match format {
        Format::Table => {
            let summaries: Vec<Summary> = choices
                .iter()
                .map(|c| {
                    let name = c.to_string();
                    let of_model: Vec<Accuracy> =
                        scores.iter().filter(|a| a.model == name).cloned().collect();
                    backtest::summary(&name, &of_model)
                })
                .collect();
            print!("{}", report::accuracy_summary(&summaries).render(format));
        }
        _ => print!("{}", report::accuracy(&scores).render(format)),
    }
    eprintln!(
        "Backtested {} series × {} models, {} windows of {} days, in {:.1} s.",
        targets.len(),
        choices.len(),
        plan.windows,
        plan.horizon,
        started.elapsed().as_secs_f64()
    );
    Ok(scores)
}

async fn execute(
    ctx: &Context,
    job: &str,
    steps: &[Step],
    now: DateTime<Utc>,
    options: &RunOptions,
) -> Result<RunReport, Failure> {
    let started = Instant::now();
    let report = pipeline::run_once(ctx, job, steps, now, options)
        .await
        .map_err(Failure::run)?;
    eprintln!("{}", summary_line(&report, started.elapsed().as_secs_f64()));
    Ok(report)
}

/// One line: what the run did, in counts.
fn summary_line(report: &RunReport, secs: f64) -> String {
    let parts: Vec<String> = report
        .stages
        .iter()
        .map(|s| {
            let counts: Vec<String> = s.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} ({})", s.step, counts.join(" "))
        })
        .collect();
    format!(
        "Run {} finished in {secs:.1} s: {}.",
        report.run_id,
        parts.join(", ")
    )
}

fn print_run(report: &RunReport) {
    if !report.evaluations.is_empty() {
        print!(
            "{}",
            report::budgets_summary(&report.evaluations).render(Format::Table)
        );
    }
    if !report.changes.is_empty() {
        let with_outcome: Vec<_> = report
            .changes
            .iter()
            .map(|c| (c.clone(), "planned".to_string()))
            .collect();
        print!("{}", report::actions(&with_outcome).render(Format::Table));
    }
    if !report.actions.is_empty() {
        print!(
            "{}",
            report::object_actions(&report.actions).render(Format::Table)
        );
    }
    if let (Some(alert), Some(outcome)) = (&report.alert, &report.alert_outcome) {
        println!(
            "Slack message ({outcome}):\n{}",
            serde_json::to_string_pretty(alert).unwrap_or_default()
        );
    }
}

/// Every series, and the daily costs within the report's days.
async fn series_and_costs(
    store: &Store,
    args: &ReportArgs,
) -> Result<(Vec<StoredSeries>, Vec<(i64, Day, f64)>), Failure> {
    let series = store.series().await.map_err(Failure::run)?;
    let costs = store
        .daily_costs(args.from, args.to)
        .await
        .map_err(Failure::run)?;
    Ok((series, costs))
}

async fn print_report(ctx: &Context, what: ReportKind) -> Result<(), Failure> {
    let store = &ctx.store;
    let out = match what {
        ReportKind::Costs(args) => {
            let group_by = args
                .group_by
                .iter()
                .map(|d| {
                    Dimension::parse(d).map_err(|e| Failure::usage(format!("--group-by: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (series, costs) = series_and_costs(store, &args).await?;
            report::costs(&series, &costs, &group_by).render(args.format)
        }
        ReportKind::Units(args) => {
            let mut usage = Vec::new();
            for source in &ctx.config.sources {
                if matches!(source.kind, SourceKind::Prometheus(_)) {
                    let points = store
                        .usage(&source.name, args.from, args.to)
                        .await
                        .map_err(Failure::run)?;
                    usage.extend(points.into_iter().map(|u| (source.name.clone(), u)));
                }
            }
            let (series, costs) = series_and_costs(store, &args).await?;
            report::unit_costs(&usage, &series, &costs).render(args.format)
        }
        ReportKind::Accuracy(args) => {
            report::accuracy(&store.latest_accuracy().await.map_err(Failure::run)?)
                .render(args.format)
        }
        ReportKind::Forecasts(args) => {
            let forecasts = store.latest_forecasts().await.map_err(Failure::run)?;
            match args.format {
                Format::Table => report::forecast_totals(&forecasts).render(Format::Table),
                f => report::forecasts(&forecasts, args.from, args.to).render(f),
            }
        }
        ReportKind::Budgets(args) => {
            let evaluations = store.latest_evaluations().await.map_err(Failure::run)?;
            match args.format {
                Format::Table => report::budgets_summary(&evaluations).render(Format::Table),
                f => report::budgets(&evaluations).render(f),
            }
        }
        ReportKind::Actions(args) => {
            let steps =
                report::actions(&store.latest_planned_changes().await.map_err(Failure::run)?)
                    .render(args.format);
            let records = match store.latest_action_run().await.map_err(Failure::run)? {
                Some(run) => store.actions(run).await.map_err(Failure::run)?,
                None => Vec::new(),
            };
            format!(
                "{steps}{}",
                report::object_actions(&records).render(args.format)
            )
        }
        ReportKind::Anomalies(args) => report::anomalies(
            &store
                .latest_anomalies(args.from, args.to)
                .await
                .map_err(Failure::run)?,
        )
        .render(args.format),
        ReportKind::Runs(args) => {
            let runs = store.runs(20).await.map_err(Failure::run)?;
            report::runs(&runs).render(args.format)
        }
    };
    print!("{out}");
    Ok(())
}

async fn run_demo(
    dir: &Path,
    as_of: Day,
    now: DateTime<Utc>,
    serve: Option<std::net::SocketAddr>,
) -> Result<(), Failure> {
    let started = Instant::now();
    let target = dir.to_path_buf();
    // Generating the export runs polars, which blocks: keep it off the async workers.
    let files = tokio::task::spawn_blocking(move || demo::write(&target, as_of))
        .await
        .map_err(|e| Failure::run(std::io::Error::other(format!("demo task failed: {e}"))))?
        .map_err(Failure::run)?;
    eprintln!(
        "Wrote the demo organisation's FOCUS export: {} rows in {}.",
        files.rows,
        files.export.display()
    );
    let mut config = load_config(Some(&files.config), None)?;
    if serve.is_some() && !config.api.has_tokens() {
        config.api.read_tokens = vec![crate::config::Secret::new(serving::new_token())];
        config.api.admin_tokens = vec![crate::config::Secret::new(serving::new_token())];
    }
    let ctx = connect(config).await?;
    let result = pipeline::run_once(&ctx, "demo", &Step::ALL, now, &RunOptions::default()).await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.store.close().await;
            return Err(Failure::run(e));
        }
    };
    let summary = ctx.store.cost_summary().await.map_err(Failure::run)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{}", summary_line(&report, secs));

    println!("\ncostcast demo — Northwind Analytics, as of {as_of}\n");
    println!(
        "Ingested {} daily cost points in {} series ({} to {}), total {} USD.\n",
        summary.points,
        summary.series,
        summary.first_day.map(|d| d.to_string()).unwrap_or_default(),
        summary.last_day.map(|d| d.to_string()).unwrap_or_default(),
        format_amount(summary.total),
    );
    println!("Budgets this month (projected = spend to date + forecast for the remaining days):");
    print!(
        "{}",
        report::budgets_summary(&report.evaluations).render(Format::Table)
    );
    let breaches = report
        .evaluations
        .iter()
        .filter(|e| e.status == Status::Breach)
        .count();
    println!(
        "{breaches} of {} budgets predicted to breach. \"Backtest error\" is how far this forecast \
         missed 30-day totals of the same scope, held out from its own history.\n",
        report.evaluations.len()
    );
    for e in report.evaluations.iter().filter(|e| e.steps > 0) {
        let Some(budget) = ctx.config.budgets.iter().find(|b| b.name == e.budget) else {
            continue;
        };
        println!(
            "{}: step {} of its {}-step action ladder is in effect ({} mode: described, not applied).",
            e.budget,
            e.steps,
            budget.actions.len(),
            budget.mode.as_str()
        );
        for c in crate::act::plan(budget, budget.actions.len() as u32) {
            let when = if c.step <= e.steps {
                "in effect"
            } else {
                "if the breach persists"
            };
            println!("  step {} ({when}): {}", c.step, c.description);
        }
        println!();
    }
    if let Some(alert) = &report.alert {
        println!("Slack message that would be sent (no webhook configured):");
        println!(
            "{}\n",
            serde_json::to_string_pretty(alert).unwrap_or_default()
        );
    }
    let cfg = relative_to_cwd(&files.config);
    let me = invoked_as();
    println!("Where to look next:");
    println!("  database     {}", files.database.display());
    println!("  export       {}", files.export.display());
    println!("  config       {cfg}");
    for next in [
        "report budgets",
        "report forecasts",
        "report anomalies",
        "report accuracy   (backtest of every forecast series)",
        "backtest          (every model side by side)",
        "report costs --group-by team,service",
        "run --job daily   (the scheduled pipeline, from jobs/daily.toml)",
    ] {
        println!("  {me} --config {cfg} {next}");
    }
    if serve.is_none() {
        println!("  {me} demo --serve   (the report page and API on this data)");
    }
    println!("Finished in {secs:.1} s.");
    let Some(addr) = serve else {
        ctx.store.close().await;
        return Ok(());
    };
    let read = ctx
        .config
        .api
        .read_tokens
        .first()
        .map(|t| t.expose().to_string());
    let admin = ctx
        .config
        .api
        .admin_tokens
        .first()
        .map(|t| t.expose().to_string());
    serving::serve(ctx, addr, Vec::new(), serving::shutdown_signal(), move |bound| {
        println!("\nServing the demo on http://{bound}/ (Ctrl-C stops).");
        if let Some(read) = &read {
            println!("  page         http://{bound}/?token={read}");
            println!("  read token   {read}");
            println!("  API          curl -H 'Authorization: Bearer {read}' http://{bound}/api/v1/budgets");
        }
        if let Some(admin) = &admin {
            println!("  admin token  {admin}   (POST /api/v1/budgets/NAME/mode, /api/v1/actions/ID/restore)");
        }
        println!("  OpenAPI      http://{bound}/api/v1/openapi.json");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    })
    .await
    .map_err(Failure::run)
}

/// How the user invoked costcast, for commands they can paste: the path they ran (shortened
/// when it is under the working directory, as with `cargo run`), or `costcast` from `PATH`.
fn invoked_as() -> String {
    match std::env::args().next() {
        Some(arg0) if Path::new(&arg0).components().count() > 1 => {
            relative_to_cwd(Path::new(&arg0))
        }
        Some(arg0) => arg0,
        None => "costcast".into(),
    }
}

/// `path` relative to the working directory when it is under it, else as given.
fn relative_to_cwd(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(&cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| path.display().to_string())
}
