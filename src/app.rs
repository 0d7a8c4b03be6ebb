//! What every command, the server and the tests build once from a config: the store, the HTTP
//! client, the Kubernetes API (connected on first use) and the clock.

pub mod serve;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::act::Cluster;
use crate::act::kubernetes::KubeError;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store could not be opened, migrated or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built (no TLS backend).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Where "now" comes from: the system clock, or a fixed instant (tests, replays).
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system's UTC clock.
    #[default]
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current instant by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }
}

/// What a run needs: configuration, the store, an HTTP client, the Kubernetes API once a step
/// needs it, and the clock that stamps runs.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// The HTTP client for webhooks.
    pub http: reqwest::Client,
    /// The clock that stamps runs, stages and mode changes.
    pub clock: Clock,
    /// The Kubernetes API once connected. Only a connection is kept: a failure is retried on
    /// the next call, so a server that starts before the API server recovers when it is up.
    cluster: tokio::sync::OnceCell<Cluster>,
}

impl App {
    /// Connects the configured store, applies pending migrations, applies budget modes set
    /// through the API over the file's, and builds the HTTP client.
    pub async fn connect(config: Config) -> Result<App, AppError> {
        let store = Store::connect(&config.database_url).await?;
        App::with_store(config, store).await
    }

    /// As [`App::connect`], for a command that only reads: the database must exist already.
    pub async fn connect_existing(config: Config) -> Result<App, AppError> {
        let store = Store::connect_existing(&config.database_url).await?;
        App::with_store(config, store).await
    }

    async fn with_store(mut config: Config, store: Store) -> Result<App, AppError> {
        let http = http_client()?;
        let applied = store.migrate().await?;
        if applied > 0 {
            tracing::info!(applied, backend = store.backend(), "Migrations applied.");
        }
        apply_modes(&store, &mut config).await?;
        Ok(App {
            config,
            store,
            http,
            clock: Clock::System,
            cluster: tokio::sync::OnceCell::new(),
        })
    }

    /// The same app on another clock.
    pub fn with_clock(mut self, clock: Clock) -> App {
        self.clock = clock;
        self
    }

    /// A copy for one more run of a long-lived process: the same store, client and Kubernetes
    /// connection, with budget modes read again, so a mode set through the API since the
    /// process started applies to the next scheduled run.
    pub async fn refreshed(&self) -> Result<App, StoreError> {
        let mut config = self.config.clone();
        apply_modes(&self.store, &mut config).await?;
        Ok(App {
            config,
            store: self.store.clone(),
            http: self.http.clone(),
            clock: self.clock,
            cluster: tokio::sync::OnceCell::new_with(self.cluster.get().cloned()),
        })
    }

    /// The Kubernetes API, connecting on the first call that succeeds.
    pub async fn cluster(&self) -> Result<&Cluster, KubeError> {
        self.cluster
            .get_or_try_init(|| Cluster::connect(self.config.kubernetes.api_url.as_deref()))
            .await
    }
}

async fn apply_modes(store: &Store, config: &mut Config) -> Result<(), StoreError> {
    let modes = store.budget_modes().await?;
    for budget in &mut config.budgets {
        if let Some(&mode) = modes.get(&budget.name)
            && mode != budget.mode
        {
            tracing::info!(budget = %budget.name, mode = mode.as_str(), "Budget mode set through the API applies.");
            budget.mode = mode;
        }
    }
    Ok(())
}

/// The HTTP client for webhooks: bounded timeouts so a stuck endpoint cannot stall a run.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("costcast/", env!("CARGO_PKG_VERSION")))
        .build()
}
