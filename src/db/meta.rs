//! `writ_meta`: small facts shared by every instance (deployment id, delivery marks).

use diesel::prelude::*;

use super::schema::writ_meta;
use super::{DbConn, DbError, write_tx};

/// Reads a fact.
pub fn get(conn: &mut DbConn, key: &str) -> Result<Option<String>, DbError> {
    Ok(writ_meta::table
        .filter(writ_meta::key.eq(key))
        .select(writ_meta::value)
        .first(conn)
        .optional()?)
}

/// Writes a fact, replacing any earlier value. One upsert, so that two instances setting the
/// same new key at once cannot both find it missing and collide on the insert.
pub fn set(conn: &mut DbConn, key: &str, value: &str) -> Result<(), DbError> {
    macro_rules! upsert {
        ($conn:expr) => {
            diesel::insert_into(writ_meta::table)
                .values((writ_meta::key.eq(key), writ_meta::value.eq(value)))
                .on_conflict(writ_meta::key)
                .do_update()
                .set(writ_meta::value.eq(value))
                .execute($conn)
        };
    }
    write_tx(conn, |conn| {
        match conn {
            DbConn::Sqlite(c) => upsert!(c)?,
            DbConn::Postgres(c) => upsert!(c)?,
        };
        Ok(())
    })
}

/// Records `key` with `value` unless it is already there; returns whether this call did.
pub fn insert_new(conn: &mut DbConn, key: &str, value: &str) -> Result<bool, DbError> {
    macro_rules! insert {
        ($conn:expr) => {
            diesel::insert_into(writ_meta::table)
                .values((writ_meta::key.eq(key), writ_meta::value.eq(value)))
                .on_conflict_do_nothing()
                .execute($conn)
        };
    }
    let inserted = match conn {
        DbConn::Sqlite(c) => insert!(c)?,
        DbConn::Postgres(c) => insert!(c)?,
    };
    Ok(inserted == 1)
}
