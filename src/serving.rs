//! Starting the report server from the command line: the listener, the announcement of where
//! it is, and stopping cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;
use rand::distributions::Alphanumeric;

use crate::api;
use crate::pipeline::Context;

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
        let _ = tokio::signal::ctrl_c().await;
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
    tracing::info!("Shutting down: finishing requests in flight.");
}

/// Serves the API and page on `addr` until a signal; `on_ready` is told the bound address.
pub async fn serve(
    ctx: Context,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr()?;
    let state = api::state(Arc::new(ctx)).await?;
    let cube = state.cube();
    tracing::info!(
        addr = %bound,
        series = cube.series_count(),
        points = cube.points(),
        "Serving the report API."
    );
    on_ready(bound);
    api::serve(state, listener, shutdown_signal()).await?;
    Ok(())
}
