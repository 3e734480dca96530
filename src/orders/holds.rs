//! Holds for an order's targets.
//!
//! At receipt, inside the intake transaction, Writ records a hold per target *identifier* and
//! data interval without looking at the store: the answer to the authority and its timing do
//! not depend on whether anyone matches. A background job ([`resolve_pending`]) then resolves
//! each to account holds, which retention respects; retention resolves pending holds first, so
//! nothing responsive is purged while an order is open. Closing an order ends its holds.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::OrderError;
use crate::audit::{self, Actor, ActorKind, NewEntry};
use crate::db::schema::{account_identifiers, accounts, holds, ip_events, target_holds};
use crate::db::{DbConn, write_tx};
use crate::metadata::normalize;
use crate::policy::{Category, Order, Target};

/// `expires_at` of a hold whose order is still open.
pub const OPEN: i64 = i64::MAX;
/// Data kept around an IP target's moment, each side, in seconds.
const IP_MARGIN_SECS: i64 = 3600;
/// Target holds resolved per transaction. Small, so that intake never waits long behind the
/// resolver for SQLite's single writer (50 made intake's p99 several hundred milliseconds).
const BATCH: i64 = 5;
/// Accounts one target hold may place holds on (a busy shared address).
const MAX_ACCOUNTS: i64 = 10_000;

/// A hold by identifier, about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHold {
    /// `user_id`, `username`, `phone` or `ip`.
    pub kind: &'static str,
    /// The normalised identifier.
    pub value: String,
    /// An IP target's port.
    pub port: Option<u16>,
    /// Start of the data interval, UTC microseconds.
    pub data_from: i64,
    /// End (exclusive).
    pub data_to: i64,
}

/// The categories an order's holds keep (content is never held: Writ has none).
pub fn held_categories(order: &Order) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = order
        .categories
        .iter()
        .filter(|c| **c != Category::Content)
        .map(|c| c.as_str())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The holds an order needs: one per target, over the order's time window (or, without one,
/// everything up to receipt); an IP target holds the hour either side of its moment.
pub fn for_order(order: &Order, received_at: DateTime<Utc>) -> Vec<TargetHold> {
    let (from, to) = match order.time_window {
        Some(w) => (w.from.timestamp_micros(), w.to.timestamp_micros()),
        None => (0, received_at.timestamp_micros() + 1),
    };
    order
        .targets
        .iter()
        .filter_map(|t| {
            let (kind, value, port, data_from, data_to) = match t {
                Target::UserId(id) => ("user_id", id.trim().to_owned(), None, from, to),
                Target::Username(u) => ("username", normalize::username(u).ok()?, None, from, to),
                Target::PhoneNumber(p) => ("phone", normalize::phone(p).ok()?, None, from, to),
                Target::Ip(ip) => {
                    let at = ip.timestamp.timestamp_micros();
                    let margin = IP_MARGIN_SECS * 1_000_000;
                    (
                        "ip",
                        normalize::ip(&ip.address.to_string()).ok()?.to_string(),
                        ip.port,
                        at - margin,
                        at + margin,
                    )
                }
            };
            (data_to > data_from).then_some(TargetHold {
                kind,
                value,
                port,
                data_from,
                data_to,
            })
        })
        .collect()
}

