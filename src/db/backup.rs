//! Online backup and restore of the SQLite database.
//!
//! A backup is `VACUUM INTO`: SQLite writes a compacted copy of the database as one read
//! transaction sees it, so it is consistent and runs beside a serving Writ (writers go on; the
//! copy holds what was committed when it began). PostgreSQL is backed up with its own tools
//! (`pg_dump`, base backups), described in docs/operations.md.

use std::path::Path;

use diesel::connection::SimpleConnection;

use super::{DbConn, DbError};

/// Writes a consistent copy of the SQLite database behind `conn` to `out`, which must not
/// exist yet. On PostgreSQL it refuses, naming the procedure to use instead.
pub fn backup_to(conn: &mut DbConn, out: &Path) -> Result<(), DbError> {
    let DbConn::Sqlite(c) = conn else {
        return Err(DbError::Setup(
            "`writ backup` copies SQLite databases only; back up PostgreSQL with pg_dump (see \"Back up\" in docs/operations.md)".into(),
        ));
    };
    if out.exists() {
        return Err(DbError::Setup(format!(
            "{} exists already; a backup never overwrites a file",
            out.display()
        )));
    }
    let path = out
        .to_str()
        .ok_or_else(|| DbError::Setup("the backup path is not valid UTF-8".into()))?;
    // A string literal in SQL: its quotes are doubled.
    c.batch_execute(&format!("VACUUM INTO '{}'", path.replace('\'', "''")))?;
    // VACUUM INTO does not sync the new file; a backup is only one once it is on disk.
    std::fs::File::open(out)
        .and_then(|f| f.sync_all())
        .map_err(|e| DbError::Setup(format!("cannot sync {}: {e}", out.display())))?;
    Ok(())
}

/// Checks that the SQLite file behind `conn` is intact (`PRAGMA integrity_check`).
pub fn check_integrity(conn: &mut DbConn) -> Result<(), DbError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let DbConn::Sqlite(c) = conn else {
        return Ok(());
    };
    use diesel::RunQueryDsl;
    let rows: Vec<Row> = diesel::sql_query("PRAGMA integrity_check").load(c)?;
    match rows.first() {
        Some(r) if r.integrity_check == "ok" => Ok(()),
        Some(r) => Err(DbError::Corrupt(format!(
            "integrity check failed: {}",
            r.integrity_check
        ))),
        None => Err(DbError::Corrupt("integrity check returned nothing".into())),
    }
}
