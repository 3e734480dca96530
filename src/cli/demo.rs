//! `writ demo seed`: deterministic synthetic accounts and IP events.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::db::{Db, migrations};
use crate::metadata::demo::{self, DemoSpec};
use crate::settings::Settings;

/// `writ demo` actions.
#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Fill the store with synthetic data (documentation IP ranges, fiction phone numbers).
    Seed {
        /// Accounts to make.
        #[arg(long, default_value_t = 1000)]
        accounts: u64,
        /// IP events per account.
        #[arg(long, default_value_t = 20)]
        events_per_account: u64,
        /// The same seed makes the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Runs the action.
pub fn run(settings: Settings, action: DemoAction) -> anyhow::Result<()> {
    let DemoAction::Seed {
        accounts,
        events_per_account,
        seed,
    } = action;
    let db = Db::open(&settings.database).context("cannot open the database")?;
    migrations::run_pending(&mut *db.conn()?)?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(accounts), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let summary = demo::seed(
        &db,
        DemoSpec {
            accounts,
            events_per_account,
            seed,
        },
        &|done| bar.set_position(done),
    )?;
    bar.finish_and_clear();
    println!(
        "seeded {} accounts and {} new IP events in {:.1} s",
        summary.accounts,
        summary.events,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
