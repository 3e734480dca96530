//! The legal team's dashboard: every figure counted from the orders table and the audit log at
//! the time of asking, never from counters kept on the side.
//!
//! - open, overdue and due today: open orders (under review, awaiting clarification,
//!   approved) by their deadline against `now` (due today: before the end of the UTC day);
//! - time to respond per instrument: for each answered order, the time from receipt to the
//!   first audit entry that answered it (`order.released`, `order.refused`,
//!   `order.answered_not_held`), against its deadline;
//! - volumes of all orders by week of receipt (the last [`WEEKS`] weeks), by the authority's
//!   registered country, by authority and by instrument; the share of emergency orders;
//! - outcomes, each order counted once: not held (an `order.answered_not_held` entry), else
//!   refused (status), else released narrowed (released with an `order.narrowed` entry), else
//!   released.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::Event;
use crate::db::DbConn;
use crate::db::schema::{audit_entries, authorities, orders};
use crate::metadata::normalize;
use crate::orders::{OrderError, OrderStatus};

/// Weeks shown in the volume chart.
pub const WEEKS: usize = 12;

/// How one instrument's orders were answered against their deadlines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// The instrument id.
    pub instrument: String,
    /// Orders answered.
    pub answered: u64,
    /// Answered by their deadline.
    pub on_time: u64,
    /// Answered after it.
    pub late: u64,
    /// Answered, without a fixed deadline.
    pub undated: u64,
    /// Median hours from receipt to answer.
    pub median_hours: f64,
    /// Median hours the deadline allowed (orders with one), if any.
    pub median_allowed_hours: Option<f64>,
}

/// Each order counted once, by how it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Released in the scope the engine decided.
    pub released: u64,
    /// Released after people narrowed the scope.
    pub narrowed: u64,
    /// Refused.
    pub refused: u64,
    /// Answered "no data held" (explicitly, or by a release with no records).
    pub not_held: u64,
}

/// The dashboard's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// When counted.
    pub now: DateTime<Utc>,
    /// Open orders.
    pub open: u64,
    /// Open orders past their deadline.
    pub overdue: u64,
    /// Open orders due from now to the end of the UTC day.
    pub due_today: u64,
    /// All orders.
    pub total: u64,
    /// Orders that claim an emergency.
    pub emergency: u64,
    /// Orders received per week (Monday, UTC), oldest first, the last [`WEEKS`] weeks.
    pub by_week: Vec<(String, u64)>,
    /// Orders per registered country of the authority, most first.
    pub by_country: Vec<(String, u64)>,
    /// Orders per authority, most first.
    pub by_authority: Vec<(String, u64)>,
    /// Orders per instrument, most first.
    pub by_instrument: Vec<(String, u64)>,
    /// How orders ended.
    pub outcomes: Outcomes,
    /// Time to respond, per instrument (answered orders), by instrument id.
    pub response: Vec<Response>,
}

fn sorted(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        f64::midpoint(v[mid - 1], v[mid])
    } else {
        v[mid]
    })
}

