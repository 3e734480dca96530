//! Range partitions of a table, by name and bounds (PostgreSQL). SQLite has none: there the
//! table holds every row itself, [`ensure`] does nothing and [`list`] finds nothing.
//!
//! Names are written into the statements, so only plain lower-case table names are accepted.

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::DbConn;

/// `name` if it is a plain table name (lower-case ASCII letters, digits, `_`), else an error.
fn plain(name: &str) -> QueryResult<&str> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(diesel::result::Error::QueryBuilderError(
            format!("not a plain table name: {name:?}").into(),
        ))
    }
}

/// Creates the partitions of `parent` in `wanted` (name, and `[from, to)` bounds) that are
/// missing. Safe when several writers race: creation is idempotent and a lost race is not an
/// error. On SQLite `wanted` is not even read.
pub fn ensure(
    conn: &mut DbConn,
    parent: &str,
    wanted: impl IntoIterator<Item = (String, i64, i64)>,
) -> QueryResult<()> {
    let DbConn::Postgres(c) = conn else {
        return Ok(());
    };
    let parent = plain(parent)?;
    let wanted: BTreeSet<(String, i64, i64)> = wanted.into_iter().collect();
    for (name, from, to) in wanted {
        let name = plain(&name)?;
        // Runs in a savepoint so a concurrent creator's win does not abort the caller's transaction.
        let created = c.transaction(|c| {
            diesel::sql_query(format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} FOR VALUES FROM ({from}) TO ({to})"
            ))
            .execute(c)
        });
        if let Err(e) = created {
            let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                &format!("EXISTS (SELECT 1 FROM pg_class WHERE relname = '{name}')"),
            ))
            .get_result(c)?;
            if !exists {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The partitions of `parent`, by name, sorted; none on SQLite.
pub fn list(conn: &mut DbConn, parent: &str) -> QueryResult<Vec<String>> {
    let DbConn::Postgres(c) = conn else {
        return Ok(Vec::new());
    };
    let names: Vec<Name> = diesel::sql_query(
        "SELECT CAST(c.relname AS TEXT) AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1",
    )
    .bind::<diesel::sql_types::Text, _>(plain(parent)?)
    .load(c)?;
    Ok(names.into_iter().map(|n| n.name).collect())
}

/// The rows the partition (or table) `name` holds.
pub fn rows(conn: &mut DbConn, name: &str) -> QueryResult<u64> {
    let sql = format!("SELECT count(*) AS n FROM {}", plain(name)?);
    let counted: Vec<Count> =
        super::on_backend!(conn, |c| diesel::sql_query(sql.as_str()).load(c))?;
    Ok(counted
        .first()
        .map_or(0, |r| u64::try_from(r.n).unwrap_or(0)))
}

/// Drops the partition `name` with its rows.
pub fn drop(conn: &mut DbConn, name: &str) -> QueryResult<()> {
    let sql = format!("DROP TABLE {}", plain(name)?);
    super::on_backend!(conn, |c| diesel::sql_query(sql.as_str()).execute(c))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_table_names_reach_a_statement() {
        assert!(plain("ip_events_p202612").is_ok());
        for bad in [
            "",
            "ip_events; DROP TABLE orders",
            "Ip_events",
            "a-b",
            "x'y",
        ] {
            assert!(plain(bad).is_err(), "{bad:?}");
        }
    }
}
