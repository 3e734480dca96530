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
        app.run_until_stopped().await.context("server error")?;
        tracing::info!("shutdown complete");
        Ok(())
    })
}
