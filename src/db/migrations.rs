//! Embedded migrations, one folder per backend with identical names
//! (`migrations/sqlite/`, `migrations/postgres/`).
//!
//! Applying and reverting take a lock first, so that two instances starting at once do not
//! both migrate: PostgreSQL's session-level advisory lock, and on SQLite the database's own
//! write lock (`BEGIN IMMEDIATE` around the whole run; each migration is a savepoint in it).

use diesel::RunQueryDsl;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{DbConn, DbError, write_tx};

/// The SQLite migrations, compiled into the binary.
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL migrations, compiled into the binary.
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory lock key for migrations on PostgreSQL ("WRITMIGR" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x5752_4954_4d49_4752;

/// What the database has applied compared with what this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Versions applied in the database, oldest first.
    pub applied: Vec<String>,
    /// Embedded migrations not yet applied, oldest first (by name).
    pub pending: Vec<String>,
    /// Versions applied in the database that this binary does not know (a newer Writ ran).
    pub unknown: Vec<String>,
}

/// Names of the embedded migrations for a connection's backend, oldest first.
pub fn embedded(conn: &DbConn) -> Result<Vec<(String, String)>, DbError> {
    let mut list: Vec<(String, String)> = match conn {
        DbConn::Sqlite(_) => MigrationSource::<Sqlite>::migrations(&SQLITE)
            .map_err(|e| DbError::Migration(e.to_string()))?
            .iter()
            .map(|m| (m.name().version().to_string(), m.name().to_string()))
            .collect(),
        DbConn::Postgres(_) => MigrationSource::<Pg>::migrations(&POSTGRES)
            .map_err(|e| DbError::Migration(e.to_string()))?
            .iter()
            .map(|m| (m.name().version().to_string(), m.name().to_string()))
            .collect(),
    };
    list.sort();
    Ok(list)
}

#[derive(diesel::QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Reads the applied versions without writing anything (safe for readiness probes).
/// A database that was never migrated has no versions.
fn applied_versions(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let exists_sql = match conn {
        DbConn::Sqlite(_) => {
            "SELECT name AS version FROM sqlite_master WHERE type = 'table' AND name = '__diesel_schema_migrations'"
        }
        DbConn::Postgres(_) => {
            "SELECT CAST(tablename AS TEXT) AS version FROM pg_tables WHERE tablename = '__diesel_schema_migrations' AND schemaname = current_schema()"
        }
    };
    let list_sql = "SELECT version FROM __diesel_schema_migrations ORDER BY version";
    let rows = |c: &mut DbConn, sql: &str| -> Result<Vec<String>, DbError> {
        let rows: Vec<VersionRow> = match c {
            DbConn::Sqlite(c) => diesel::sql_query(sql).load(c)?,
            DbConn::Postgres(c) => diesel::sql_query(sql).load(c)?,
        };
        Ok(rows.into_iter().map(|r| r.version).collect())
    };
    if rows(conn, exists_sql)?.is_empty() {
        return Ok(Vec::new());
    }
    rows(conn, list_sql)
}

/// Compares the database's applied migrations with the embedded ones. Read-only.
pub fn status(conn: &mut DbConn) -> Result<Status, DbError> {
    let applied = applied_versions(conn)?;
    let embedded = embedded(conn)?;
    let pending = embedded
        .iter()
        .filter(|(v, _)| !applied.contains(v))
        .map(|(_, name)| name.clone())
        .collect();
    let unknown = applied
        .iter()
        .filter(|v| !embedded.iter().any(|(e, _)| e == *v))
        .cloned()
        .collect();
    Ok(Status {
        applied,
        pending,
        unknown,
    })
}

/// Runs `f` while holding the migration lock.
fn with_lock<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, DbError>,
) -> Result<T, DbError> {
    match conn {
        DbConn::Sqlite(_) => write_tx(conn, f),
        DbConn::Postgres(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .execute(c)?;
            let result = f(conn);
            if let DbConn::Postgres(c) = conn {
                // Session locks outlive transactions: release it even when `f` failed.
                let unlocked =
                    diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                        .execute(c);
                if let Err(e) = unlocked {
                    tracing::warn!(error = %e, "could not release the migration lock");
                }
            }
            result
        }
    }
}

fn names(versions: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    versions.into_iter().map(|v| v.to_string()).collect()
}

/// Applies every pending migration under the lock; returns the versions applied now.
pub fn run_pending(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    with_lock(conn, |conn| {
        let applied = match conn {
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE).map(names),
            DbConn::Postgres(c) => c.run_pending_migrations(POSTGRES).map(names),
        };
        applied.map_err(|e| DbError::Migration(e.to_string()))
    })
}

/// Reverts the last `steps` applied migrations under the lock; returns the versions reverted.
pub fn revert(conn: &mut DbConn, steps: usize) -> Result<Vec<String>, DbError> {
    with_lock(conn, |conn| {
        let mut reverted = Vec::new();
        for _ in 0..steps {
            if applied_versions(conn)?.is_empty() {
                break;
            }
            let version = match conn {
                DbConn::Sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
                DbConn::Postgres(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
            };
            reverted.push(version.map_err(|e| DbError::Migration(e.to_string()))?);
        }
        Ok(reverted)
    })
}
