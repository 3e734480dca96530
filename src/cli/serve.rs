//! `writ serve`: run the HTTP service until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Args;

use crate::settings::Settings;
use crate::telemetry;
use crate::web::Application;

/// `writ serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// On an empty database, first seed a demo: synthetic accounts, demo authorities with keys,
    /// staff users and a queue of orders. The users' passwords go to a file in the data folder.
    #[arg(long)]
    pub demo: bool,
}

/// Where the demo's legal-team mail goes when `mail.legal_team` is empty (a reserved domain:
/// the outbox shows the messages; nothing leaves).
pub const DEMO_LEGAL_TEAM: &str = "legal-team@demo.example";

/// Builds the runtime and serves; returns once a graceful shutdown has finished.
pub fn run(settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(&settings.log);
    let mut settings = settings;
    if args.demo {
        super::demo::seed_demo_workspace(&settings)?;
        // The demo's reminders and notices go somewhere visible in the outbox.
        if settings.mail.legal_team.is_empty() {
            settings.mail.legal_team = vec![DEMO_LEGAL_TEAM.to_owned()];
        }
    }
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
