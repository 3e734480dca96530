//! `writ serve`: run the HTTP service until SIGTERM or Ctrl-C.

use anyhow::Context;

use crate::settings::Settings;
use crate::telemetry;
use crate::web::Application;

/// Builds the runtime and serves; returns once a graceful shutdown has finished.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let app = Application::build(settings).await.context("cannot start")?;
        match app.record_policy_set().await {
            Ok(true) => tracing::info!("recorded the new policy set in the audit log"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the policy set is not recorded in the audit log yet")
            }
        }
        app.run_until_stopped().await.context("server error")?;
        tracing::info!("shutdown complete");
        Ok(())
    })
}
