//! `costcast demo`: the whole pipeline on a generated organisation, with no other service, then
//! what to try next, and optionally the report page on that data.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::{Failure, Globals, connect, load_config, print};
use crate::app::serve::{self, new_token, shutdown_signal};
use crate::config::Secret;
use crate::demo::{self, explain};
use crate::pipeline::{self, RunOptions, Step};

/// Options of `costcast demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo export, config and database.
    #[arg(long, default_value = "costcast-demo")]
    dir: PathBuf,
    /// Then serve the report page and API on the demo data, with fresh tokens.
    #[arg(long)]
    pub serve: bool,
    /// Address to serve on (with --serve).
    #[arg(long, value_name = "ADDR", default_value = crate::config::DEFAULT_LISTEN, requires = "serve")]
    listen: SocketAddr,
}

/// Writes the demo, runs every step on it, explains the result, and serves it if asked.
pub async fn run(globals: &Globals, args: DemoArgs) -> Result<(), Failure> {
    globals.start_logging_without_config()?;
    let started = Instant::now();
    let (now, as_of) = (globals.now(), globals.today());
    let target = args.dir.clone();
    // Generating the export runs polars, which blocks: keep it off the async workers.
    let files = tokio::task::spawn_blocking(move || demo::write(&target, as_of))
        .await
        .map_err(|e| Failure::message(format!("demo task failed: {e}")))?
        .map_err(Failure::run)?;
    eprintln!(
        "Wrote the demo organisation's FOCUS export: {} rows in {}.",
        files.rows,
        files.export.display()
    );
    let mut config = load_config(Some(&files.config), globals, None)?;
    if args.serve && !config.api.has_tokens() {
        config.api.read_tokens = vec![Secret::new(new_token())];
        config.api.admin_tokens = vec![Secret::new(new_token())];
    }
    let app = connect(config).await?;
    let ran = async {
        let report = pipeline::run_once(&app, "demo", &Step::ALL, now, &RunOptions::default())
            .await
            .map_err(Failure::run)?;
        let summary = app.store.cost_summary().await.map_err(Failure::run)?;
        Ok::<_, Failure>((report, summary))
    }
    .await;
    let (report, summary) = match ran {
        Ok(ran) => ran,
        Err(e) => {
            app.store.close().await;
            return Err(e);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{}", print::summary_line(&report, secs));
    let run = explain::DemoRun {
        as_of,
        summary: &summary,
        report: &report,
        config: &app.config,
        files: &files,
    };
    let me = invoked_as();
    print!(
        "{}",
        explain::explanation(&run, &me, &relative_to_cwd(&files.config))
    );
    if !args.serve {
        println!("  {me} demo --serve   (the report page and API on this data)");
    }
    println!("Finished in {secs:.1} s.");
    if !args.serve {
        app.store.close().await;
        return Ok(());
    }
    serve_demo(app, args.listen).await
}

/// Serves the demo's store until Ctrl-C, first printing the page's address and tokens.
async fn serve_demo(app: crate::app::App, addr: SocketAddr) -> Result<(), Failure> {
    let token = |tokens: &[Secret]| tokens.first().map(|t| t.expose().to_string());
    let read = token(&app.config.api.read_tokens);
    let admin = token(&app.config.api.admin_tokens);
    serve::serve(app, addr, Vec::new(), shutdown_signal(), move |bound| {
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
        // The banner is read by scripts waiting for the server; a closed stdout changes nothing.
        std::io::stdout().flush().ok();
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
