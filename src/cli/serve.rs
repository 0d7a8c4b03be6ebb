//! `costcast serve`: the jobs on their schedules and the report API and page beside them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{Failure, Globals, connect};
use crate::app::serve::{self, shutdown_signal};
use crate::pipeline;

/// Options of `costcast serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: api.listen, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Serve the API only, for replicas beside the one that runs the jobs.
    #[arg(long)]
    no_scheduler: bool,
    /// Folder holding job files (default: daemon.jobs_dir, `jobs`).
    #[arg(long, value_name = "DIR")]
    jobs_dir: Option<PathBuf>,
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(globals: &Globals, args: ServeArgs) -> Result<(), Failure> {
    let config = globals.load_config()?;
    if !config.api.has_tokens() {
        return Err(Failure::usage(
            "serve needs a token: set api.read_tokens (and api.admin_tokens) in the config, \
             or COSTCAST_API_READ_TOKENS / COSTCAST_API_ADMIN_TOKENS (comma-separated)",
        ));
    }
    let addr = args.listen.unwrap_or(config.api.listen);
    let jobs = match args.no_scheduler {
        true => Vec::new(),
        false => {
            let dir = args
                .jobs_dir
                .unwrap_or_else(|| config.daemon.jobs_dir.clone());
            pipeline::job::load_all(&dir).map_err(|e| {
                Failure::usage(format!(
                    "{e} (or pass --no-scheduler for an API-only replica)"
                ))
            })?
        }
    };
    let scheduled = match jobs.is_empty() {
        true => "no scheduler".to_string(),
        false => {
            let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
            format!("jobs {}", names.join(", "))
        }
    };
    let app = connect(config).await?;
    serve::serve(app, addr, jobs, shutdown_signal(), |bound| {
        eprintln!(
            "Serving the report page on http://{bound}/ and the API on http://{bound}/api/v1/, \
             {scheduled} (Ctrl-C stops)."
        );
    })
    .await
    .map_err(Failure::run)
}
