//! The legal team's side of an order: the queue, the full picture of one order, and the
//! review actions (ask, check a claimed validation, refuse). Approval and release, which build
//! the disclosure package, live in `crate::disclosure`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::messages::{self, Message};
use super::{OrderError, OrderStatus, OrderView, holds, view};
use crate::audit::{self, NewEntry};
use crate::db::schema::{audit_entries, authorities, order_versions, orders};
use crate::db::{DbConn, write_tx};
use crate::metadata::normalize;
use crate::policy::{Action, Decision, FieldStatus};
use crate::staff::Staff;

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    /// Order id.
    pub id: String,
    /// The authority's reference.
    pub reference: String,
    /// The sending authority.
    pub authority_id: String,
    /// Instrument id.
    pub instrument: String,
    /// The jurisdiction (the instrument's prefix).
    pub jurisdiction: String,
    /// Status.
    pub status: OrderStatus,
    /// Emergency claimed.
    pub emergency: bool,
    /// A preservation order.
    pub preservation: bool,
    /// The engine's outcome.
    pub outcome: String,
    /// When received.
    pub received_at: DateTime<Utc>,
    /// The reply deadline.
    pub deadline_at: Option<DateTime<Utc>>,
    /// Seconds left until the deadline (negative: overdue).
    pub seconds_left: Option<i64>,
    /// Other clocks: ex-post validation due, a pending clarification.
    pub tasks: Vec<String>,
    /// Without a fixed deadline: the internal target (receipt plus the instrument's hours).
    pub target_at: Option<DateTime<Utc>>,
    /// The colleague it is assigned to (username).
    pub assigned_to: Option<String>,
    /// The authority wrote and nobody has marked the reply read yet.
    pub reply_unread: bool,
}

impl QueueRow {
    /// Overdue.
    pub fn overdue(&self) -> bool {
        self.seconds_left.is_some_and(|s| s < 0)
    }

    /// Due within a day.
    pub fn nearly_due(&self) -> bool {
        self.seconds_left.is_some_and(|s| (0..86_400).contains(&s))
    }

    /// The time left, for people.
    pub fn time_left(&self) -> String {
        match self.seconds_left {
            None => match self.target_at {
                Some(t) => format!(
                    "no fixed deadline; internal target {}",
                    t.format("%-d %b %Y")
                ),
                None => "no deadline".into(),
            },
            Some(s) if s < 0 => format!("overdue by {}", human(-s)),
            Some(s) => human(s),
        }
    }
}

fn human(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// Filters of the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Only this status (default: every open status).
    pub status: Option<OrderStatus>,
    /// Only this jurisdiction.
    pub jurisdiction: Option<String>,
    /// Only emergencies.
    pub emergency_only: bool,
    /// The page wanted, from 0.
    pub page: u32,
    /// Rows per page (1 to [`MAX_PAGE_SIZE`]; 0 means [`DEFAULT_PAGE_SIZE`]).
    pub page_size: u32,
    /// Internal targets of orders without a fixed deadline: hours after receipt per
    /// instrument id, and for any other instrument (0: [`crate::settings::DEFAULT_UNDATED_TARGET_HOURS`]).
    pub undated_targets: Vec<(String, u32)>,
    /// The target for instruments not in `undated_targets`.
    pub undated_default_hours: u32,
    /// Only orders whose reference contains this text (any case).
    pub reference: Option<String>,
    /// Only orders naming this target identifier, exactly as the order gives it. Audited:
    /// search through [`super::desk::search_by_target`].
    pub target: Option<String>,
    /// Only orders from these authorities (registry ids, resolved from a name, id or country).
    pub authorities: Option<Vec<String>>,
    /// Only this instrument id.
    pub instrument: Option<String>,
    /// Only this engine outcome (e.g. `acceptable_for_review`).
    pub outcome: Option<String>,
    /// Only orders received at or after this instant (UTC microseconds).
    pub received_from: Option<i64>,
    /// Only orders received before this instant (UTC microseconds).
    pub received_before: Option<i64>,
    /// Only orders assigned to this colleague (`Some(None)`: assigned to nobody).
    pub assignee: Option<Option<String>>,
    /// Only orders the authority wrote on.
    pub replied_only: bool,
}

impl QueueFilter {
    fn undated_target_micros(&self, instrument: &str) -> i64 {
        let hours = self
            .undated_targets
            .iter()
            .find(|(i, _)| i == instrument)
            .map_or(self.undated_default_hours, |(_, h)| *h);
        let hours = if hours == 0 {
            crate::settings::DEFAULT_UNDATED_TARGET_HOURS
        } else {
            hours
        };
        i64::from(hours) * 3_600_000_000
    }
}

