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

/// Writes a fact, replacing any earlier value.
pub fn set(conn: &mut DbConn, key: &str, value: &str) -> Result<(), DbError> {
    write_tx(conn, |conn| {
        let updated = diesel::update(writ_meta::table.filter(writ_meta::key.eq(key)))
            .set(writ_meta::value.eq(value))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(writ_meta::table)
                .values((writ_meta::key.eq(key), writ_meta::value.eq(value)))
                .execute(conn)?;
        }
        Ok(())
    })
}