/// How many preservations of `order`'s targets the law counts before `order` (received at
/// `at`): the renewals and extensions it would add to. A renewed 18 U.S.C. 2703(f) request is an
/// extension, and the law allows only so many. Writ counts them from its own orders; the order
/// is not asked.
///
/// The count is of one chain of preservations by the same authority under the same instrument:
/// its preservations of any of these targets still running when `order` arrived, then those
/// running when each of those arrived, and so on back; each counts once, with the extensions it
/// used: those its decision granted (e-Evidence Annex VI requests; a renewal uses all
/// `law_max`) and those the legal team granted (`hold_extensions`). So renewals cannot be chained past the
/// law's number by letting each earlier hold lapse just after the next request. What is not in
/// the chain starts afresh: another authority's preservation of the same account (its own order,
/// for its own case), and a request after the authority's preservation had ended (its period run
/// out, or its holds released). Each target has its own chain; the longest counts. Refused
/// orders count for nothing; an order awaiting clarification counts while its holds run.
pub fn earlier_preservations(
    conn: &mut DbConn,
    order: &Order,
    authority_id: &str,
    at: DateTime<Utc>,
    except: Option<&str>,
    law_max: u32,
) -> QueryResult<u32> {
    use crate::db::schema::orders;
    /// One earlier order of the chain's candidates.
    struct Earlier {
        received_at: i64,
        hold_until: Option<i64>,
        extensions: i32,
        /// When its last hold of these targets was released; `None` while one is held.
        released_at: Option<i64>,
    }
    let running_at = |e: &Earlier, t: i64| {
        e.received_at < t
            && e.hold_until.is_none_or(|until| until > t)
            && e.released_at.is_none_or(|released| released > t)
    };
    let at = at.timestamp_micros();
    // The chain of each target on its own: a request for two targets renews neither more than
    // the chain of its longest-preserved one.
    let mut most: u32 = 0;
    for h in for_order(order, DateTime::<Utc>::MAX_UTC) {
        let rows: Vec<EarlierRow> = target_holds::table
            .inner_join(orders::table)
            .filter(orders::instrument.eq(&order.instrument))
            .filter(orders::authority_id.eq(authority_id))
            .filter(target_holds::target_kind.eq(h.kind))
            .filter(target_holds::target_value.eq(&h.value))
            .filter(orders::received_at.lt(at))
            .filter(orders::id.ne(except.unwrap_or("")))
            .filter(orders::outcome.ne("refused"))
            .select((
                orders::id,
                orders::received_at,
                orders::hold_until,
                orders::hold_extensions,
                target_holds::released_at,
            ))
            .load(conn)?;
        let mut candidates: std::collections::BTreeMap<String, Earlier> = Default::default();
        for (id, received_at, hold_until, extensions, released_at) in rows {
            let e = candidates.entry(id).or_insert(Earlier {
                received_at,
                hold_until,
                extensions,
                released_at: Some(i64::MIN),
            });
            e.released_at = match (e.released_at, released_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        let mut receipts = vec![at];
        let mut count: u32 = 0;
        while let Some(t) = receipts.pop() {
            let chained: Vec<String> = candidates
                .iter()
                .filter(|(_, e)| running_at(e, t))
                .map(|(id, _)| id.clone())
                .collect();
            for id in chained {
                if let Some(e) = candidates.remove(&id) {
                    count = count
                        .saturating_add(1)
                        .saturating_add(extensions_used(conn, &id, law_max)?)
                        .saturating_add(u32::try_from(e.extensions).unwrap_or(0));
                    receipts.push(e.received_at);
                }
            }
        }
        most = most.max(count);
    }
    Ok(most)
}

/// The extensions the current decision of order `id` used: the law's number less those it
/// leaves (none after a renewal; all of them when it preserves nothing yet).
fn extensions_used(conn: &mut DbConn, id: &str, law_max: u32) -> QueryResult<u32> {
    use crate::db::schema::{order_versions, orders};
    let decision: String = order_versions::table
        .inner_join(orders::table)
        .filter(order_versions::order_id.eq(id))
        .filter(order_versions::version.eq(orders::version))
        .select(order_versions::decision_json)
        .first(conn)?;
    let left = serde_json::from_str::<serde_json::Value>(&decision)
        .ok()
        .and_then(|d| d["preservation"]["max_extensions"].as_u64())
        .map_or(law_max, |n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(law_max.saturating_sub(left))
}

/// [`earlier_preservations`] where the engine reads them: for an order under a preservation
/// instrument (a renewed request is an extension); 0 for any other, without a query. The count
/// looks at earlier orders naming the same targets, so an order that cannot be a renewal does
/// not pay for it (intake of production orders on a much-requested target slowed with each
/// earlier order).
pub fn renewals(
    conn: &mut DbConn,
    order: &Order,
    authority_id: &str,
    at: DateTime<Utc>,
    except: Option<&str>,
    policies: &crate::policy::PolicySet,
) -> QueryResult<u32> {
    let Some(spec) = policies
        .instrument(&order.instrument)
        .filter(|spec| spec.action == crate::policy::Action::Preserve)
    else {
        return Ok(0);
    };
    let law_max = spec.preservation.as_ref().map_or(0, |p| p.max_extensions);
    earlier_preservations(conn, order, authority_id, at, except, law_max)
}

/// Records the holds for `order_id` (inside the caller's transaction). Without a category to
/// keep, nothing is recorded.
pub fn record(
    conn: &mut DbConn,
    order_id: &str,
    order: &Order,
    received_at: DateTime<Utc>,
) -> QueryResult<usize> {
    let categories = held_categories(order);
    if categories.is_empty() {
        return Ok(0);
    }
    let categories = categories.join(",");
    let now = Utc::now().timestamp_micros();
    let rows: Vec<_> = for_order(order, received_at)
        .into_iter()
        .map(|h| {
            (
                target_holds::order_id.eq(order_id.to_owned()),
                target_holds::target_kind.eq(h.kind),
                target_holds::target_value.eq(h.value),
                target_holds::ip_port.eq(h.port.map(i32::from)),
                target_holds::categories.eq(categories.clone()),
                target_holds::data_from.eq(h.data_from),
                target_holds::data_to.eq(h.data_to),
                target_holds::created_at.eq(now),
            )
        })
        .collect();
    let mut n = 0;
    for row in rows {
        n += diesel::insert_into(target_holds::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(n)
}

/// Ends every hold of an order (it was withdrawn, refused or completed), inside the caller's
/// transaction.
pub fn release(conn: &mut DbConn, order_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(
        target_holds::table
            .filter(target_holds::order_id.eq(order_id))
            .filter(target_holds::released_at.is_null()),
    )
    .set(target_holds::released_at.eq(Some(now)))
    .execute(conn)?;
    diesel::update(
        holds::table
            .filter(holds::order_id.eq(order_id))
            .filter(holds::expires_at.gt(now)),
    )
    .set(holds::expires_at.eq(now))
    .execute(conn)?;
    Ok(())
}

type Pending = (i64, String, String, String, Option<i32>, String, i64, i64);

/// An earlier order's hold of one target, as [`earlier_preservations`] reads it: the order, its
/// receipt, its hold's end, the extensions the legal team granted, and the hold's release.
type EarlierRow = (String, i64, Option<i64>, i32, Option<i64>);

/// Resolves up to one batch of pending target holds to account holds, one audit entry each
/// (the order, the target kind and the number of accounts: never the identifier). Returns how
/// many were resolved; call until it returns 0 to drain the queue.
///
/// An e-Evidence preservation order (EPOC-PR) whose last target hold this batch resolved is
/// then preserved, and its `datapreserved` queued with that transition
/// (`eevidence::holds_resolved`), in a transaction of its own right after this one commits: the
/// confirmation never goes out before the holds are placed. Not in the same transaction: the
/// confirmation takes the order's lock, which must never be waited for while holding the audit
/// append lock (every transition of an order takes its lock first and appends after, so the
/// resolver and an `endpreservation` or withdrawal would deadlock). Should the process stop in
/// between, the background jobs confirm it ([`super::eevidence::confirm_preserved`]).
pub fn resolve_pending(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, OrderError> {
    let micros = now.timestamp_micros();
    let (resolved, orders) = write_tx(conn, |c| {
        // The audit append lock first, then the rows: a release holds the append lock (its
        // `order.approved` entry) when it marks its target holds released, so a resolver that
        // claimed those rows first and then waited for the append lock would deadlock with it
        // on PostgreSQL (one of the two aborted). Taken in this order, the resolver waits.
        audit::log::lock(c)?;
        let query = target_holds::table
            .filter(target_holds::resolved_at.is_null())
            .filter(target_holds::released_at.is_null())
            .order(target_holds::id)
            .limit(BATCH)
            .select((
                target_holds::id,
                target_holds::order_id,
                target_holds::target_kind,
                target_holds::target_value,
                target_holds::ip_port,
                target_holds::categories,
                target_holds::data_from,
                target_holds::data_to,
            ));
        // SQLite's write transaction already excludes other resolvers; on PostgreSQL each
        // instance takes the rows no other instance is resolving.
        let pending: Vec<Pending> = crate::db::locks::load_skip_locked!(c, query)?;
        for (id, order_id, kind, value, port, categories, from, to) in &pending {
            let accounts = accounts_for(c, kind, value, *port, *from, *to)?;
            for account in &accounts {
                diesel::insert_into(holds::table)
                    .values((
                        holds::account_id.eq(account),
                        holds::categories.eq(categories),
                        holds::data_from.eq(from),
                        holds::data_to.eq(to),
                        holds::reason.eq("order"),
                        holds::order_id.eq(Some(order_id)),
                        holds::created_at.eq(micros),
                        holds::expires_at.eq(OPEN),
                    ))
                    .execute(c)?;
            }
            diesel::update(target_holds::table.find(id))
                .set(target_holds::resolved_at.eq(Some(micros)))
                .execute(c)?;
            let entry = NewEntry::new(
                Actor::new(ActorKind::System, "holds"),
                audit::Event::OrderHoldResolved,
            )
            .order(order_id.as_str())
            .reference("target_kind", kind.as_str())
            .reference("accounts", accounts.len());
            audit::append(c, &entry, now)?;
        }
        let mut orders: Vec<String> = pending.iter().map(|p| p.1.clone()).collect();
        orders.sort_unstable();
        orders.dedup();
        Ok::<_, OrderError>((pending.len(), orders))
    })?;
    for order_id in &orders {
        write_tx(conn, |c| super::eevidence::holds_resolved(c, order_id, now))?;
    }
    Ok(resolved)
}

/// Resolves every pending target hold.
pub fn resolve_all(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, OrderError> {
    let mut total = 0;
    loop {
        let n = resolve_pending(conn, now)?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

fn accounts_for(
    conn: &mut DbConn,
    kind: &str,
    value: &str,
    port: Option<i32>,
    from: i64,
    to: i64,
) -> QueryResult<Vec<i64>> {
    match kind {
        "user_id" => accounts::table
            .filter(accounts::external_id.eq(value))
            .select(accounts::id)
            .load(conn),
        "ip" => {
            let mut q = ip_events::table
                .filter(ip_events::ip.eq(value))
                .filter(ip_events::at.ge(from))
                .filter(ip_events::at.lt(to))
                .select(ip_events::account_id)
                .distinct()
                .limit(MAX_ACCOUNTS)
                .into_boxed();
            if let Some(p) = port {
                q = q.filter(ip_events::port.eq(p));
            }
            q.load(conn)
        }
        _ => account_identifiers::table
            .filter(account_identifiers::kind.eq(kind))
            .filter(account_identifiers::value.eq(value))
            .filter(account_identifiers::valid_from.lt(to))
            .filter(
                account_identifiers::valid_to
                    .is_null()
                    .or(account_identifiers::valid_to.gt(from)),
            )
            .select(account_identifiers::account_id)
            .distinct()
            .limit(MAX_ACCOUNTS)
            .load(conn),
    }
}
