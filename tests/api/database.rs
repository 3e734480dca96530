use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use writ::db::schema::writ_meta;
use writ::db::{Db, DbConn, DbError, migrations, write_tx};

use crate::both_backends;
use crate::helpers::{Backend, TestDb, pg};

both_backends!(
    every_migration_applies_reverts_and_reapplies,
    concurrent_migration_runs_apply_each_migration_once,
    concurrent_writers_neither_fail_nor_lose_updates,
    a_failed_write_transaction_leaves_nothing_behind,
);

fn open(db: &TestDb) -> Db {
    Db::open(&db.settings(&[]).database).expect("open database")
}

fn table_names(conn: &mut DbConn) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let rows: Vec<Name> = match conn {
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .load(c)
        .unwrap(),
        DbConn::Postgres(c) => diesel::sql_query(
            "SELECT CAST(tablename AS TEXT) AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
        )
        .load(c)
        .unwrap(),
    };
    rows.into_iter().map(|r| r.name).collect()
}

async fn every_migration_applies_reverts_and_reapplies(backend: Backend) {
    let db = TestDb::new(backend);
    let pool = open(&db);
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let embedded = migrations::embedded(&conn).unwrap();
        assert!(!embedded.is_empty());

        let before = migrations::status(&mut conn).unwrap();
        assert!(before.applied.is_empty());
        assert_eq!(before.pending.len(), embedded.len());

        let applied = migrations::run_pending(&mut conn).unwrap();
        assert_eq!(applied.len(), embedded.len());
        let schema_after_up = table_names(&mut conn);
        assert!(
            schema_after_up.contains(&"writ_meta".to_owned()),
            "{schema_after_up:?}"
        );
        let status = migrations::status(&mut conn).unwrap();
        assert!(status.pending.is_empty() && status.unknown.is_empty());

        // Down, one at a time, all the way: every migration must be reversible.
        let reverted = migrations::revert(&mut conn, usize::MAX).unwrap();
        assert_eq!(reverted.len(), embedded.len());
        let left: Vec<String> = table_names(&mut conn)
            .into_iter()
            .filter(|t| t != "__diesel_schema_migrations")
            .collect();
        assert!(
            left.is_empty(),
            "tables left after reverting everything: {left:?}"
        );
        assert_eq!(
            migrations::status(&mut conn).unwrap().pending.len(),
            embedded.len()
        );

        // And up again: the down migrations left a schema the up migrations accept.
        assert_eq!(
            migrations::run_pending(&mut conn).unwrap().len(),
            embedded.len()
        );
        assert_eq!(table_names(&mut conn), schema_after_up);
        assert!(
            migrations::run_pending(&mut conn).unwrap().is_empty(),
            "second run is a no-op"
        );
    })
    .await
    .unwrap();
}

async fn concurrent_migration_runs_apply_each_migration_once(backend: Backend) {
    let db = TestDb::new(backend);
    // Two independent pools, as two Writ instances starting at once would have.
    let pools = [open(&db), open(&db)];
    let barrier = Arc::new(Barrier::new(pools.len()));
    let handles: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = pool.conn().unwrap();
                barrier.wait();
                migrations::run_pending(&mut conn)
            })
        })
        .collect();
    let results: Vec<Vec<String>> = handles
        .into_iter()
        .map(|h| h.join().unwrap().expect("no migration run fails"))
        .collect();
    let total: usize = results.iter().map(Vec::len).sum();
    let mut conn = open(&db).conn().unwrap();
    assert_eq!(
        total,
        migrations::embedded(&conn).unwrap().len(),
        "each migration applied exactly once"
    );
    let status = migrations::status(&mut conn).unwrap();
    assert!(status.pending.is_empty());
}

/// Reads the counter, then writes it back incremented: the read-then-write pattern that fails
/// at once with "database is locked" on SQLite under deferred transactions. On PostgreSQL the
/// row lock of `SELECT ... FOR UPDATE` serialises it; on SQLite, `BEGIN IMMEDIATE` already
/// holds the database's write lock.
fn bump(conn: &mut DbConn) -> Result<(), DbError> {
    write_tx(conn, |conn| {
        let counter = writ_meta::table
            .filter(writ_meta::key.eq("test.counter"))
            .select(writ_meta::value);
        let current: String = match conn {
            DbConn::Sqlite(c) => counter.first(c)?,
            DbConn::Postgres(c) => counter.for_update().first(c)?,
        };
        let next = current.parse::<u64>().unwrap() + 1;
        diesel::update(writ_meta::table.filter(writ_meta::key.eq("test.counter")))
            .set(writ_meta::value.eq(next.to_string()))
            .execute(conn)?;
        Ok(())
    })
}

