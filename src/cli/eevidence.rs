//! `writ eevidence refresh-authorities`: read the national e-Evidence system's list of
//! competent authorities into the registry (`eevidence::authorities`).

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use crate::settings::Settings;

/// `writ eevidence` actions.
#[derive(Debug, Subcommand)]
pub enum EevidenceAction {
    /// Ask the national system (etsi.eevidence_url) for its list of competent authorities and
    /// bring the registry in step with it, audited as eevidence.authorities_refreshed. An
    /// answer Writ cannot read changes nothing (exit code 1).
    RefreshAuthorities,
}

/// Runs the action.
pub fn run(settings: Settings, action: EevidenceAction) -> anyhow::Result<()> {
    let EevidenceAction::RefreshAuthorities = action;
    let db = super::open_db(&settings)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
    let key = crate::disclosure::keys::signing_key(&settings.package)
        .context("cannot load the package signing key, which signs the call")?;
    let client = crate::etsi::deliver::client(&settings.etsi)?;
    let sender = crate::eevidence::outbox::Sender {
        settings: settings.etsi.clone(),
        key,
        client,
        interval: Duration::from_secs(settings.api.jobs_interval_secs),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = runtime.block_on(crate::eevidence::authorities::refresh(&db, &sender))?;
    println!(
        "the national system lists {} authorities: {} added, {} changed, {} removed (suspended)",
        r.listed, r.added, r.changed, r.removed
    );
    Ok(())
}
