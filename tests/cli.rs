//! The binary as a user runs it.

use std::process::{Command, Output};

fn costcast(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_costcast"));
    cmd.args(args)
        .env_remove("COSTCAST_DATABASE_URL")
        .env_remove("COSTCAST_SLACK_WEBHOOK_URL")
        .env("RUST_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("costcast runs")
}

/// Runs the demo into `dir` as of a fixed day, so its figures are the same every run.
fn demo(dir: &std::path::Path) -> Output {
    costcast(
        &[
            "--as-of",
            "2025-11-20",
            "demo",
            "--dir",
            dir.to_str().unwrap(),
        ],
        &[],
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn a_demo_folder_whose_path_holds_a_quote_can_be_moved_and_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("team \"ml\" demo");
    let out = demo(&written);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The config names its database relative to itself, so the folder can move.
    let moved = dir.path().join("moved");
    std::fs::rename(&written, &moved).unwrap();
    let config = moved.join("costcast.toml");
    let out = costcast(
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "budgets",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let budgets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(budgets.as_array().map(Vec::len), Some(3), "{budgets}");
}

#[test]
fn a_report_on_a_database_that_does_not_exist_says_so_and_creates_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("costcast.toml");
    std::fs::write(&config, "[database]\nurl = \"sqlite://missing.db\"\n").unwrap();
    let out = costcast(
        &["--config", config.to_str().unwrap(), "report", "runs"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no such database file"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.path().join("missing.db").exists(),
        "a read-only command created a database"
    );
}

#[test]
fn demo_prints_a_breaching_budget_and_where_to_look_next() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = demo(&demo_dir);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("ml-team") && stdout.contains("breach"),
        "{stdout}"
    );
    assert!(stdout.contains("Where to look next"), "{stdout}");
    assert!(
        stdout.contains("Slack message that would be sent"),
        "{stdout}"
    );
    assert!(demo_dir.join("costcast.db").exists());

    // The report reads back what the demo stored.
    let config = demo_dir.join("costcast.toml");
    let out = costcast(
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "budgets",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let budgets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(budgets.as_array().unwrap().len(), 3);
    assert!(
        budgets
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["status"] == "breach")
    );

    let out = costcast(
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "costs",
            "--group-by",
            "team",
            "--format",
            "csv",
        ],
        &[],
    );
    let csv = text(&out.stdout);
    assert!(csv.starts_with("team,currency,from,to,cost\n"), "{csv}");
    assert_eq!(csv.lines().count(), 7, "six teams and a header: {csv}");

    // Each budget's forecast was backtested, and its error is published next to it.
    for b in budgets.as_array().unwrap() {
        let error = b["forecast_error_pct"].as_f64();
        assert!(error.is_some_and(|e| (0.0..50.0).contains(&e)), "{b}");
    }
    let out = costcast(
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "accuracy",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let accuracy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let budget_rows: Vec<&serde_json::Value> = accuracy
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["series"].as_str().unwrap().starts_with("budget:"))
        .collect();
    assert_eq!(budget_rows.len(), 3, "{accuracy}");
    for a in budget_rows {
        assert_eq!(
            (a["windows"].as_u64(), a["horizon"].as_u64()),
            (Some(3), Some(30))
        );
        assert_eq!(a["model"], "calendar");
        let coverage = a["coverage80"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&coverage), "{a}");
    }
}

