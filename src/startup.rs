//! Building what a command needs from config — the store and the HTTP client — the same way
//! for `main` and for the tests.

use std::time::Duration;

use crate::config::Config;
use crate::pipeline::Context;
use crate::store::{Store, StoreError};

/// Connects the configured store, applies pending migrations, applies budget modes set through
/// the API over the file's, and builds the HTTP client.
pub async fn context(mut config: Config) -> Result<Context, StoreError> {
    let store = Store::connect(&config.database_url).await?;
    let applied = store.migrate().await?;
    if applied > 0 {
        tracing::info!(applied, backend = store.backend(), "Migrations applied.");
    }
    apply_modes(&store, &mut config).await?;
    Ok(Context {
        config,
        store,
        http: http_client(),
        cluster: tokio::sync::OnceCell::new(),
    })
}

/// A copy of `ctx` for one more run of a long-lived process: the same store, client and
/// Kubernetes connection, with budget modes read again, so a mode set through the API since
/// the process started applies to the next scheduled run.
pub async fn refreshed(ctx: &Context) -> Result<Context, StoreError> {
    let mut config = ctx.config.clone();
    apply_modes(&ctx.store, &mut config).await?;
    Ok(Context {
        config,
        store: ctx.store.clone(),
        http: ctx.http.clone(),
        cluster: tokio::sync::OnceCell::new_with(ctx.cluster.get().cloned()),
    })
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
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("costcast/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
