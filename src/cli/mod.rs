//! The `writ` command line: one file per subcommand.
//!
//! Exit codes: 0 success; 1 the command failed; 2 the command line is wrong; 3 an import
//! finished but rejected some records; 78 the configuration is invalid (sysexits' EX_CONFIG).

mod audit;
mod authority;
mod backup;
mod config;
mod demo;
mod doctor;
mod eevidence;
mod import;
mod keys;
mod migrate;
mod package;
mod policy;
mod retention;
mod serve;
mod token;
mod transparency;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use anyhow::Context;

use crate::db::{Db, migrations};
use crate::settings::{Settings, Sources};

/// Exit code for invalid configuration.
pub const EXIT_CONFIG: u8 = 78;

/// Writ: lawful-disclosure request handling.
#[derive(Debug, Parser)]
#[command(name = "writ", version, about, long_about = None)]
pub struct Cli {
    /// Environment file layered over config/default.toml (WRIT_* variables still win).
    #[arg(long, global = true, env = "WRIT_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (applies pending migrations first unless disabled).
    Serve(serve::ServeArgs),
    /// Apply, revert or list database migrations.
    Migrate(migrate::MigrateArgs),
    /// Check or show the effective configuration (secrets redacted).
    Config(config::ConfigArgs),
    /// Check configuration, database, keys, mail, the outside checkpoint and the policy set;
    /// print what to fix (exit code 1 when something is wrong).
    Doctor,
    /// Provision or show the audit checkpoint signing key.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: keys::KeysAction,
    },
    /// Sign, export and verify the audit log; make auditor tokens.
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: audit::AuditAction,
    },
    /// Verify a disclosure package offline (signature, file hashes, scope).
    Package {
        /// What to do.
        #[command(subcommand)]
        action: package::PackageAction,
    },
    /// Import accounts or IP events from a CSV or JSON Lines file (exit code 3: some rejected).
    Import(import::ImportArgs),
    /// Delete metadata past its retention period, except what holds keep.
    Retention {
        /// What to do.
        #[command(subcommand)]
        action: retention::RetentionAction,
    },
    /// Copy the SQLite database to a file, safely while `writ serve` runs (PostgreSQL: pg_dump).
    Backup(backup::BackupArgs),
    /// Put a `writ backup` file in place of the SQLite database, into an empty data folder.
    Restore(backup::RestoreArgs),
    /// Manage the registry of authorities and their keys.
    Authority {
        /// What to do.
        #[command(subcommand)]
        action: authority::AuthorityAction,
    },
    /// EU e-Evidence: read the national system's list of authorities into the registry.
    Eevidence {
        /// What to do.
        #[command(subcommand)]
        action: eevidence::EevidenceAction,
    },
    /// Validate jurisdiction policies; explain the decision for an order.
    Policy {
        /// What to do.
        #[command(subcommand)]
        action: policy::PolicyAction,
    },
    /// The authority's side, as a reference: make a key, build a submission, sign a validation
    /// or a body-bound request token.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: token::TokenAction,
    },
    /// Manage the workspace's staff accounts.
    User {
        /// What to do.
        #[command(subcommand)]
        action: user::UserAction,
    },
    /// Build the public transparency report from the audit log, or verify one offline.
    Transparency {
        /// What to do.
        #[command(subcommand)]
        action: transparency::TransparencyAction,
    },
    /// Synthetic data for demos, tests and benchmarks.
    Demo {
        /// What to do.
        #[command(subcommand)]
        action: demo::DemoAction,
    },
}

/// Opens the configured database for a command that reads or writes Writ's tables.
///
/// A database this binary's migrations have not all reached stops the command here, naming the
/// pending migrations and `writ migrate`, instead of failing later on a table or column that
/// is missing with the database's own error. One migrated by a newer Writ stops it too.
pub(crate) fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::open(&settings.database).context("cannot open the database")?;
    let status = {
        let mut conn = db.conn().context("cannot connect to the database")?;
        migrations::status(&mut conn).context("cannot read the database's migrations")?
    };
    if !status.pending.is_empty() {
        anyhow::bail!(
            "the database is not migrated: {} migration(s) pending ({}); run `writ migrate` first",
            status.pending.len(),
            status.pending.join(", ")
        );
    }
    if !status.unknown.is_empty() {
        anyhow::bail!(
            "the database was migrated by a newer Writ (unknown migration(s) {}); run that version of `writ`",
            status.unknown.join(", ")
        );
    }
    Ok(db)
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Test builds only: a bad FAILPOINTS stops here rather than at the point.
    crate::failpoint::arm();
    let settings = match Settings::load(&Sources {
        base_dir: None,
        file: cli.config.clone(),
        env: None,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("writ: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The log origin names the signing key too; the signer checks it when it loads, and a
    // configured one that cannot work stops every command here like any bad setting.
    if !settings.audit.origin.is_empty()
        && let Err(e) = crate::audit::service::check_origin(&settings.audit.origin)
    {
        eprintln!(
            "writ: configuration error: configuration key `audit.origin`: not usable as a log origin and key name: {e}"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(settings, args),
        Command::Migrate(args) => migrate::run(settings, args),
        Command::Config(args) => config::run(&settings, &args),
        Command::Doctor => doctor::run(settings),
        Command::Backup(args) => backup::backup(settings, args),
        Command::Restore(args) => backup::restore(settings, args),
        Command::Keys { action } => keys::run(settings, action),
        Command::Audit { action } => audit::run(settings, action),
        Command::Package { action } => package::run(action),
        Command::Import(args) => import::run(settings, args),
        Command::Retention { action } => retention::run(settings, action),
        Command::Demo { action } => demo::run(settings, action),
        Command::Policy { action } => policy::run(settings, action),
        Command::Authority { action } => authority::run(settings, action),
        Command::Eevidence { action } => eevidence::run(settings, action),
        Command::Token { action } => token::run(action),
        Command::User { action } => user::run(settings, action),
        Command::Transparency { action } => transparency::run(settings, action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writ: {e:#}");
            if e.downcast_ref::<import::RejectedRecords>().is_some() {
                ExitCode::from(import::EXIT_REJECTED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