#[test]
fn backtest_input_scores_each_model_on_each_series() {
    // A weekly cycle on a 0.5%-a-day trend: the calendar model follows the trend, the last week
    // repeated does not, so over 30-day windows the calendar total is the closer one.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("series_id,date,cost\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for i in 0..300 {
        let day = start + chrono::Duration::days(i);
        let weekly = if i % 7 >= 5 { 0.5 } else { 1.0 };
        let noise = 1.0 + 0.02 * ((i * 7919 % 11) as f64 - 5.0) / 5.0;
        let trend = 1000.0 * (1.0 + 0.005 * i as f64);
        csv.push_str(&format!("up,{day},{:.2}\n", trend * weekly * noise));
        csv.push_str(&format!("flat,{day},{:.2}\n", 200.0 * weekly * noise));
    }
    std::fs::write(&input, csv).unwrap();
    let out = costcast(
        &[
            "backtest",
            "--input",
            input.to_str().unwrap(),
            "--horizon",
            "30",
            "--windows",
            "2",
            "--models",
            "calendar,seasonal-naive",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "2 series × 2 models: {rows:?}");
    let total_error = |series: &str, model: &str| {
        rows.iter()
            .find(|r| r["series"] == series && r["model"] == model)
            .and_then(|r| r["total_error_pct"].as_f64())
            .unwrap()
    };
    assert!(total_error("up", "calendar") < 2.0, "{rows:?}");
    assert!(total_error("up", "seasonal-naive") > 3.0, "{rows:?}");
    assert!(total_error("flat", "calendar") < 2.0, "{rows:?}");
    assert!(rows.iter().all(|r| r["windows"] == 2 && r["horizon"] == 30));

    // The table summarises per model.
    let out = costcast(
        &[
            "backtest",
            "--input",
            input.to_str().unwrap(),
            "--models",
            "calendar",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("total err median %"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn backtest_input_without_a_value_column_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "series_id,date,amount\na,2024-01-01,1\n").unwrap();
    let out = costcast(&["backtest", "--input", input.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in.csv line 1: missing column value (need series_id,date,value)"),
        "{stderr}"
    );
}

#[test]
fn a_config_error_exits_2_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("costcast.toml");
    std::fs::write(&config, "[[budgets]]\nname = \"a\"\namount = 0\n").unwrap();
    let out = costcast(&["--config", config.to_str().unwrap(), "budgets"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("budgets[0].amount: must be > 0"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_print_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("costcast.toml");
    std::fs::write(
        &config,
        "[notify.slack]\nwebhook_url = \"https://hooks.example/T/B/s3cr3t\"\n",
    )
    .unwrap();
    let out = costcast(
        &["--config", config.to_str().unwrap(), "config", "print"],
        &[(
            "COSTCAST_DATABASE_URL",
            "postgres://app:hunter2@db.internal/costcast",
        )],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("postgres://app:[redacted]@db.internal/costcast"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("s3cr3t"),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_database_exits_1_and_says_which() {
    let out = costcast(
        &["migrate"],
        &[(
            "COSTCAST_DATABASE_URL",
            "postgres://costcast@127.0.0.1:1/costcast",
        )],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot open database postgres://costcast@127.0.0.1:1/costcast"),
        "{stderr}"
    );
}

#[test]
fn forecast_input_writes_45_days_per_series_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    let mut csv = String::from("series_id,date,value\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for i in 0..120 {
        let day = start + chrono::Duration::days(i);
        csv.push_str(&format!(
            "a,{day},{}\nb,{day},{}\n",
            100 + i % 7 * 10,
            5 + i % 3
        ));
    }
    std::fs::write(&input, csv).unwrap();
    let out = costcast(
        &[
            "forecast",
            "--input",
            input.to_str().unwrap(),
            "--horizon",
            "45",
            "--output",
            output.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(
        lines[0],
        "series_id,date,mean,lo80,hi80,lo95,hi95,sd_level,sd_noise,change_day,change_percent"
    );
    assert_eq!(lines.len(), 1 + 2 * 45);
    assert!(lines[1].starts_with("a,2024-04-30,"), "{}", lines[1]);
}

#[test]
fn forecast_input_with_a_bad_value_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(
        &input,
        "series_id,date,value\na,2024-01-01,1\na,2024-01-02,lots\n",
    )
    .unwrap();
    let out = costcast(&["forecast", "--input", input.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in.csv line 3: column value: \"lots\" is not a number"),
        "{stderr}"
    );
    // An infinite value parses as a float but is not a cost either.
    std::fs::write(
        &input,
        "series_id,date,value\na,2024-01-01,1\na,2024-01-02,inf\n",
    )
    .unwrap();
    let out = costcast(&["backtest", "--input", input.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in.csv line 3: column value: \"inf\" is not a number"),
        "{stderr}"
    );
}

#[test]
fn run_job_daily_runs_the_shipped_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = demo(&demo_dir);
    assert!(out.status.success());
    let config = demo_dir.join("costcast.toml");
    let jobs = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs");
    let out = costcast(
        &[
            "--config",
            config.to_str().unwrap(),
            "--as-of",
            "2025-11-20",
            "run",
            "--job",
            "daily",
            "--jobs-dir",
            jobs,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ingest (") && text(&out.stderr).contains("notify ("),
        "{}",
        text(&out.stderr)
    );
    let out = costcast(
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "runs",
            "--format",
            "json",
        ],
        &[],
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["job"], "daily");
    assert_eq!(runs[0]["outcome"], "ok");
}

#[test]
fn bad_arguments_exit_2_and_name_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("costcast.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n",
            dir.path().join("c.db").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let jobs = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (&["act", "restore"], "--budget <BUDGET>"),
        (
            &["--log-format", "xml", "report", "runs"],
            "\"xml\" is not text or json",
        ),
        (
            &["run", "--job", "nope", "--jobs-dir", jobs],
            "cannot read job file",
        ),
        (
            &["act", "restore", "--budget", "nope"],
            "--budget: no budget named \"nope\" is configured or holds changes",
        ),
        (
            &["ingest", "--from", "2024-02-01", "--to", "2024-01-01"],
            "--from/--to: range ends (2024-01-01) before it starts (2024-02-01)",
        ),
        (
            &["ingest", "--source", "nope"],
            "--source: no source named \"nope\"",
        ),
        (
            &["report", "costs", "--group-by", "service,bad name"],
            "--group-by: unknown dimension \"bad name\"",
        ),
        (
            &["forecast", "--input", "x.csv", "--horizon", "0"],
            "--horizon: 0 is outside 1..=366",
        ),
        (
            &["forecast", "--input", "x.csv", "--model", "arima"],
            "--model: \"arima\" is not auto, calendar, mstl-ets, ets, seasonal-naive",
        ),
        (
            &["backtest", "--input", "x.csv", "--windows", "0"],
            "--windows: 0 is outside 1..=52",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        let out = costcast(&all, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Refused before anything ran: no run was recorded.
    let out = costcast(
        &["--config", config, "report", "runs", "--format", "json"],
        &[],
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs, serde_json::json!([]), "{}", text(&out.stderr));
}

#[test]
fn serve_without_a_token_exits_2_and_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let out = costcast(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("COSTCAST_DATABASE_URL", db.as_str())],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("api.read_tokens") && stderr.contains("COSTCAST_API_READ_TOKENS"),
        "{stderr}"
    );
}

#[test]
fn demo_serve_prints_a_url_and_read_token_that_work_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_costcast"))
        .args(["--as-of", "2025-11-20", "demo", "--dir"])
        .arg(dir.path().join("demo"))
        .args(["--serve", "--listen", "127.0.0.1:0"])
        .env_remove("COSTCAST_API_READ_TOKENS")
        .env_remove("COSTCAST_API_ADMIN_TOKENS")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("costcast runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut page, mut token) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("page") {
            page = Some(url.trim().to_string());
        }
        if let Some(t) = line.trim().strip_prefix("read token") {
            token = Some(t.trim().to_string());
            break;
        }
    }
    let (page, token) = (page.expect("a page URL"), token.expect("a read token"));
    assert!(token.len() >= 32, "{token}");
    assert!(page.ends_with(&format!("/?token={token}")), "{page}");
    let base = page.split("/?").next().unwrap().to_string();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, budgets) = runtime.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("{base}/api/v1/budgets"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (
            resp.status(),
            resp.json::<serde_json::Value>().await.unwrap(),
        )
    });
    assert_eq!(status, 200);
    assert_eq!(budgets.as_array().unwrap().len(), 3);

    // SIGTERM, as Kubernetes sends: the server finishes and exits 0.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn forecast_input_with_backtest_windows_recalibrates_the_level_error_and_keeps_the_mean() {
    // Spend that moves between two levels every few weeks: pooling the level error with what
    // the backtest windows' totals really missed moves it (here it narrows: the model's own
    // was wider than its misses); the mean is the model's either way.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("series_id,date,value\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for i in 0..240i64 {
        let day = start + chrono::Duration::days(i);
        let level = if (i / 17) % 2 == 0 { 100 } else { 160 };
        csv.push_str(&format!("a,{day},{}\n", level + i % 7 * 3));
    }
    std::fs::write(&input, csv).unwrap();
    let run = |windows: &str| {
        let output = dir.path().join(format!("out{windows}.csv"));
        let out = costcast(
            &[
                "forecast",
                "--input",
                input.to_str().unwrap(),
                "--horizon",
                "30",
                "--backtest-windows",
                windows,
                "--output",
                output.to_str().unwrap(),
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let written = std::fs::read_to_string(&output).unwrap();
        let column = |i: usize| -> f64 {
            written
                .lines()
                .skip(1)
                .map(|l| l.split(',').nth(i).unwrap().parse::<f64>().unwrap())
                .sum()
        };
        (column(2), column(7))
    };
    let (mean, level) = run("0");
    let (mean3, level3) = run("3");
    assert!((mean - mean3).abs() < 1e-6, "{mean} vs {mean3}");
    assert!(
        (level3 - level).abs() > 0.1 * level,
        "level error {level3} vs {level}"
    );
}
