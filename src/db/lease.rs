//! Leases on Writ's outbound work queues (HI-1 deliveries, e-Evidence calls), so that of
//! several instances each row is sent by one.
//!
//! A row is due when its `status` is `queued`, or `sending` with a lease that ran out, and its
//! `next_attempt_at` has come. [`take`] claims the next due row with a conditional update
//! (`status = 'sending'`, `next_attempt_at` = the lease end): of two instances racing for it,
//! one updates it and the other updates nothing. The lease end is the token the settlement
//! must match when it records the attempt: a send that outlived its lease was taken over by another instance,
//! and its settlement must not overwrite that instance's.

use diesel::prelude::*;

use super::{DbConn, DbError, write_tx};

/// A leased work queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `etsi_deliveries`: HI-1 DELIVER messages.
    EtsiDeliveries,
    /// `eevidence_outbox`: calls to the national e-Evidence system.
    EevidenceOutbox,
}

/// The lease for one send with a timeout of `timeout_secs`: the timeout and 30 seconds, in
/// microseconds.
pub fn duration(timeout_secs: u64) -> i64 {
    i64::try_from(timeout_secs)
        .unwrap_or(3600)
        .saturating_add(30)
        .saturating_mul(1_000_000)
}

/// One queue's claim, written once for both tables (they share the columns it reads).
macro_rules! claim {
    ($c:expr, $table:ident, $lease:expr, $now:expr) => {{
        use super::schema::$table as t;
        let (lease, now): (i64, i64) = ($lease, $now);
        write_tx($c, |c| {
            let due: Option<String> = t::table
                .filter(t::status.eq_any(["queued", "sending"]))
                .filter(t::next_attempt_at.le(now))
                .order((t::next_attempt_at, t::created_at))
                .select(t::id)
                .first(c)
                .optional()?;
            let Some(id) = due else {
                return Ok(None);
            };
            let lease_end = now.saturating_add(lease);
            let n = diesel::update(
                t::table
                    .filter(t::id.eq(&id))
                    .filter(t::status.eq_any(["queued", "sending"]))
                    .filter(t::next_attempt_at.le(now)),
            )
            .set((t::status.eq("sending"), t::next_attempt_at.eq(lease_end)))
            .execute(c)?;
            Ok::<_, DbError>((n == 1).then_some((id, lease_end)))
        })
    }};
}

/// Leases the next due row of `queue` at `now` (UTC microseconds) for `lease` microseconds:
/// its id and the lease end, or `None` when nothing is due (or another instance won it).
pub fn take(
    c: &mut DbConn,
    queue: Queue,
    lease: i64,
    now: i64,
) -> Result<Option<(String, i64)>, DbError> {
    match queue {
        Queue::EtsiDeliveries => claim!(c, etsi_deliveries, lease, now),
        Queue::EevidenceOutbox => claim!(c, eevidence_outbox, lease, now),
    }
}
