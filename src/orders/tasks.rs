//! Tasks with their own clocks, closed by the legal team: the ex-post validation of an
//! emergency order (received, or lapsed: the order is withdrawn and what was released is
//! recorded as to be deleted by the authority), the user notice (date and channel), and the
//! holds of a preservation order (extended within what the law allows, or released).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{OrderError, OrderStatus, holds, lock, review};
use crate::audit::{self, NewEntry};
use crate::db::schema::orders;
use crate::db::{DbConn, write_tx};
use crate::policy::{Action, PolicyDuration};
use crate::staff::Staff;

fn conflict(m: impl Into<String>) -> OrderError {
    OrderError::Conflict(m.into())
}

/// Records the outcome of an emergency order's ex-post validation: `received`, or `lapsed`
/// (the order is withdrawn, its holds end, and anything released is recorded as to be deleted
/// by the authority).
pub fn ex_post_validation(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    received: bool,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(conn, |c| {
        lock(c, id)?;
        let d = review::detail(c, id)?;
        if d.scope.validation_due.is_none() {
            return Err(conflict("this order has no ex-post validation to follow"));
        }
        let recorded: Option<String> = orders::table
            .find(id)
            .select(orders::ex_post_validation)
            .first(c)?;
        if let Some(r) = recorded {
            return Err(conflict(format!(
                "the ex-post validation is already recorded as {r}"
            )));
        }
        let outcome = if received { "received" } else { "lapsed" };
        diesel::update(orders::table.find(id))
            .set((
                orders::ex_post_validation.eq(Some(outcome)),
                orders::updated_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let mut entry = NewEntry::new(staff.actor(), audit::Event::OrderExPostValidation)
            .order(id)
            .reference("outcome", outcome);
        if !received {
            let was_released = d.view.status == OrderStatus::Released;
            if !d.view.status.is_closed() || was_released {
                diesel::update(orders::table.find(id))
                    .set(orders::status.eq(OrderStatus::Withdrawn.as_str()))
                    .execute(c)?;
            }
            holds::release(c, id, now.timestamp_micros())?;
            entry = entry.reference("released_data_to_be_deleted", was_released);
        }
        audit::append(c, &entry, now)?;
        if !received {
            // Writ keeps no copy of what the authority must now delete.
            crate::orders::approval::delete_released_of(c, id, "ex_post_validation_lapsed", now)?;
        }
        Ok(())
    })
}

/// Channels a user can be told through.
pub const CHANNELS: [&str; 4] = ["in_app", "email", "sms", "post"];

/// Records that the user was told about the order, when and how.
/// Why the provider may not tell the user now, if it may not: a rule keeps the order
/// confidential, the rules conflict and the authority must be asked first, no rule lets the
/// provider tell, or not yet. The workspace offers the notice form only when this is `None`.
pub fn notice_blocked(scope: &crate::policy::Decision, now: DateTime<Utc>) -> Option<String> {
    use crate::policy::{NoticeTiming, ReasonCode};
    if scope
        .user_notice
        .iter()
        .any(|n| !n.provider_may_inform && !n.provider_must_inform)
    {
        return Some("a rule keeps the order confidential: the user must not be told".into());
    }
    if scope
        .review_flags
        .iter()
        .any(|f| f.code == ReasonCode::NoticeConflict)
    {
        return Some(
            "the rules on telling the user conflict: ask the authority when notice may be given"
                .into(),
        );
    }
    let allowing: Vec<_> = scope
        .user_notice
        .iter()
        .filter(|n| n.provider_may_inform || n.provider_must_inform)
        .collect();
    if allowing.is_empty() {
        return Some("no rule lets the provider tell the user".into());
    }
    let now_allowed = allowing.iter().any(|n| match n.timing {
        NoticeTiming::NotBefore(t) => t <= now,
        NoticeTiming::WhenGivingEffect | NoticeTiming::NotApplicable => true,
        NoticeTiming::WhenGagLifted | NoticeTiming::Never => false,
    });
    if now_allowed {
        return None;
    }
    Some(
        match allowing.iter().find_map(|n| match n.timing {
            NoticeTiming::NotBefore(t) => Some(t),
            _ => None,
        }) {
            Some(t) => format!(
                "the user may be told only from {}",
                t.format("%Y-%m-%d %H:%M UTC")
            ),
            None => {
                "the user may be told only once the authority lifts the non-disclosure order".into()
            }
        },
    )
}

/// When the provider's notice to the user may go out on its own, for an order given effect
/// (released) at `released_at`: `None` when a rule keeps the order confidential, the rules
/// conflict (ask the authority first), no rule lets the provider tell, or only the lifting of
/// an open-ended non-disclosure order would; else the earliest time a rule allows (the release,
/// or the end of a dated non-disclosure order).
pub fn notice_due(
    scope: &crate::policy::Decision,
    released_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    use crate::policy::{NoticeTiming, ReasonCode};
    let confidential = scope
        .user_notice
        .iter()
        .any(|n| !n.provider_may_inform && !n.provider_must_inform);
    let conflict = scope
        .review_flags
        .iter()
        .any(|f| f.code == ReasonCode::NoticeConflict);
    if confidential || conflict {
        return None;
    }
    scope
        .user_notice
        .iter()
        .filter(|n| n.provider_may_inform || n.provider_must_inform)
        .filter_map(|n| match n.timing {
            NoticeTiming::WhenGivingEffect => Some(released_at),
            NoticeTiming::NotBefore(t) => Some(t.max(released_at)),
            NoticeTiming::NotApplicable | NoticeTiming::WhenGagLifted | NoticeTiming::Never => None,
        })
        .min()
}

/// Records that the user was told about the order, when and how.
pub fn user_notified(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    at: DateTime<Utc>,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    if !CHANNELS.contains(&channel) {
        return Err(OrderError::Invalid {
            kind: super::InvalidKind::Unprocessable,
            slug: "invalid-channel",
            title: "Unknown channel".into(),
            errors: vec![super::FieldError::new(
                "channel",
                format!("must be one of {}", CHANNELS.join(", ")),
            )],
            submission_id: None,
        });
    }
    if at > now {
        return Err(conflict("the notice cannot be dated in the future"));
    }
    write_tx(conn, |c| {
        lock(c, id)?;
        let d = review::detail(c, id)?;
        if let Some(why) = notice_blocked(&d.scope, now) {
            return Err(conflict(format!("{why}; nothing was recorded")));
        }
        diesel::update(orders::table.find(id))
            .set((
                orders::user_notified_at.eq(Some(at.timestamp_micros())),
                orders::user_notified_channel.eq(Some(channel)),
            ))
            .execute(c)?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderUserNotified)
            .order(id)
            .reference("channel", channel)
            .reference("at", at.to_rfc3339());
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// When a preservation order's holds end (`None` for other orders).
pub fn hold_until(conn: &mut DbConn, id: &str) -> Result<Option<DateTime<Utc>>, OrderError> {
    let until: Option<i64> = orders::table
        .find(id)
        .select(orders::hold_until)
        .first::<Option<i64>>(conn)
        .optional()?
        .ok_or(OrderError::NotFound)?;
    Ok(until.map(crate::metadata::normalize::from_micros))
}

/// Extends a preservation order's holds by the extension the law allows, at most as often as
/// it allows.
pub fn extend_hold(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, OrderError> {
    write_tx(conn, |c| {
        lock(c, id)?;
        let d = review::detail(c, id)?;
        if d.scope.action != Some(Action::Preserve) || d.view.status.is_closed() {
            return Err(conflict(
                "only an open preservation order's holds can be extended",
            ));
        }
        let Some(p) = d.scope.preservation.clone() else {
            return Err(conflict("the decision sets no preservation period"));
        };
        let extensions: i32 = orders::table
            .find(id)
            .select(orders::hold_extensions)
            .first(c)?;
        let Some(length) = p.extension.as_deref() else {
            return Err(conflict("the law allows no extension of this preservation"));
        };
        if u32::try_from(extensions).unwrap_or(u32::MAX) >= p.max_extensions {
            return Err(conflict(format!(
                "the law allows {} extension(s); all are used",
                p.max_extensions
            )));
        }
        let step = PolicyDuration::parse(length)
            .map_err(|_| conflict(format!("the extension `{length}` is not a duration")))?;
        let current = hold_until(c, id)?.unwrap_or(p.expires_at);
        let until = current + step.to_chrono();
        diesel::update(orders::table.find(id))
            .set((
                orders::hold_until.eq(Some(until.timestamp_micros())),
                orders::hold_extensions.eq(extensions + 1),
            ))
            .execute(c)?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderHoldExtended)
            .order(id)
            .reference("until", until.to_rfc3339());
        audit::append(c, &entry, now)?;
        Ok(until)
    })
}

/// Releases a preservation order's holds now: the data go back under normal retention and the
/// order is closed (as released: its purpose is served or lapsed).
pub fn release_hold(
    conn: &mut DbConn,
    staff: &Staff,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(conn, |c| {
        lock(c, id)?;
        let d = review::detail(c, id)?;
        if d.scope.action != Some(Action::Preserve) || d.view.status.is_closed() {
            return Err(conflict(
                "only an open preservation order's holds can be released",
            ));
        }
        holds::release(c, id, now.timestamp_micros())?;
        diesel::update(orders::table.find(id))
            .set((
                orders::status.eq(OrderStatus::Released.as_str()),
                orders::updated_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderHoldReleased).order(id);
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// Ends the holds of preservation orders whose period is over (the background job): one
/// indexed query finds them; each is closed with its audit entry.
pub fn expire_holds(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, OrderError> {
    let ids: Vec<String> = orders::table
        .filter(orders::status.eq_any(OPEN))
        .filter(orders::hold_until.le(now.timestamp_micros()))
        .select(orders::id)
        .limit(100)
        .load(conn)?;
    for id in &ids {
        write_tx(conn, |c| {
            // Claimed by a conditional update: of several instances, one expires it.
            let claimed = diesel::update(
                orders::table
                    .find(id)
                    .filter(orders::status.eq_any(OPEN))
                    .filter(orders::hold_until.le(now.timestamp_micros())),
            )
            .set(orders::status.eq(OrderStatus::Released.as_str()))
            .execute(c)?;
            if claimed == 0 {
                return Ok(());
            }
            holds::release(c, id, now.timestamp_micros())?;
            let entry = NewEntry::new(
                crate::audit::Actor::new(crate::audit::ActorKind::System, "holds"),
                audit::Event::OrderHoldExpired,
            )
            .order(id.as_str());
            audit::append(c, &entry, now)?;
            Ok::<_, OrderError>(())
        })?;
    }
    Ok(ids.len())
}

/// Statuses of an order still open.
const OPEN: [&str; 3] = ["under_review", "awaiting_clarification", "approved"];

/// The tasks' state, for the order page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskState {
    /// `received` or `lapsed`, once recorded.
    pub ex_post_validation: Option<String>,
    /// When and how the user was told.
    pub user_notified: Option<(DateTime<Utc>, String)>,
    /// When a preservation order's holds end.
    pub hold_until: Option<DateTime<Utc>>,
    /// Extensions granted.
    pub hold_extensions: i32,
}

/// The tasks' state of an order.
pub fn state(conn: &mut DbConn, id: &str) -> Result<TaskState, OrderError> {
    let (ex_post, at, channel, extensions): (Option<String>, Option<i64>, Option<String>, i32) =
        orders::table
            .find(id)
            .select((
                orders::ex_post_validation,
                orders::user_notified_at,
                orders::user_notified_channel,
                orders::hold_extensions,
            ))
            .first(conn)?;
    Ok(TaskState {
        ex_post_validation: ex_post,
        user_notified: at
            .zip(channel)
            .map(|(a, c)| (crate::metadata::normalize::from_micros(a), c)),
        hold_until: hold_until(conn, id)?,
        hold_extensions: extensions,
    })
}

/// Reminds the legal team once per order of a task due within `within`: an ex-post validation
/// not yet recorded, a preservation hold about to end, or a follow-up task of the decision
/// (legal process after an emergency disclosure, a court application). Returns how many were
/// queued.
pub fn remind_tasks(
    conn: &mut DbConn,
    mail: &crate::settings::MailSettings,
    within: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    if mail.legal_team.is_empty() {
        return Ok(0);
    }
    let horizon = (now + within).timestamp_micros();
    // Two indexed conditions, no decision loaded: a validation not yet recorded, or an open
    // preservation order's hold ending.
    type Candidate = (String, String, Option<i64>, Option<i64>, Option<i64>);
    let candidates: Vec<Candidate> = orders::table
        .filter(orders::task_reminded_at.is_null())
        .filter(
            orders::validation_due_at
                .le(horizon)
                .and(orders::ex_post_validation.is_null())
                .and(orders::status.ne(OrderStatus::Withdrawn.as_str()))
                .and(orders::status.ne(OrderStatus::Refused.as_str()))
                .or(orders::hold_until
                    .le(horizon)
                    .and(orders::status.eq_any(OPEN)))
                .or(orders::follow_up_due_at
                    .le(horizon)
                    .and(orders::status.ne(OrderStatus::Withdrawn.as_str()))
                    .and(orders::status.ne(OrderStatus::Refused.as_str()))),
        )
        .select((
            orders::id,
            orders::reference,
            orders::validation_due_at,
            orders::hold_until,
            orders::follow_up_due_at,
        ))
        .limit(500)
        .load(conn)?;
    let mut queued = 0;
    for (id, reference, validation_due, hold_end, follow_up) in candidates {
        let (task, at) = match (
            validation_due.filter(|d| *d <= horizon),
            hold_end.filter(|d| *d <= horizon),
        ) {
            (Some(d), _) => ("ex-post validation", d),
            (None, Some(d)) => ("preservation hold ends", d),
            (None, None) => ("follow-up task", follow_up.unwrap_or(horizon)),
        };
        let at = crate::metadata::normalize::from_micros(at);
        write_tx(conn, |c| {
            let claimed = diesel::update(
                orders::table
                    .filter(orders::id.eq(&id))
                    .filter(orders::task_reminded_at.is_null()),
            )
            .set(orders::task_reminded_at.eq(Some(now.timestamp_micros())))
            .execute(c)?;
            if claimed == 1 {
                crate::mail::notify(
                    c,
                    mail,
                    crate::mail::Recipients::LegalTeam,
                    &crate::mail::Notice::TaskReminder {
                        order_id: id.clone(),
                        reference: reference.clone(),
                        task: task.to_owned(),
                        due: at,
                    },
                    now,
                );
                queued += 1;
            }
            Ok::<_, OrderError>(())
        })?;
    }
    Ok(queued)
}
