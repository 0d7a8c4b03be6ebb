//! Serving: the report API, the scheduler beside it, the
//! announcement of where they are, and stopping both cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;
use rand::distributions::Alphanumeric;

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::api;
use crate::app::App;
use crate::pipeline::Job;
use crate::pipeline::daemon::{self, Daemon, PipelineRunner};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source} (pick another with --listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Loading what the API serves failed.
    #[error("loading the store for the API: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The scheduler could not start.
    #[error(transparent)]
    Schedule(#[from] crate::pipeline::daemon::DaemonError),
}

/// A fresh random token: 32 alphanumerics from the OS-seeded CSPRNG (190 bits).
pub fn new_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends).
pub async fn shutdown_signal() {
    let interrupt = async {
        // Without a Ctrl-C handler, wait for SIGTERM alone rather than stopping at once.
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "Cannot listen for Ctrl-C; SIGTERM still stops.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("Shutting down: finishing requests and the stage in progress.");
}

/// Serves the API and page on `addr`, and runs `jobs` on their schedules (none with
/// `--no-scheduler`), until `shutdown` resolves; `on_ready` is told the bound address.
pub async fn serve(
    ctx: App,
    addr: SocketAddr,
    jobs: Vec<(String, Job)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr()?;
    let ctx = Arc::new(ctx);
    let grace = ctx.config.daemon.shutdown_grace;
    let state = api::state(ctx.clone()).await?;
    let cube = state.cube();
    tracing::info!(
        addr = %bound,
        series = cube.series_count(),
        points = cube.points(),
        "Serving the report API."
    );
    let stopping = CancellationToken::new();
    let scheduler = match jobs.is_empty() {
        true => None,
        false => {
            let daemon = Daemon::new(PipelineRunner::new(ctx.clone()), jobs);
            let stopped = stopping.clone().cancelled_owned();
            Some(tokio::spawn(daemon::run(daemon, stopped, grace)))
        }
    };
    on_ready(bound);
    let signalled = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        signalled.cancel();
    });
    let server = api::serve(state, listener, stopping.clone().cancelled_owned());
    // Requests still open when the grace period ends are dropped, like the run.
    let served = async {
        tokio::select! {
            served = server => served,
            () = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => Ok(()),
        }
    };
    let (served, scheduled) = tokio::join!(served, async {
        match scheduler {
            Some(task) => task.await.ok(),
            None => None,
        }
    });
    served?;
    match scheduled {
        Some(Ok(stopped)) => tracing::info!(run = ?stopped, "Scheduler stopped."),
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    Ok(())
}
