//! `writ migrate`: apply (default), revert or list the embedded database migrations.

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::db::{Db, migrations};
use crate::settings::Settings;

/// Arguments of `writ migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// What to do; without one, apply every pending migration.
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
}

/// `writ migrate` actions.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration (the default).
    Up,
    /// Revert applied migrations, newest first.
    Revert {
        /// How many to revert.
        #[arg(long, default_value_t = 1, conflicts_with = "all")]
        steps: usize,
        /// Revert all of them (drops every Writ table and its data).
        #[arg(long)]
        all: bool,
    },
    /// List applied and pending migrations.
    Status,
}

/// Runs the action against the configured database.
pub fn run(settings: Settings, args: MigrateArgs) -> anyhow::Result<()> {
    let db = Db::open(&settings.database).context("cannot open the database")?;
    let mut conn = db.conn().context("cannot connect to the database")?;
    match args.action.unwrap_or(MigrateAction::Up) {
        MigrateAction::Up => {
            let applied = migrations::run_pending(&mut conn)?;
            if applied.is_empty() {
                println!("database is up to date ({})", db.backend());
            }
            for version in applied {
                println!("applied {version}");
            }
        }
        MigrateAction::Revert { steps, all } => {
            let steps = if all { usize::MAX } else { steps };
            let reverted = migrations::revert(&mut conn, steps)?;
            if reverted.is_empty() {
                println!("nothing to revert");
            }
            for version in reverted {
                println!("reverted {version}");
            }
        }
        MigrateAction::Status => {
            let status = migrations::status(&mut conn)?;
            println!("backend: {}", db.backend());
            for version in &status.applied {
                println!("applied  {version}");
            }
            for name in &status.pending {
                println!("pending  {name}");
            }
            for version in &status.unknown {
                println!("unknown  {version} (applied by a newer Writ)");
            }
        }
    }
    Ok(())
}