/// Rows on a queue page unless asked otherwise: a screenful or two, soonest deadlines first.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most rows one queue page shows.
pub const MAX_PAGE_SIZE: u32 = 500;

/// One page of the queue.
#[derive(Debug, Clone)]
pub struct QueuePage {
    /// The rows of the page.
    pub rows: Vec<QueueRow>,
    /// Whether a further page follows.
    pub more: bool,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    bool,
    String,
    i64,
    Option<i64>,
    i32,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    bool,
);

diesel::define_sql_function! {
    /// SQL `lower()`, the same on both backends for ASCII.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `text` as a LIKE pattern that matches it literally anywhere (escape character `\`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// Open orders, soonest deadline first (an order without a fixed deadline by its internal
/// target), emergencies first among equals, then oldest receipt; closed orders only when asked
/// for by status.
pub fn queue(
    conn: &mut DbConn,
    filter: &QueueFilter,
    now: DateTime<Utc>,
) -> Result<QueuePage, OrderError> {
    let size = match filter.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    // First the page, sorted and limited on `orders` alone; then the decisions of that page
    // only. Joining first made SQLite carry every open order's decision JSON through the sort
    // (150 ms for 10,000 open orders).
    let mut q = orders::table
        .select((
            orders::id,
            orders::reference,
            orders::authority_id,
            orders::instrument,
            orders::status,
            orders::emergency,
            orders::outcome,
            orders::received_at,
            orders::deadline_at,
            orders::version,
            orders::ex_post_validation,
            orders::user_notified_at,
            orders::hold_until,
            orders::assigned_to,
            orders::reply_unread,
        ))
        .into_boxed();
    match filter.status {
        Some(s) => q = q.filter(orders::status.eq(s.as_str())),
        None => {
            q = q.filter(orders::status.eq_any([
                OrderStatus::UnderReview.as_str(),
                OrderStatus::AwaitingClarification.as_str(),
                OrderStatus::Approved.as_str(),
            ]))
        }
    }
    if filter.emergency_only {
        q = q.filter(orders::emergency.eq(true));
    }
    if let Some(j) = &filter.jurisdiction {
        q = q.filter(orders::instrument.like(format!("{j}.%")));
    }
    if let Some(r) = &filter.reference {
        q = q.filter(
            lower(orders::reference)
                .like(contains_pattern(&r.to_lowercase()))
                .escape('\\'),
        );
    }
    if let Some(t) = &filter.target {
        // The identifier as a whole JSON string inside the order as submitted (any version).
        // Correlated, so that only the versions of the orders the other filters keep are read:
        // `id IN (SELECT ...)` read every version of every order ever received (121 ms at
        // 52,900 orders, 10,000 of them open).
        let quoted = serde_json::Value::String(t.clone()).to_string();
        q = q.filter(diesel::dsl::exists(
            order_versions::table
                .filter(order_versions::order_id.eq(orders::id))
                .filter(
                    order_versions::order_json
                        .like(contains_pattern(&quoted))
                        .escape('\\'),
                )
                .select(order_versions::version),
        ));
    }
    if let Some(ids) = &filter.authorities {
        q = q.filter(orders::authority_id.eq_any(ids.clone()));
    }
    if let Some(i) = &filter.instrument {
        q = q.filter(orders::instrument.eq(i.clone()));
    }
    if let Some(o) = &filter.outcome {
        q = q.filter(orders::outcome.eq(o.clone()));
    }
    if let Some(from) = filter.received_from {
        q = q.filter(orders::received_at.ge(from));
    }
    if let Some(before) = filter.received_before {
        q = q.filter(orders::received_at.lt(before));
    }
    match &filter.assignee {
        Some(Some(who)) => q = q.filter(orders::assigned_to.eq(who.clone())),
        Some(None) => q = q.filter(orders::assigned_to.is_null()),
        None => {}
    }
    if filter.replied_only {
        q = q.filter(orders::replied_at.is_not_null());
    }
    // Sorted before the limit: with more open orders than one page holds, the page must show
    // the soonest deadlines, not an arbitrary few. One row past the page says whether more follow.
    // An order without a fixed deadline sorts by its internal target (receipt plus the
    // instrument's hours), so it climbs with age instead of waiting below every dated order.
    type SortKey = Box<
        dyn diesel::expression::BoxableExpression<
                orders::table,
                crate::db::MultiBackend,
                SqlType = diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
            >,
    >;
    let mut undated: SortKey =
        Box::new((orders::received_at + filter.undated_target_micros("")).nullable());
    for (instrument, _) in &filter.undated_targets {
        undated = Box::new(
            diesel::dsl::case_when(
                orders::instrument.eq(instrument.clone()),
                (orders::received_at + filter.undated_target_micros(instrument)).nullable(),
            )
            .otherwise(undated),
        );
    }
    let effective: SortKey = Box::new(
        diesel::dsl::case_when(orders::deadline_at.is_not_null(), orders::deadline_at)
            .otherwise(undated),
    );
    let mut rows: Vec<Row> = q
        .order((
            effective.asc(),
            orders::emergency.desc(),
            orders::received_at.asc(),
            orders::id.asc(),
        ))
        .offset(i64::from(filter.page) * i64::from(size))
        .limit(i64::from(size) + 1)
        .load(conn)?;
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut decisions: std::collections::HashMap<(String, i32), String> = order_versions::table
        .filter(order_versions::order_id.eq_any(&ids))
        .select((
            order_versions::order_id,
            order_versions::version,
            order_versions::decision_json,
        ))
        .load::<(String, i32, String)>(conn)?
        .into_iter()
        .map(|(id, version, json)| ((id, version), json))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for (
        id,
        reference,
        authority_id,
        instrument,
        status,
        emergency,
        outcome,
        received,
        deadline,
        version,
        ex_post,
        notified,
        hold_until,
        assigned_to,
        reply_unread,
    ) in rows
    {
        let jurisdiction = instrument.split('.').next().unwrap_or_default().to_owned();
        // Only the three fields the queue shows: parsing the whole decision (targets,
        // findings, categories) per row was most of the page's time with thousands open.
        let decision: Option<QueueDecision> = decisions
            .remove(&(id.clone(), version))
            .and_then(|json| serde_json::from_str(&json).ok());
        let status = OrderStatus::parse(&status).unwrap_or(OrderStatus::UnderReview);
        let mut tasks = Vec::new();
        if let Some(v) = decision.as_ref().and_then(|d| d.validation_due.as_ref())
            && ex_post.is_none()
        {
            tasks.push(format!(
                "ex-post validation due {}",
                v.due.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        if notified.is_none()
            && let Some(d) = &decision
            && d.user_notice.iter().any(|n| {
                n.provider_must_inform
                    && match n.timing {
                        crate::policy::NoticeTiming::NotBefore(t) => t <= now,
                        crate::policy::NoticeTiming::WhenGivingEffect => {
                            status == OrderStatus::Approved
                        }
                        _ => false,
                    }
            })
        {
            tasks.push("user notice due".into());
        }
        // Only preservation orders have a hold end.
        if let Some(u) = hold_until.map(normalize::from_micros)
            && u - now < chrono::Duration::days(7)
        {
            tasks.push(format!("holds end {}", u.format("%Y-%m-%d")));
        }
        if status == OrderStatus::AwaitingClarification {
            tasks.push("clarification requested, no answer yet".into());
        }
        let deadline_at = deadline.map(normalize::from_micros);
        let target_at = deadline_at.is_none().then(|| {
            normalize::from_micros(
                received.saturating_add(filter.undated_target_micros(&instrument)),
            )
        });
        out.push(QueueRow {
            target_at,
            preservation: decision.as_ref().and_then(|d| d.action) == Some(Action::Preserve),
            seconds_left: deadline_at.map(|d| (d - now).num_seconds()),
            id,
            reference,
            authority_id,
            instrument,
            jurisdiction,
            status,
            emergency,
            outcome,
            received_at: normalize::from_micros(received),
            deadline_at,
            tasks,
            assigned_to,
            reply_unread,
        });
    }
    Ok(QueuePage { rows: out, more })
}

/// The parts of a stored [`Decision`] the queue reads; serde skips the rest unparsed.
#[derive(Debug, Deserialize)]
struct QueueDecision {
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    validation_due: Option<crate::policy::ValidationDue>,
    #[serde(default)]
    user_notice: Vec<crate::policy::NoticeDuty>,
}

/// One line of an order's audit timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// Position in the log.
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who (kind:id).
    pub actor: String,
    /// What.
    pub event: String,
}

/// Everything the order page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderDetail {
    /// The order as the authority sees it.
    pub view: OrderView,
    /// The sending authority.
    pub authority_id: String,
    /// The order JSON as submitted (current version).
    pub order_json: String,
    /// The scope in force: the decision, narrowed where people narrowed it.
    pub scope: Decision,
    /// Whether the scope was narrowed.
    pub narrowed: bool,
    /// Whether some field waits on a person's check of the claimed validation.
    pub validation_check_needed: bool,
    /// Who checked the claimed validation, if someone did.
    pub validation_checked_by: Option<String>,
    /// Who entered the order by hand, if it came on paper.
    pub entered_by: Option<String>,
    /// The sending authority as registered (its name, country and kind), for the summary.
    pub registered: Option<RegisteredAuthority>,
    /// The current version's order, parsed, for the summary (`None` if the stored JSON no
    /// longer parses, e.g. written by an older version of Writ).
    pub order: Option<crate::policy::Order>,
    /// The clarification messages.
    pub messages: Vec<Message>,
    /// The order's audit entries.
    pub timeline: Vec<TimelineEntry>,
}

/// The sending authority as Writ's registry knows it (never as the order claims it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredAuthority {
    /// The registered name.
    pub name: String,
    /// The registered country (ISO 3166-1 alpha-2).
    pub country: String,
    /// The registered kind (`prosecutor`, `judge`, ...).
    pub kind: String,
}

/// The full picture of an order, for the workspace.
pub fn detail(conn: &mut DbConn, id: &str) -> Result<OrderDetail, OrderError> {
    let view = view(conn, id, None)?;
    let (authority_id, entered_by): (String, Option<String>) = orders::table
        .find(id)
        .select((orders::authority_id, orders::entered_by))
        .first(conn)?;
    let (order_json, scope_json, checked_by): (String, Option<String>, Option<String>) =
        order_versions::table
            .find((id, view.version))
            .select((
                order_versions::order_json,
                order_versions::scope_json,
                order_versions::validation_checked_by,
            ))
            .first(conn)?;
    let scope: Decision = match &scope_json {
        Some(j) => serde_json::from_str(j).map_err(|e| {
            OrderError::Db(crate::db::DbError::Corrupt(format!(
                "scope of order {id}: {e}"
            )))
        })?,
        None => view.decision.clone(),
    };
    let validation_check_needed = scope
        .categories
        .iter()
        .flat_map(|c| c.fields.iter())
        .any(|f| f.status == FieldStatus::PermitPendingValidationCheck);
    let registered = authorities::table
        .find(&authority_id)
        .select((authorities::name, authorities::country, authorities::kind))
        .first::<(String, String, String)>(conn)
        .optional()?
        .map(|(name, country, kind)| RegisteredAuthority {
            name,
            country,
            kind,
        });
    let order = crate::policy::Order::from_json(&order_json).ok();
    let messages = messages::messages(conn, id, None)?;
    let timeline = audit_entries::table
        .filter(audit_entries::order_id.eq(id))
        .order(audit_entries::seq)
        .select((
            audit_entries::seq,
            audit_entries::at,
            audit_entries::actor_kind,
            audit_entries::actor_id,
            audit_entries::event,
        ))
        .load::<(i64, String, String, String, String)>(conn)?
        .into_iter()
        .map(|(seq, at, kind, actor, event)| TimelineEntry {
            seq,
            at,
            actor: format!("{kind}:{actor}"),
            event,
        })
        .collect();
    Ok(OrderDetail {
        view,
        authority_id,
        order_json,
        narrowed: scope_json.is_some(),
        scope,
        validation_check_needed,
        validation_checked_by: checked_by,
        entered_by,
        registered,
        order,
        messages,
        timeline,
    })
}

/// Records that a person checked the claimed validation against the signed document, how
/// (`method`, one of [`super::judgement::CHECK_METHODS`]) and in their words (`note`): both are
/// required, stored as a justification, and referred to by the audit entry.
pub fn check_validation(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    method: &str,
    note: &str,
) -> Result<(), OrderError> {
    let method = super::judgement::check_method(method)?;
    let note = super::judgement::check_text("note", note)?;
    write_tx(conn, |c| {
        let current = view(c, id, None)?;
        if current.status.is_closed() {
            return Err(OrderError::Conflict(format!(
                "the order is {}",
                current.status.as_str()
            )));
        }
        let now = Utc::now();
        diesel::update(order_versions::table.find((id, current.version)))
            .set((
                order_versions::validation_checked_by.eq(Some(&staff.username)),
                order_versions::validation_checked_at.eq(Some(now.timestamp_micros())),
            ))
            .execute(c)?;
        let point = super::judgement::Point {
            code: super::judgement::CLAIMED_VALIDATION.into(),
            text: String::new(),
        };
        let (jid, jsha) = super::judgement::record(
            c,
            id,
            "validation_check",
            Some(method),
            &[point],
            note,
            &staff.username,
            now,
        )?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderValidationChecked)
            .order(id)
            .reference("version", u64::try_from(current.version).unwrap_or(0))
            .reference("method", method)
            .reference("justification_id", jid)
            .reference("justification_sha256", jsha);
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// Which answer closes an order without a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A reasoned refusal (`order.refused`).
    Refusal,
    /// The provider holds no data the order reaches (`order.answered_not_held`; Annex III on
    /// EU orders).
    NotHeld,
}

/// Refuses an order with a reason the authority receives (e.g. an Annex III-style "cannot
/// comply"), or answers that no data are held; its holds end.
pub fn refuse(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    reason: &str,
    reply: Reply,
    mail: &crate::settings::MailSettings,
) -> Result<(), OrderError> {
    refuse_at(conn, staff, id, reason, reply, mail, Utc::now())
}

/// [`refuse`] at a given time (a refusal recorded in a replayed or seeded history).
pub fn refuse_at(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    reason: &str,
    reply: Reply,
    mail: &crate::settings::MailSettings,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 5000 || reason.contains('\0') {
        return Err(OrderError::Invalid {
            kind: super::InvalidKind::Unprocessable,
            slug: "invalid-refusal",
            title: "A refusal needs a reason".into(),
            errors: vec![super::FieldError::new(
                "reason",
                "must be 1 to 5000 characters",
            )],
            submission_id: None,
        });
    }
    write_tx(conn, |c| {
        let current = view(c, id, None)?;
        if current.status.is_closed() {
            return Err(OrderError::Conflict(format!(
                "the order is already {}",
                current.status.as_str()
            )));
        }

        diesel::update(orders::table.find(id))
            .set((
                orders::status.eq(OrderStatus::Refused.as_str()),
                orders::updated_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let (said, event) = match reply {
            Reply::Refusal => (format!("Refused: {reason}"), audit::Event::OrderRefused),
            Reply::NotHeld => (
                format!("Data not held: {reason}"),
                audit::Event::OrderAnsweredNotHeld,
            ),
        };
        messages::provider_message(c, id, &staff.username, &said, now)?;
        holds::release(c, id, now.timestamp_micros())?;
        let entry = NewEntry::new(staff.actor(), event).order(id);
        audit::append(c, &entry, now)?;
        let owner: String = orders::table
            .find(id)
            .select(orders::authority_id)
            .first(c)?;
        crate::mail::notify(
            c,
            mail,
            crate::mail::Recipients::Authority(&owner),
            &match reply {
                Reply::Refusal => crate::mail::Notice::Refusal {
                    order_id: id.to_owned(),
                    reference: current.reference.clone(),
                    reason: reason.to_owned(),
                },
                Reply::NotHeld => crate::mail::Notice::NoDataHeld {
                    order_id: id.to_owned(),
                    reference: current.reference.clone(),
                    text: reason.to_owned(),
                },
            },
            now,
        );
        Ok(())
    })
}

/// The internal id an order is known by to a person: `key` itself when it is an order's id,
/// else the id of the one order with that reference (`None` when there is none). A reference
/// several authorities used is ambiguous: a conflict that asks for the internal id.
pub fn resolve_order_key(conn: &mut DbConn, key: &str) -> Result<Option<String>, OrderError> {
    let by_id: Option<String> = orders::table
        .find(key)
        .select(orders::id)
        .first(conn)
        .optional()?;
    if by_id.is_some() {
        return Ok(by_id);
    }
    let mut by_reference: Vec<String> = orders::table
        .filter(orders::reference.eq(key))
        .select(orders::id)
        .limit(2)
        .load(conn)?;
    match by_reference.len() {
        0 | 1 => Ok(by_reference.pop()),
        _ => Err(OrderError::Conflict(format!(
            "several orders have the reference `{key}`: filter by the internal id"
        ))),
    }
}

/// The references of the orders `ids` (internal id to reference), for pages that list audit
/// entries by the reference people know.
pub fn references(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, OrderError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = orders::table
            .filter(orders::id.eq_any(chunk))
            .select((orders::id, orders::reference))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}