/// The Monday (UTC) that starts `t`'s week.
fn week_of(t: DateTime<Utc>) -> chrono::NaiveDate {
    let d = t.date_naive();
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// Counts the dashboard's figures at `now`.
pub fn compute(conn: &mut DbConn, now: DateTime<Utc>) -> Result<Dashboard, OrderError> {
    type Row = (String, String, String, bool, String, Option<i64>, i64);
    let rows: Vec<Row> = orders::table
        .select((
            orders::id,
            orders::authority_id,
            orders::instrument,
            orders::emergency,
            orders::status,
            orders::deadline_at,
            orders::received_at,
        ))
        .load(conn)?;
    let countries: HashMap<String, String> = authorities::table
        .select((authorities::id, authorities::country))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    // The first answer of each order, and the orders narrowed or answered "not held".
    let answers = [
        Event::OrderReleased.as_str(),
        Event::OrderRefused.as_str(),
        Event::OrderAnsweredNotHeld.as_str(),
    ];
    let events: Vec<(Option<String>, String, String)> = audit_entries::table
        .filter(audit_entries::event.eq_any([
            answers[0],
            answers[1],
            answers[2],
            Event::OrderNarrowed.as_str(),
        ]))
        .order(audit_entries::seq)
        .select((
            audit_entries::order_id,
            audit_entries::event,
            audit_entries::at,
        ))
        .load(conn)?;
    let mut answered_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut narrowed: HashSet<String> = HashSet::new();
    let mut not_held: HashSet<String> = HashSet::new();
    for (order, event, at) in events {
        let Some(order) = order else { continue };
        if event == Event::OrderNarrowed.as_str() {
            narrowed.insert(order);
            continue;
        }
        if event == Event::OrderAnsweredNotHeld.as_str() {
            not_held.insert(order.clone());
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(&at) {
            answered_at
                .entry(order)
                .or_insert_with(|| t.with_timezone(&Utc));
        }
    }

    let open_statuses = [
        OrderStatus::UnderReview.as_str(),
        OrderStatus::AwaitingClarification.as_str(),
        OrderStatus::Approved.as_str(),
    ];
    let end_of_day = now.date_naive().and_time(NaiveTime::MIN).and_utc() + Duration::days(1);
    let this_week = week_of(now);
    let first_week = this_week - Duration::weeks(i64::try_from(WEEKS).unwrap_or(12) - 1);
    let mut weeks: BTreeMap<chrono::NaiveDate, u64> = (0..WEEKS)
        .map(|i| {
            (
                first_week + Duration::weeks(i64::try_from(i).unwrap_or(0)),
                0,
            )
        })
        .collect();
    let (mut open, mut overdue, mut due_today, mut emergency) = (0, 0, 0, 0);
    let mut outcomes = Outcomes::default();
    let (mut by_country, mut by_authority, mut by_instrument) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    struct Acc {
        answered: u64,
        on_time: u64,
        late: u64,
        undated: u64,
        hours: Vec<f64>,
        allowed: Vec<f64>,
    }
    let mut response: BTreeMap<String, Acc> = BTreeMap::new();
    let total = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    for (id, authority, instrument, is_emergency, status, deadline, received) in rows {
        let received = normalize::from_micros(received);
        let deadline = deadline.map(normalize::from_micros);
        if is_emergency {
            emergency += 1;
        }
        if open_statuses.contains(&status.as_str()) {
            open += 1;
            match deadline {
                Some(d) if d < now => overdue += 1,
                Some(d) if d < end_of_day => due_today += 1,
                _ => {}
            }
        }
        if let Some(n) = weeks.get_mut(&week_of(received)) {
            *n += 1;
        }
        let country = countries
            .get(&authority)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        *by_country.entry(country).or_insert(0) += 1;
        *by_instrument.entry(instrument.clone()).or_insert(0) += 1;
        if not_held.contains(&id) {
            outcomes.not_held += 1;
        } else if status == OrderStatus::Refused.as_str() {
            outcomes.refused += 1;
        } else if status == OrderStatus::Released.as_str() {
            if narrowed.contains(&id) {
                outcomes.narrowed += 1;
            } else {
                outcomes.released += 1;
            }
        }
        if let Some(at) = answered_at.get(&id) {
            let acc = response.entry(instrument).or_insert(Acc {
                answered: 0,
                on_time: 0,
                late: 0,
                undated: 0,
                hours: Vec::new(),
                allowed: Vec::new(),
            });
            acc.answered += 1;
            acc.hours
                .push((*at - received).num_seconds() as f64 / 3600.0);
            match deadline {
                Some(d) => {
                    if *at <= d {
                        acc.on_time += 1;
                    } else {
                        acc.late += 1;
                    }
                    acc.allowed
                        .push((d - received).num_seconds() as f64 / 3600.0);
                }
                None => acc.undated += 1,
            }
        }
        *by_authority.entry(authority).or_insert(0) += 1;
    }
    Ok(Dashboard {
        now,
        open,
        overdue,
        due_today,
        total,
        emergency,
        by_week: weeks
            .into_iter()
            .map(|(d, n)| (d.format("%Y-%m-%d").to_string(), n))
            .collect(),
        by_country: sorted(by_country),
        by_authority: sorted(by_authority),
        by_instrument: sorted(by_instrument),
        outcomes,
        response: response
            .into_iter()
            .map(|(instrument, mut a)| Response {
                instrument,
                answered: a.answered,
                on_time: a.on_time,
                late: a.late,
                undated: a.undated,
                median_hours: median(&mut a.hours).unwrap_or(0.0),
                median_allowed_hours: median(&mut a.allowed),
            })
            .collect(),
    })
}
