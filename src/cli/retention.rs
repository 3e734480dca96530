//! `writ retention run`: delete expired metadata except what holds keep.

use anyhow::Context;
use clap::Subcommand;

use crate::audit::Actor;
use crate::metadata::retention;
use crate::settings::Settings;

/// `writ retention` actions.
#[derive(Debug, Subcommand)]
pub enum RetentionAction {
    /// Delete data past its retention period (see [retention] in the configuration).
    Run {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs the action.
pub fn run(settings: Settings, action: RetentionAction) -> anyhow::Result<()> {
    let RetentionAction::Run { dry_run } = action;
    let db = super::open_db(&settings)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
    let mut conn = db.conn()?;
    let now = chrono::Utc::now().timestamp_micros();
    let actor = Actor::new(crate::audit::ActorKind::System, "retention");
    // Orders hold their targets by identifier from receipt; those holds must reach the
    // accounts before anything is purged (a dry run resolves them too: holds only keep data).
    let resolved = crate::orders::holds::resolve_all(&mut conn, chrono::Utc::now())
        .context("cannot resolve pending order holds; nothing was deleted")?;
    if resolved > 0 {
        println!("resolved {resolved} pending order holds to accounts first");
    }
    let r = retention::run(&mut conn, &settings.retention, now, dry_run, &actor)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} IP events ({} whole monthly partitions) and {} identifier intervals; kept under hold: {} IP events, {} identifier intervals",
        r.ip_events_deleted,
        r.partitions_dropped,
        r.identifiers_deleted,
        r.ip_events_held,
        r.identifiers_held
    );
    Ok(())
}
