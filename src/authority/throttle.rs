//! Request-rate limits and failed-authentication throttling, counted in the database so that
//! every instance behind a load balancer sees the same counts.
//!
//! Counters are fixed one-minute windows. Failed authentications are counted per client
//! network (an IPv4 /24 or IPv6 /48, which also keeps host addresses out of the audit log) and
//! reason class; once a window has closed, [`summarise_failures`] writes one audit entry per
//! network and reason with its count and deletes the counter. A flood of garbage therefore adds
//! at most one entry per network, reason and minute, and at most [`MAX_SOURCES_PER_WINDOW`]
//! networks are told apart in a window (the rest count as `other`).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::audit::{self, Actor, ActorKind, AuditError, Event, NewEntry};
use crate::db::schema::{auth_failures, rate_counters};
use crate::db::{self, DbConn, write_tx};

/// Length of a counting window, in seconds.
pub const WINDOW_SECS: i64 = 60;
/// Counters (network and reason pairs) kept apart in one window; failures from networks
/// beyond that count under `other`.
pub const MAX_SOURCES_PER_WINDOW: i64 = 1000;

/// The start of the window holding `now` (Unix seconds).
pub fn window_start(now: i64) -> i64 {
    now - now.rem_euclid(WINDOW_SECS)
}

/// Seconds until the window holding `now` ends.
pub fn retry_after(now: i64) -> i64 {
    window_start(now) + WINDOW_SECS - now
}

/// The network a client address is counted under: its /24 (IPv4) or /48 (IPv6).
pub fn network_of(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
    }
}

/// Adds one to the counter `scope` in the window holding `now` and returns the new count.
pub fn hit(conn: &mut DbConn, scope: &str, now: i64) -> QueryResult<i64> {
    hit_in(conn, scope, now, WINDOW_SECS)
}

