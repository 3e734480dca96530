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
    /// With --workspace, also demo authorities with keys, staff users and a queue of orders.
    Seed {
        /// Also seed the workspace (only into one without users).
        #[arg(long)]
        workspace: bool,
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
        workspace,
        accounts,
        events_per_account,
        seed,
    } = action;
    let db = Db::open(&settings.database).context("cannot open the database")?;
    migrations::run_pending(&mut *db.conn()?)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
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
    if workspace {
        let mut conn = db.conn()?;
        let policies = crate::startup::load_policies(&settings.policy)?;
        let dir = data_dir(&settings);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let made = crate::orders::demo::seed(
            &mut conn,
            &dir,
            &policies,
            &settings.deployment,
            chrono::Utc::now(),
        )?;
        println!(
            "seeded the workspace: {} orders; users and passwords in {}; authorities' private keys in {}",
            made.orders,
            made.users_file.display(),
            made.keys_dir.display()
        );
    }
    Ok(())
}

/// The folder demo secrets go to: beside the first-admin password file (`data/` by default).
fn data_dir(settings: &Settings) -> std::path::PathBuf {
    settings
        .workspace
        .initial_admin_password_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        )
}

/// Seeds the demo workspace unless it has users; says where the passwords are.
pub fn seed_demo_workspace(settings: &Settings) -> anyhow::Result<()> {
    let db = Db::open(&settings.database).context("cannot open the database")?;
    let mut conn = db.conn()?;
    migrations::run_pending(&mut conn)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
    if !crate::staff::list(&mut conn)?.is_empty() {
        tracing::info!("the workspace has users; no demo seeded");
        return Ok(());
    }
    demo::seed(
        &db,
        DemoSpec {
            accounts: 1000,
            events_per_account: 20,
            seed: 1,
        },
        &|_| {},
    )?;
    let policies = crate::startup::load_policies(&settings.policy)?;
    let dir = data_dir(settings);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let made = crate::orders::demo::seed(
        &mut conn,
        &dir,
        &policies,
        &settings.deployment,
        chrono::Utc::now(),
    )?;
    tracing::warn!(
        users_file = %made.users_file.display(),
        keys = %made.keys_dir.display(),
        orders = made.orders,
        "demo workspace seeded: sign in at / with a user from the users file"
    );
    eprintln!(
        "writ: demo seeded: {} orders; users and passwords are in {}; authorities' private keys in {}",
        made.orders,
        made.users_file.display(),
        made.keys_dir.display()
    );
    Ok(())
}
