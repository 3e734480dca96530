//! `writ backup` and `writ restore`: an online copy of the SQLite database, and putting one
//! back into an empty data folder. PostgreSQL uses pg_dump (docs/operations.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::db::{Db, backup, migrations};
use crate::settings::{Backend, Settings};

/// Arguments of `writ backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `writ restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `writ backup`.
    pub file: PathBuf,
}

/// Copies the configured SQLite database to `--out`, safely while `writ serve` runs.
pub fn backup(settings: Settings, args: BackupArgs) -> anyhow::Result<()> {
    let db = super::open_db(&settings)?;
    let mut conn = db.conn().context("cannot connect to the database")?;
    backup::backup_to(&mut conn, &args.out)?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up the database to {} ({size} bytes); keep it with the keys' backup, apart from the outside checkpoint copy",
        args.out.display()
    );
    Ok(())
}

/// Puts a backup in place of the configured SQLite database, whose folder must be empty or
/// absent, so that a restore never overwrites a database that holds anything.
pub fn restore(settings: Settings, args: RestoreArgs) -> anyhow::Result<()> {
    if settings.database.url.backend() != Backend::Sqlite {
        bail!(
            "`writ restore` restores SQLite backups only; restore PostgreSQL with pg_restore (see \"Restore\" in docs/operations.md)"
        );
    }
    let target = settings
        .database
        .url
        .sqlite_path()
        .context("the database URL names no SQLite file")?
        .to_owned();
    let folder = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    if let Ok(mut entries) = std::fs::read_dir(&folder)
        && entries.next().is_some()
    {
        bail!(
            "{} is not empty: restore into an empty data folder (move the old one aside first)",
            folder.display()
        );
    }
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let partial = folder.join(".restoring");
    std::fs::copy(&args.file, &partial)
        .with_context(|| format!("cannot copy {}", args.file.display()))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot move the copy to {}", target.display()))?;
    // Only a backup that is an intact Writ database stays in place.
    let checked = (|| -> anyhow::Result<usize> {
        let db = Db::open(&settings.database).context("cannot open the restored database")?;
        let mut conn = db.conn()?;
        backup::check_integrity(&mut conn)?;
        let status = migrations::status(&mut conn)?;
        if status.applied.is_empty() {
            bail!("{} holds no Writ database", args.file.display());
        }
        Ok(status.pending.len())
    })();
    let pending = match checked {
        Ok(p) => p,
        Err(e) => {
            for leftover in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                let _ = std::fs::remove_file(leftover.path());
            }
            return Err(e.context("the restore was undone"));
        }
    };
    println!("restored {} to {}", args.file.display(), target.display());
    if pending > 0 {
        println!("{pending} migration(s) pending: run `writ migrate`");
    }
    println!(
        "next: `writ audit status` compares the log with the outside checkpoint copy; see docs/operations.md"
    );
    Ok(())
}