async fn concurrent_writers_neither_fail_nor_lose_updates(backend: Backend) {
    const WRITERS: usize = 8;
    const WRITES_EACH: usize = 40;
    let db = TestDb::new(backend);
    let pool = open(&db);
    {
        let mut conn = pool.conn().unwrap();
        migrations::run_pending(&mut conn).unwrap();
        diesel::insert_into(writ_meta::table)
            .values((writ_meta::key.eq("test.counter"), writ_meta::value.eq("0")))
            .execute(&mut *conn)
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|_| {
            // A pool per writer, as separate processes would have; the busy timeout is the
            // default one from config/default.toml.
            let pool = open(&db);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = pool.conn().unwrap();
                barrier.wait();
                for _ in 0..WRITES_EACH {
                    bump(&mut conn)?;
                }
                Ok::<_, DbError>(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .unwrap()
            .expect("no writer sees an error such as `database is locked`");
    }
    let mut conn = pool.conn().unwrap();
    let value: String = writ_meta::table
        .filter(writ_meta::key.eq("test.counter"))
        .select(writ_meta::value)
        .first(&mut *conn)
        .unwrap();
    assert_eq!(
        value,
        (WRITERS * WRITES_EACH).to_string(),
        "no update was lost"
    );
}

async fn a_failed_write_transaction_leaves_nothing_behind(backend: Backend) {
    let db = TestDb::new(backend);
    let pool = open(&db);
    let mut conn = pool.conn().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    let result: Result<(), DbError> = write_tx(&mut conn, |conn| {
        diesel::insert_into(writ_meta::table)
            .values((
                writ_meta::key.eq("test.half"),
                writ_meta::value.eq("written"),
            ))
            .execute(conn)?;
        // The second write fails (duplicate key): the first must not survive.
        diesel::insert_into(writ_meta::table)
            .values((writ_meta::key.eq("test.half"), writ_meta::value.eq("again")))
            .execute(conn)?;
        Ok(())
    });
    assert!(result.is_err());
    let count: i64 = writ_meta::table
        .filter(writ_meta::key.eq("test.half"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(count, 0);
    // The connection is usable again, and a nested write_tx is a savepoint of the outer one.
    write_tx(&mut conn, |conn| {
        diesel::insert_into(writ_meta::table)
            .values((writ_meta::key.eq("test.outer"), writ_meta::value.eq("1")))
            .execute(conn)?;
        let inner: Result<(), DbError> = write_tx(conn, |conn| {
            diesel::insert_into(writ_meta::table)
                .values((writ_meta::key.eq("test.inner"), writ_meta::value.eq("1")))
                .execute(conn)?;
            Err(DbError::Setup("inner step refused".into()))
        });
        assert!(inner.is_err());
        Ok::<_, DbError>(())
    })
    .unwrap();
    let keys: Vec<String> = writ_meta::table
        .filter(writ_meta::key.like("test.%"))
        .select(writ_meta::key)
        .load(&mut *conn)
        .unwrap();
    assert_eq!(keys, vec!["test.outer".to_owned()]);
}

/// An authority's reads of one order, and of one rejected submission, go through the primary
/// key on PostgreSQL, whatever plan PostgreSQL caches. Both used to filter on the id and the
/// authority together. The generic plan that diesel's prepared statement gets after five runs
/// was made while the table was small. It then picked the (authority, received) index and read
/// every row of the authority to find one: 0.8 ms per intake under load in the service bench,
/// growing with the authority's orders, and on every GET. This forces the generic plan and asks
/// PostgreSQL's statistics which index each read used. PostgreSQL only: SQLite caches no
/// generic plans.
#[test]
fn reads_by_id_use_the_primary_key_under_a_generic_plan_on_postgresql() {
    if crate::helpers::postgres_admin_url().is_none() {
        assert!(
            std::env::var("WRIT_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "WRIT_TEST_REQUIRE_POSTGRES=1 but WRIT_TEST_POSTGRES_URL is not set"
        );
        eprintln!("WRIT_TEST_POSTGRES_URL is not set: PostgreSQL plan test not run");
        return;
    }
    #[derive(QueryableByName)]
    struct Scans {
        #[diesel(sql_type = diesel::sql_types::Text)]
        index: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        scans: i64,
    }
    // The index scans on `table` since the last call, by index.
    fn scans(conn: &mut DbConn, table: &str) -> Vec<(String, i64)> {
        // This backend's own counts reach the view at its next forced flush.
        diesel::sql_query("SELECT pg_stat_force_next_flush()")
            .execute(pg(conn))
            .unwrap();
        let rows: Vec<Scans> = diesel::sql_query(
            "SELECT CAST(indexrelname AS TEXT) AS index, idx_scan AS scans \
             FROM pg_stat_user_indexes WHERE relname = $1 ORDER BY indexrelname",
        )
        .bind::<diesel::sql_types::Text, _>(table)
        .load(pg(conn))
        .unwrap();
        rows.into_iter().map(|r| (r.index, r.scans)).collect()
    }
    fn used(before: &[(String, i64)], after: &[(String, i64)]) -> Vec<(String, i64)> {
        before
            .iter()
            .zip(after)
            .map(|((name, b), (_, a))| (name.clone(), a - b))
            .filter(|(_, d)| *d > 0)
            .collect()
    }
    const ID: &str = "00000000-0000-4000-8000-000000000000";
    const AUTHORITY: &str = "fr-parquet-paris";
    let db = TestDb::new(Backend::Postgres);
    let pool = open(&db);
    let mut conn = pool.conn().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    diesel::sql_query("SET plan_cache_mode = force_generic_plan")
        .execute(pg(&mut conn))
        .unwrap();

    // Three reads of a missing row with `read`; they must all go through `table`'s primary key.
    let mut through_primary_key =
        |table: &str, read: &dyn Fn(&mut DbConn) -> Result<(), writ::orders::OrderError>| {
            let before = scans(&mut conn, table);
            for _ in 0..3 {
                let found = read(&mut conn);
                assert!(
                    matches!(found, Err(writ::orders::OrderError::NotFound)),
                    "{table}: {found:?}"
                );
            }
            let after = scans(&mut conn, table);
            assert_eq!(
                used(&before, &after),
                [(format!("{table}_pkey"), 3)],
                "the read of {table} went through these indexes"
            );
        };
    through_primary_key("orders", &|c| {
        writ::orders::view(c, ID, Some(AUTHORITY)).map(drop)
    });
    through_primary_key("rejected_submissions", &|c| {
        writ::orders::intake::rejection(c, AUTHORITY, ID).map(drop)
    });
}