/// The count of `scope` in the `window_secs` window holding `now`.
pub fn count_in(conn: &mut DbConn, scope: &str, now: i64, window_secs: i64) -> QueryResult<i64> {
    let window = now - now.rem_euclid(window_secs);
    Ok(rate_counters::table
        .filter(rate_counters::scope.eq(scope))
        .filter(rate_counters::window_start.eq(window))
        .select(rate_counters::count)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Adds one to `scope` in the `window_secs` window holding `now`; returns the new count.
pub fn hit_in(conn: &mut DbConn, scope: &str, now: i64, window_secs: i64) -> QueryResult<i64> {
    let window = now - now.rem_euclid(window_secs);
    write_tx(conn, |c| {
        // Old windows go as new ones start; the primary key keeps this cheap.
        diesel::delete(rate_counters::table.filter(rate_counters::window_start.lt(window - 3600)))
            .execute(c)?;
        db::on_backend!(c, |b| diesel::insert_into(rate_counters::table)
            .values((
                rate_counters::scope.eq(scope),
                rate_counters::window_start.eq(window),
                rate_counters::count.eq(1_i64),
            ))
            .on_conflict((rate_counters::scope, rate_counters::window_start))
            .do_update()
            .set(rate_counters::count.eq(rate_counters::count + 1_i64))
            .returning(rate_counters::count)
            .get_result::<i64>(b))
    })
}

/// Adds `n` to the counter `scope` in the one-minute window holding `now` and returns the new
/// count: the requests of one batch counted in one statement (`authority::spend`). Old windows
/// are left to [`purge_windows`].
pub fn add(conn: &mut DbConn, scope: &str, now: i64, n: i64) -> QueryResult<i64> {
    let window = window_start(now);
    db::on_backend!(conn, |b| diesel::insert_into(rate_counters::table)
        .values((
            rate_counters::scope.eq(scope),
            rate_counters::window_start.eq(window),
            rate_counters::count.eq(n),
        ))
        .on_conflict((rate_counters::scope, rate_counters::window_start))
        .do_update()
        .set(rate_counters::count.eq(rate_counters::count + n))
        .returning(rate_counters::count)
        .get_result::<i64>(b))
}

/// Deletes the counters of windows that ended more than an hour before `now`.
pub fn purge_windows(conn: &mut DbConn, now: i64) -> QueryResult<usize> {
    let window = window_start(now);
    diesel::delete(rate_counters::table.filter(rate_counters::window_start.lt(window - 3600)))
        .execute(conn)
}

/// Adds one to `scope` in the `window_secs` window holding `now` if its count is below
/// `limit`, in one statement (an upsert whose update is conditional), so that concurrent
/// requests cannot all pass a check made before any of them counted. Returns the new count, or
/// `None` when the limit was already reached (nothing is counted then).
pub fn hit_within(
    conn: &mut DbConn,
    scope: &str,
    now: i64,
    window_secs: i64,
    limit: i64,
) -> QueryResult<Option<i64>> {
    if limit <= 0 {
        return Ok(None);
    }
    let window = now - now.rem_euclid(window_secs);
    write_tx(conn, |c| {
        diesel::delete(rate_counters::table.filter(rate_counters::window_start.lt(window - 3600)))
            .execute(c)?;
        // diesel's upsert has no WHERE on its DO UPDATE; both backends take this SQL
        // (SQLite 3.35 and later for RETURNING), each with its own parameter syntax.
        let sql = db::statement(
            c,
            "INSERT INTO rate_counters (scope, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (scope, window_start) DO UPDATE SET count = rate_counters.count + 1 \
             WHERE rate_counters.count < $3 RETURNING count",
        );
        let counted = db::on_backend!(c, |b| diesel::sql_query(sql.as_ref())
            .bind::<diesel::sql_types::Text, _>(scope)
            .bind::<diesel::sql_types::BigInt, _>(window)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .get_result::<Counted>(b)
            .optional())?;
        Ok(counted.map(|c| c.count))
    })
}

/// Takes one back from `scope` in the `window_secs` window holding `now` (an attempt counted
/// by [`hit_within`] that turned out not to be a failure).
pub fn give_back(conn: &mut DbConn, scope: &str, now: i64, window_secs: i64) -> QueryResult<()> {
    let window = now - now.rem_euclid(window_secs);
    diesel::update(
        rate_counters::table
            .filter(rate_counters::scope.eq(scope))
            .filter(rate_counters::window_start.eq(window))
            .filter(rate_counters::count.gt(0_i64)),
    )
    .set(rate_counters::count.eq(rate_counters::count - 1_i64))
    .execute(conn)?;
    Ok(())
}

/// Forgets `scope`'s counts in the `window_secs` window holding `now`: a lifted lockout.
/// Returns whether there was anything to forget.
pub fn clear_in(conn: &mut DbConn, scope: &str, now: i64, window_secs: i64) -> QueryResult<bool> {
    let window = now - now.rem_euclid(window_secs);
    let n = diesel::delete(
        rate_counters::table
            .filter(rate_counters::scope.eq(scope))
            .filter(rate_counters::window_start.eq(window)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// The row [`hit_within`] returns.
#[derive(diesel::QueryableByName)]
struct Counted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Takes one failed authentication from `source`'s budget of `limit` in the window holding
/// `now` and, if there was room, counts it for `reason` (for the minute's summary); in one
/// atomic step, so that at most `limit` failures a window are examined and answered however
/// many arrive at once. Returns whether it was counted (`false`: the network is throttled).
pub fn charge_failure(
    conn: &mut DbConn,
    source: &str,
    reason: &str,
    limit: i64,
    now: i64,
) -> QueryResult<bool> {
    write_tx(conn, |c| {
        let budget = format!("auth-failures:{source}");
        if hit_within(c, &budget, now, WINDOW_SECS, limit)?.is_none() {
            return Ok(false);
        }
        record_failure(c, source, reason, now)?;
        Ok(true)
    })
}

/// The failures counted for `source` in the window holding `now`, all reasons together. A
/// network that is not counted apart because the window is full is judged by the `other` pool,
/// so filling the window cannot switch the throttle off.
pub fn failures(conn: &mut DbConn, source: &str, now: i64) -> QueryResult<i64> {
    let window = window_start(now);
    let sum = |c: &mut DbConn, source: &str| -> QueryResult<i64> {
        let counts: Vec<i64> = auth_failures::table
            .filter(auth_failures::window_start.eq(window))
            .filter(auth_failures::source.eq(source))
            .select(auth_failures::count)
            .load(c)?;
        Ok(counts.into_iter().sum())
    };
    let own = sum(conn, source)?;
    if own > 0 {
        return Ok(own);
    }
    let rows: i64 = auth_failures::table
        .filter(auth_failures::window_start.eq(window))
        .count()
        .get_result(conn)?;
    if rows >= MAX_SOURCES_PER_WINDOW {
        sum(conn, "other")
    } else {
        Ok(0)
    }
}

/// Counts one failed authentication from `source` for `reason` (a token reason class).
pub fn record_failure(conn: &mut DbConn, source: &str, reason: &str, now: i64) -> QueryResult<()> {
    let window = window_start(now);
    write_tx(conn, |c| {
        let known = |c: &mut DbConn, source: &str| {
            auth_failures::table
                .filter(auth_failures::window_start.eq(window))
                .filter(auth_failures::source.eq(source))
                .count()
                .get_result::<i64>(c)
        };
        let mut source = source;
        if known(c, source)? == 0 {
            // Counters (networks x reasons) in this window; past the cap, new networks pool.
            let rows: i64 = auth_failures::table
                .filter(auth_failures::window_start.eq(window))
                .count()
                .get_result(c)?;
            if rows >= MAX_SOURCES_PER_WINDOW {
                source = "other";
            }
        }
        db::on_backend!(c, |b| diesel::insert_into(auth_failures::table)
            .values((
                auth_failures::window_start.eq(window),
                auth_failures::source.eq(source),
                auth_failures::reason.eq(reason),
                auth_failures::count.eq(1_i64),
            ))
            .on_conflict((
                auth_failures::window_start,
                auth_failures::source,
                auth_failures::reason,
            ))
            .do_update()
            .set(auth_failures::count.eq(auth_failures::count + 1_i64))
            .execute(b))?;
        Ok(())
    })
}

/// Writes one `api.auth_failures` audit entry per network and reason for every window that
/// closed before `now`, and deletes those counters, in one transaction. Returns the entries
/// written.
pub fn summarise_failures(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, AuditError> {
    let current = window_start(now.timestamp());
    write_tx(conn, |c| {
        let query = auth_failures::table
            .filter(auth_failures::window_start.lt(current))
            .order((
                auth_failures::window_start,
                auth_failures::source,
                auth_failures::reason,
            ))
            .select((
                auth_failures::window_start,
                auth_failures::source,
                auth_failures::reason,
                auth_failures::count,
            ));
        // Two instances summarising at once: the second waits for the first's rows, which are
        // gone when it gets them, so each window is summarised once.
        let closed: Vec<(i64, String, String, i64)> = db::locks::load_for_update!(c, query)?;
        for (window, source, reason, count) in &closed {
            let from = DateTime::<Utc>::from_timestamp(*window, 0).unwrap_or(now);
            let to = DateTime::<Utc>::from_timestamp(window + WINDOW_SECS, 0).unwrap_or(now);
            let entry = NewEntry::new(Actor::new(ActorKind::System, "api"), Event::ApiAuthFailures)
                .reference("source", source.as_str())
                .reference("reason", reason.as_str())
                .reference("count", u64::try_from(*count).unwrap_or(0))
                .reference("window_from", from.to_rfc3339())
                .reference("window_to", to.to_rfc3339());
            audit::append(c, &entry, now)?;
        }
        // Exactly the counters summarised: one committed since (a request whose clock was a
        // little behind) waits for the next run instead of vanishing.
        for (window, source, reason, _) in &closed {
            diesel::delete(
                auth_failures::table
                    .filter(auth_failures::window_start.eq(window))
                    .filter(auth_failures::source.eq(source))
                    .filter(auth_failures::reason.eq(reason)),
            )
            .execute(c)?;
        }
        Ok(closed.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_minutes() {
        assert_eq!(window_start(120), 120);
        assert_eq!(window_start(179), 120);
        assert_eq!(retry_after(179), 1);
        assert_eq!(retry_after(120), 60);
    }

    #[test]
    fn clients_count_by_network() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(network_of(v4), "203.0.113.0/24");
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap_or(v4);
        assert_eq!(network_of(mapped), "203.0.113.0/24");
        let v6: IpAddr = "2001:db8:abcd:12::1".parse().unwrap_or(v4);
        assert_eq!(network_of(v6), "2001:db8:abcd::/48");
    }
}
