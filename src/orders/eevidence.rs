//! The EU e-Evidence lifecycle of an order that came as an EPOC (production) or EPOC-PR
//! (preservation) task: a pure state machine ([`step`]) and its store (one row per order in
//! `eevidence_orders`, every transition audited in the caller's transaction).
//!
//! The release path asks [`release_gate`] before anything is packaged: an order whose
//! enforcing authority's window still runs, whose data the enforcing authority refused, that
//! awaits a clarification, that was withdrawn, or that names an authority the registry does not
//! know is never released. The tables are those of `EEVIDENCE.md` section 5.
//
// EEVIDENCE.md [T?]: check against TS 104 144 (the state names and the carriers of each event
// come from secondary material; the clocks are the Regulation's, Arts 10-12).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::OrderError;
use crate::audit::{self, Actor, NewEntry};
use crate::db::DbConn;
use crate::db::schema::{eevidence_correspondence, eevidence_orders, eevidence_outbox};

/// Ten days (Art 10(2), (3); Art 12(1)), in microseconds.
pub const TEN_DAYS: i64 = 10 * 24 * 3_600_000_000;
/// Eight hours (Art 10(4)).
pub const EIGHT_HOURS: i64 = 8 * 3_600_000_000;
/// The enforcing authority's window in emergencies (Art 10(4), Art 12(1)): 96 hours.
pub const NINETY_SIX_HOURS: i64 = 96 * 3_600_000_000;
/// Preservation (Art 11(1)): 60 days.
pub const SIXTY_DAYS: i64 = 60 * 24 * 3_600_000_000;
/// One extension of preservation (Art 11(1), Form 6): 30 days.
pub const THIRTY_DAYS: i64 = 30 * 24 * 3_600_000_000;
/// The issuing authority's time to answer a Form 3 asking for clarification (Art 10(6)).
pub const FIVE_DAYS: i64 = 5 * 24 * 3_600_000_000;

/// EPOC or EPOC-PR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// European Production Order Certificate (Form 1).
    Epoc,
    /// European Preservation Order Certificate (Form 2).
    EpocPr,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Epoc => "epoc",
            Kind::EpocPr => "epoc_pr",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Kind::Epoc, Kind::EpocPr]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

macro_rules! states {
    ($($(#[doc = $doc:literal])* $v:ident => $n:literal,)*) => {
        /// Where an e-Evidence order stands (EEVIDENCE.md section 5).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum State { $($(#[doc = $doc])* $v,)* }
        impl State {
            /// Every state.
            pub const ALL: &'static [State] = &[$(State::$v,)*];
            /// The stored name.
            pub fn as_str(self) -> &'static str { match self { $(State::$v => $n,)* } }
            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> { Self::ALL.iter().copied().find(|v| v.as_str() == s) }
        }
    };
}

states! {
    /// EPOC: being worked on; releasable on approval unless the order names an unknown
    /// authority.
    Executing => "executing",
    /// EPOC: notified, not an emergency: nothing is released until the enforcing authority
    /// raises no ground or its 10 days end.
    EaHold => "ea_hold",
    /// EPOC: the enforcing authority raised no ground, or its window ended.
    Releasable => "releasable",
    /// EPOC: Form 3 (incomplete, manifest errors, insufficient information) sent; the clock
    /// is suspended until the issuing authority clarifies.
    Clarifying => "clarifying",
    /// Form 3 (any other reason) sent; awaits the issuing authority's answer.
    Objected => "objected",
    /// The issuing authority maintains the order before a court or enforcement: legal matter.
    Contested => "contested",
    /// EPOC: the enforcing authority refused this task: nothing is ever released.
    RefusedByEa => "refused_by_ea",
    /// EPOC: the outcome was sent.
    Delivered => "delivered",
    /// EPOC: the issuing authority confirmed receipt.
    Closed => "closed",
    /// The issuing authority withdrew the order; work is halted until a person confirms.
    Withdrawing => "withdrawing",
    /// Withdrawal confirmed to the issuing authority.
    Withdrawn => "withdrawn",
    /// EPOC-PR: received, the hold being placed.
    Preserving => "preserving",
    /// EPOC-PR: preserved until `preserve_until`.
    Preserved => "preserved",
    /// EPOC-PR: a subsequent production request (Form 5) keeps the data until the production
    /// order comes.
    HeldForProduction => "held_for_production",
    /// EPOC-PR: ended by the issuing authority or by the linked production order.
    Ended => "ended",
    /// EPOC-PR: the preservation period ran out.
    Expired => "expired",
}

impl State {
    /// Whether nothing more happens to the order.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            State::Closed | State::Withdrawn | State::Ended | State::Expired
        )
    }
}

/// Form 3 reason codes (`Form3Information`, per task).
// EEVIDENCE.md [T?]: check against TS 104 144 (the profile's dictionary spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form3Reason {
    /// The EPOC is incomplete (Art 10(6)).
    Incomplete,
    /// The EPOC contains manifest errors (Art 10(6)).
    ManifestErrors,
    /// Insufficient information to execute (Art 10(6)).
    InsufficientInformation,
    /// The data are not held (Art 10(7)).
    DataNotHeld,
    /// De facto impossibility (Art 10(7)).
    DeFactoImpossibility,
    /// Not issued or validated by a competent authority (Art 10(8)).
    InvalidIssuingAuthority,
    /// The offence is not one the Regulation covers (Art 10(8)).
    OffenceNotCovered,
    /// The service is not covered (Art 10(8)).
    ServiceNotCovered,
    /// Immunities or privileges (Art 10(5)).
    ImmunitiesOrPrivileges,
    /// Conflict with a third country's law (Art 17 reasoned objection).
    ConflictOfLaw,
}

impl Form3Reason {
    /// Every reason, in the order the workspace offers them.
    pub const ALL: &'static [Form3Reason] = &[
        Form3Reason::Incomplete,
        Form3Reason::ManifestErrors,
        Form3Reason::InsufficientInformation,
        Form3Reason::DataNotHeld,
        Form3Reason::DeFactoImpossibility,
        Form3Reason::InvalidIssuingAuthority,
        Form3Reason::OffenceNotCovered,
        Form3Reason::ServiceNotCovered,
        Form3Reason::ImmunitiesOrPrivileges,
        Form3Reason::ConflictOfLaw,
    ];

    /// The profile's code.
    pub fn as_str(self) -> &'static str {
        match self {
            Form3Reason::Incomplete => "Incomplete",
            Form3Reason::ManifestErrors => "ManifestErrors",
            Form3Reason::InsufficientInformation => "InsufficientInformation",
            Form3Reason::DataNotHeld => "DataNotHeld",
            Form3Reason::DeFactoImpossibility => "DeFactoImpossibility",
            Form3Reason::InvalidIssuingAuthority => "InvalidIssuingAuthority",
            Form3Reason::OffenceNotCovered => "OffenceNotCovered",
            Form3Reason::ServiceNotCovered => "ServiceNotCovered",
            Form3Reason::ImmunitiesOrPrivileges => "ImmunitiesOrPrivileges",
            Form3Reason::ConflictOfLaw => "ConflictOfLaw",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Whether the deadline stops running until the issuing authority clarifies (Art 10(6),
    /// 11(4)); the other reasons leave the clock running (the issuing authority may set a new
    /// deadline).
    pub fn suspends_clock(self) -> bool {
        matches!(
            self,
            Form3Reason::Incomplete
                | Form3Reason::ManifestErrors
                | Form3Reason::InsufficientInformation
        )
    }

    /// What sending it does to the deadline, in words (shown before sending).
    pub fn deadline_effect(self) -> &'static str {
        if self.suspends_clock() {
            "The deadline is suspended until the issuing authority clarifies; it has 5 days to answer (Art 10(6))."
        } else {
            match self {
                Form3Reason::DataNotHeld | Form3Reason::DeFactoImpossibility => {
                    "The order cannot be executed: nothing is released; the issuing authority may withdraw it or set a new deadline (Art 10(7))."
                }
                Form3Reason::ConflictOfLaw => {
                    "A reasoned objection (Art 17): the data stay preserved and nothing is released while the issuing authority and a court decide; the deadline keeps running."
                }
                _ => {
                    "Nothing is released until the issuing authority maintains the order, sets a new deadline or withdraws it; the deadline keeps running."
                }
            }
        }
    }
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The enforcing authority decided: `refused` is whether it refused this task
    /// (`FullGroundsForRefusal`, or a `PartialGroundsForRefusal` naming it).
    GroundsForRefusal {
        /// Whether this task is refused.
        refused: bool,
    },
    /// The enforcing authority's window ended without a decision.
    EaWindowEnded,
    /// Writ sent a Form 3 with this reason.
    Form3(Form3Reason),
    /// The issuing authority clarified (correspondence, or a revised order).
    Clarified,
    /// The issuing authority maintains the order after a Form 3.
    Maintained,
    /// The issuing authority set a new deadline (UTC microseconds).
    NewDeadline(i64),
    /// The issuing authority goes to court, or asked the enforcing authority to enforce.
    ProceedingToCourt,
    /// The package was released (two approvals).
    Released,
    /// The issuing authority confirmed receipt of the delivery.
    DeliveryReceived,
    /// The issuing authority reported an error with the delivery.
    DeliveryError,
    /// The issuing authority withdrew the order.
    Withdraw,
    /// A person confirmed that all work on a withdrawn order is halted.
    WithdrawalConfirmed,
    /// EPOC-PR: every target hold resolved to the accounts it keeps (`holds::resolve_pending`).
    Preserved,
    /// EPOC-PR: Form 6, extension by 30 days.
    Extend,
    /// EPOC-PR: Form 5, a subsequent production request was issued.
    SubsequentProduction,
    /// EPOC-PR: the production order that followed was delivered.
    LinkedDelivered,
    /// EPOC-PR: the issuing authority ended preservation.
    EndPreservation,
    /// EPOC-PR: the preservation period ran out.
    PeriodEnded,
}

impl Trigger {
    /// A short name for the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::GroundsForRefusal { refused: true } => "grounds_for_refusal",
            Trigger::GroundsForRefusal { refused: false } => "no_grounds_for_refusal",
            Trigger::EaWindowEnded => "ea_window_ended",
            Trigger::Form3(_) => "form3",
            Trigger::Clarified => "clarified",
            Trigger::Maintained => "maintained",
            Trigger::NewDeadline(_) => "new_deadline",
            Trigger::ProceedingToCourt => "proceeding_to_court",
            Trigger::Released => "released",
            Trigger::DeliveryReceived => "delivery_received",
            Trigger::DeliveryError => "delivery_error",
            Trigger::Withdraw => "withdraw",
            Trigger::WithdrawalConfirmed => "withdrawal_confirmed",
            Trigger::Preserved => "preserved",
            Trigger::Extend => "extend",
            Trigger::SubsequentProduction => "subsequent_production",
            Trigger::LinkedDelivered => "linked_delivered",
            Trigger::EndPreservation => "end_preservation",
            Trigger::PeriodEnded => "period_ended",
        }
    }
}

/// What a transition asks of the world besides the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Send `nonexecution` (Form 3).
    SendNonExecution,
    /// Send `datapreserved`.
    SendDataPreserved,
    /// Send `confirmwithdrawal`.
    SendConfirmWithdrawal,
    /// Send (again) the `outcome` of the released package.
    SendOutcome,
    /// Lift the order's holds.
    LiftHold,
    /// The enforcing authority objected after the data went out (8-hour case): recorded only;
    /// the issuing authority erases or limits use (Art 10(4)).
    RecordLateObjection,
}

/// An order's lifecycle, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// EPOC or EPOC-PR.
    pub kind: Kind,
    /// Its state.
    pub state: State,
    /// The enforcing authority was notified.
    pub notified: bool,
    /// An emergency (8 hours).
    pub emergency: bool,
    /// Received, UTC microseconds.
    pub received_at: i64,
    /// Due, UTC microseconds (EPOC).
    pub due_at: Option<i64>,
    /// End of the enforcing authority's window (notified EPOC).
    pub ea_until: Option<i64>,
    /// The enforcing authority decided.
    pub ea_decided: bool,
    /// The clock is suspended since.
    pub suspended_since: Option<i64>,
    /// End of preservation (EPOC-PR); `None` once held for production.
    pub preserve_until: Option<i64>,
    /// Preservation was extended once.
    pub extended: bool,
}

/// A transition the tables do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{trigger} is not allowed while the order is {state}")]
pub struct Illegal {
    /// The trigger's name.
    pub trigger: &'static str,
    /// The state's name.
    pub state: &'static str,
}

/// The deadline an `EPOCPriority` sets from `received_at` (UTC microseconds): 8 hours for
/// `EightHours`, else 10 days.
pub fn due_from(priority: Option<&str>, emergency: bool, received_at: i64) -> i64 {
    if emergency || priority == Some("EightHours") {
        received_at.saturating_add(EIGHT_HOURS)
    } else {
        received_at.saturating_add(TEN_DAYS)
    }
}

impl Lifecycle {
    /// A new EPOC received at `received_at` (the earlier of Writ's receipt and the message's
    /// timestamp).
    pub fn new_epoc(
        priority: Option<&str>,
        notified: bool,
        emergency: bool,
        received_at: i64,
    ) -> Self {
        let emergency = emergency || priority == Some("EightHours");
        let window = if emergency {
            NINETY_SIX_HOURS
        } else {
            TEN_DAYS
        };
        Lifecycle {
            kind: Kind::Epoc,
            // Emergencies release within 8 hours and only report the objection window.
            state: if notified && !emergency {
                State::EaHold
            } else {
                State::Executing
            },
            notified,
            emergency,
            received_at,
            due_at: Some(due_from(priority, emergency, received_at)),
            ea_until: notified.then(|| received_at.saturating_add(window)),
            ea_decided: false,
            suspended_since: None,
            preserve_until: None,
            extended: false,
        }
    }

    /// A new EPOC-PR received at `received_at`.
    pub fn new_epoc_pr(received_at: i64) -> Self {
        Lifecycle {
            kind: Kind::EpocPr,
            state: State::Preserving,
            notified: false,
            emergency: false,
            received_at,
            due_at: None,
            ea_until: None,
            ea_decided: false,
            suspended_since: None,
            preserve_until: Some(received_at.saturating_add(SIXTY_DAYS)),
            extended: false,
        }
    }

    /// Whether the enforcing authority's window holds release now.
    pub fn ea_pending(&self, now: i64) -> bool {
        !self.emergency && !self.ea_decided && self.ea_until.is_some_and(|u| now < u)
    }

    /// Whether the package may be released now (the release gate's rule, before the
    /// authority check).
    pub fn may_release(&self, now: i64) -> bool {
        self.kind == Kind::Epoc
            && match self.state {
                State::Executing | State::Releasable => !self.ea_pending(now),
                _ => false,
            }
    }

    /// The state an EPOC returns to once a Form 3 is answered.
    fn resume_state(&self, now: i64) -> State {
        if self.ea_pending(now) {
            State::EaHold
        } else if self.notified && !self.emergency {
            State::Releasable
        } else {
            State::Executing
        }
    }
}

fn open_epoc(s: State) -> bool {
    matches!(
        s,
        State::Executing
            | State::EaHold
            | State::Releasable
            | State::Clarifying
            | State::Objected
            | State::Contested
            | State::RefusedByEa
            | State::Delivered
    )
}

fn open_epoc_pr(s: State) -> bool {
    matches!(
        s,
        State::Preserving | State::Preserved | State::HeldForProduction | State::Objected
    )
}

/// The pure transition function: the lifecycle after `trigger` at `now` (UTC microseconds),
/// with what must happen besides, or why the tables forbid it.
pub fn step(
    lc: &Lifecycle,
    trigger: Trigger,
    now: i64,
) -> Result<(Lifecycle, Vec<Effect>), Illegal> {
    use State as S;
    use Trigger as T;
    let illegal = || Illegal {
        trigger: trigger.name(),
        state: lc.state.as_str(),
    };
    let mut next = lc.clone();
    let mut effects = Vec::new();
    match (lc.kind, lc.state, trigger) {
        // ----- EPOC -----
        (Kind::Epoc, S::EaHold, T::GroundsForRefusal { refused }) => {
            next.ea_decided = true;
            next.state = if refused {
                S::RefusedByEa
            } else {
                S::Releasable
            };
        }
        (Kind::Epoc, S::Executing | S::Releasable, T::GroundsForRefusal { refused })
            if lc.notified =>
        {
            next.ea_decided = true;
            if refused {
                // Not delivered yet: refused data never go out (an emergency's objection
                // inside its 96 hours included).
                next.state = S::RefusedByEa;
            }
        }
        (
            Kind::Epoc,
            S::Clarifying | S::Objected | S::Contested,
            T::GroundsForRefusal { refused },
        ) if lc.notified => {
            next.ea_decided = true;
            if refused {
                next.state = S::RefusedByEa;
                next.suspended_since = None;
            }
        }
        (Kind::Epoc, S::Delivered | S::Closed, T::GroundsForRefusal { refused }) if lc.notified => {
            next.ea_decided = true;
            if refused {
                effects.push(Effect::RecordLateObjection);
            }
        }
        (Kind::Epoc, S::EaHold, T::EaWindowEnded) => {
            if lc.ea_until.is_none_or(|u| now < u) {
                return Err(illegal());
            }
            next.state = S::Releasable;
        }
        (Kind::Epoc, S::Executing | S::EaHold | S::Releasable, T::Form3(reason)) => {
            effects.push(Effect::SendNonExecution);
            if reason.suspends_clock() {
                next.state = S::Clarifying;
                next.suspended_since = Some(now);
            } else {
                next.state = S::Objected;
            }
        }
        (Kind::Epoc, S::Clarifying, T::Clarified) => {
            if let (Some(due), Some(since)) = (lc.due_at, lc.suspended_since) {
                next.due_at = Some(due.saturating_add(now.saturating_sub(since).max(0)));
            }
            next.suspended_since = None;
            next.state = lc.resume_state(now);
        }
        (Kind::Epoc, S::Objected, T::Maintained) => next.state = lc.resume_state(now),
        (Kind::Epoc, S::Objected | S::Clarifying, T::NewDeadline(due)) => {
            next.due_at = Some(due);
            next.suspended_since = None;
            next.state = lc.resume_state(now);
        }
        (
            Kind::Epoc,
            S::Executing | S::EaHold | S::Releasable | S::Contested,
            T::NewDeadline(due),
        ) => {
            next.due_at = Some(due);
        }
        (Kind::Epoc, S::Objected, T::ProceedingToCourt) => next.state = S::Contested,
        (Kind::Epoc, S::Executing | S::Releasable, T::Released) if lc.may_release(now) => {
            next.state = S::Delivered;
        }
        (Kind::Epoc, S::Delivered, T::DeliveryReceived) => next.state = S::Closed,
        (Kind::Epoc, S::Delivered, T::DeliveryError) => effects.push(Effect::SendOutcome),
        (Kind::Epoc, s, T::Withdraw) if open_epoc(s) => {
            next.state = S::Withdrawing;
            next.suspended_since = None;
        }
        // ----- EPOC-PR -----
        (Kind::EpocPr, S::Preserving, T::Preserved) => {
            next.state = S::Preserved;
            effects.push(Effect::SendDataPreserved);
        }
        (Kind::EpocPr, S::Preserving, T::Form3(_)) => {
            next.state = S::Objected;
            effects.push(Effect::SendNonExecution);
        }
        (Kind::EpocPr, S::Preserved, T::Extend) => match lc.preserve_until {
            Some(until) if !lc.extended && now < until => {
                next.preserve_until = Some(until.saturating_add(THIRTY_DAYS));
                next.extended = true;
            }
            _ => return Err(illegal()),
        },
        (Kind::EpocPr, S::Preserved, T::SubsequentProduction) => {
            next.state = S::HeldForProduction;
            next.preserve_until = None;
        }
        // Ended before its holds resolved too: nothing was confirmed, nothing is kept.
        (Kind::EpocPr, S::HeldForProduction, T::LinkedDelivered)
        | (Kind::EpocPr, S::Preserving | S::Preserved | S::HeldForProduction, T::EndPreservation) =>
        {
            next.state = S::Ended;
            effects.push(Effect::LiftHold);
        }
        (Kind::EpocPr, S::Preserved, T::PeriodEnded) => {
            if lc.preserve_until.is_none_or(|u| now < u) {
                return Err(illegal());
            }
            next.state = S::Expired;
            effects.push(Effect::LiftHold);
        }
        (Kind::EpocPr, s, T::Withdraw) if open_epoc_pr(s) => next.state = S::Withdrawing,
        // ----- Both -----
        (_, S::Withdrawing, T::WithdrawalConfirmed) => {
            next.state = S::Withdrawn;
            effects.push(Effect::LiftHold);
            effects.push(Effect::SendConfirmWithdrawal);
        }
        _ => return Err(illegal()),
    }
    Ok((next, effects))
}

// ----- The store -----

type Row = (
    String,
    String,
    bool,
    bool,
    i64,
    Option<i64>,
    Option<i64>,
    bool,
    Option<i64>,
    Option<i64>,
    bool,
);

/// The lifecycle of `order_id`, if it is an e-Evidence order.
pub fn load(conn: &mut DbConn, order_id: &str) -> Result<Option<Lifecycle>, OrderError> {
    let row: Option<Row> = eevidence_orders::table
        .find(order_id)
        .select((
            eevidence_orders::kind,
            eevidence_orders::state,
            eevidence_orders::notified,
            eevidence_orders::emergency,
            eevidence_orders::received_at,
            eevidence_orders::due_at,
            eevidence_orders::ea_until,
            eevidence_orders::ea_decided,
            eevidence_orders::suspended_since,
            eevidence_orders::preserve_until,
            eevidence_orders::extended,
        ))
        .first(conn)
        .optional()?;
    row.map(|r| {
        let kind = Kind::parse(&r.0)
            .ok_or_else(|| OrderError::Conflict(format!("unknown e-Evidence kind {}", r.0)))?;
        let state = State::parse(&r.1)
            .ok_or_else(|| OrderError::Conflict(format!("unknown e-Evidence state {}", r.1)))?;
        Ok(Lifecycle {
            kind,
            state,
            notified: r.2,
            emergency: r.3,
            received_at: r.4,
            due_at: r.5,
            ea_until: r.6,
            ea_decided: r.7,
            suspended_since: r.8,
            preserve_until: r.9,
            extended: r.10,
        })
    })
    .transpose()
}

/// Why a person must judge the order first (an authority the registry does not know), if so.
pub fn judgement(conn: &mut DbConn, order_id: &str) -> Result<Option<String>, OrderError> {
    Ok(eevidence_orders::table
        .find(order_id)
        .select(eevidence_orders::judgement)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// What identifies a new e-Evidence order.
#[derive(Debug, Clone)]
pub struct NewLifecycle<'a> {
    /// The order.
    pub order_id: &'a str,
    /// The authority whose message created it.
    pub authority_id: &'a str,
    /// The authorisation object.
    pub authorisation_id: Option<&'a str>,
    /// The task object.
    pub task_id: &'a str,
    /// `EPOCPriority`.
    pub priority: Option<&'a str>,
    /// Why a person must judge it first, if so.
    pub judgement: Option<String>,
    /// The EPOC-PR this EPOC follows, if it names one.
    pub linked_order: Option<String>,
}

/// Stores a new order's lifecycle and audits it, in the caller's transaction.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    new: &NewLifecycle<'_>,
    lc: &Lifecycle,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    diesel::insert_into(eevidence_orders::table)
        .values((
            eevidence_orders::order_id.eq(new.order_id),
            eevidence_orders::authority_id.eq(new.authority_id),
            eevidence_orders::authorisation_id.eq(new.authorisation_id),
            eevidence_orders::task_id.eq(new.task_id),
            eevidence_orders::kind.eq(lc.kind.as_str()),
            eevidence_orders::state.eq(lc.state.as_str()),
            eevidence_orders::priority.eq(new.priority),
            eevidence_orders::notified.eq(lc.notified),
            eevidence_orders::emergency.eq(lc.emergency),
            eevidence_orders::received_at.eq(lc.received_at),
            eevidence_orders::due_at.eq(lc.due_at),
            eevidence_orders::ea_until.eq(lc.ea_until),
            eevidence_orders::ea_decided.eq(lc.ea_decided),
            eevidence_orders::suspended_since.eq(lc.suspended_since),
            eevidence_orders::preserve_until.eq(lc.preserve_until),
            eevidence_orders::extended.eq(lc.extended),
            eevidence_orders::linked_order.eq(&new.linked_order),
            eevidence_orders::judgement.eq(&new.judgement),
            eevidence_orders::updated_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    let mut entry = NewEntry::new(actor.clone(), audit::Event::EevidenceReceived)
        .order(new.order_id)
        .reference("kind", lc.kind.as_str())
        .reference("state", lc.state.as_str())
        .reference("notified", lc.notified)
        .reference("emergency", lc.emergency)
        .reference("task", new.task_id);
    if let Some(due) = lc.due_at {
        entry = entry.reference("due_at", micros_rfc3339(due));
    }
    if let Some(until) = lc.ea_until {
        entry = entry.reference("ea_until", micros_rfc3339(until));
    }
    if new.judgement.is_some() {
        entry = entry.reference("needs_judgement", true);
    }
    audit::append(conn, &entry, now)?;
    Ok(())
}

fn micros_rfc3339(t: i64) -> String {
    crate::metadata::normalize::from_micros(t).to_rfc3339()
}

/// Applies `trigger` to `order_id`'s lifecycle (which the caller has locked with
/// [`super::lock`]), stores it and audits the transition in the caller's transaction. Returns
/// the new lifecycle and its effects; an illegal transition is a conflict naming it.
pub fn apply(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    trigger: Trigger,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Lifecycle, Vec<Effect>), OrderError> {
    let lc = load(conn, order_id)?.ok_or(OrderError::NotFound)?;
    let (next, effects) = step(&lc, trigger, now.timestamp_micros())
        .map_err(|e| OrderError::Conflict(e.to_string()))?;
    diesel::update(eevidence_orders::table.find(order_id))
        .set((
            eevidence_orders::state.eq(next.state.as_str()),
            eevidence_orders::due_at.eq(next.due_at),
            eevidence_orders::ea_decided.eq(next.ea_decided),
            eevidence_orders::suspended_since.eq(next.suspended_since),
            eevidence_orders::preserve_until.eq(next.preserve_until),
            eevidence_orders::extended.eq(next.extended),
            eevidence_orders::updated_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    let mut entry = NewEntry::new(actor.clone(), audit::Event::EevidenceTransition)
        .order(order_id)
        .reference("trigger", trigger.name())
        .reference("from", lc.state.as_str())
        .reference("to", next.state.as_str());
    if let Trigger::Form3(reason) = trigger {
        entry = entry.reference("reason", reason.as_str());
    }
    if next.due_at != lc.due_at
        && let Some(due) = next.due_at
    {
        entry = entry.reference("due_at", micros_rfc3339(due));
    }
    if next.preserve_until != lc.preserve_until {
        entry = entry.reference(
            "preserve_until",
            next.preserve_until
                .map(micros_rfc3339)
                .unwrap_or_else(|| "open".into()),
        );
    }
    if effects.contains(&Effect::RecordLateObjection) {
        entry = entry.reference("late_objection", true);
    }
    audit::append(conn, &entry, now)?;
    if effects.contains(&Effect::LiftHold) {
        super::holds::release(conn, order_id, now.timestamp_micros())?;
    }
    // The production order that followed an EPOC-PR was delivered: the preservation ends.
    if trigger == Trigger::Released {
        let linked: Option<String> = eevidence_orders::table
            .find(order_id)
            .select(eevidence_orders::linked_order)
            .first(conn)?;
        if let Some(pr) = linked
            && load(conn, &pr)?.is_some_and(|l| l.state == State::HeldForProduction)
        {
            super::lock(conn, &pr)?;
            apply(conn, actor, &pr, Trigger::LinkedDelivered, None, now)?;
        }
    }
    let authority_id: String = eevidence_orders::table
        .find(order_id)
        .select(eevidence_orders::authority_id)
        .first(conn)?;
    for effect in &effects {
        let call = match effect {
            Effect::SendNonExecution => Call::NonExecution,
            Effect::SendDataPreserved => Call::DataPreserved,
            Effect::SendConfirmWithdrawal => Call::ConfirmWithdrawal,
            Effect::SendOutcome => Call::Outcome,
            Effect::LiftHold | Effect::RecordLateObjection => continue,
        };
        queue_call(conn, order_id, &authority_id, call, detail, now)?;
    }
    Ok((next, effects))
}

/// A call Writ makes to the national system (EEVIDENCE.md section 2, outbound table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `/eevidence/outcome`: the released package.
    Outcome,
    /// `/eevidence/nonexecution`: Form 3.
    NonExecution,
    /// `/eevidence/datapreserved`.
    DataPreserved,
    /// `/eevidence/confirmwithdrawal`.
    ConfirmWithdrawal,
    /// `/eevidence/correspondence`.
    Correspondence,
    /// `/eevidence/enforcingauthorityId`.
    EnforcingAuthorityId,
    /// `/eevidence/authorities`.
    Authorities,
}

impl Call {
    /// Every call.
    pub const ALL: &'static [Call] = &[
        Call::Outcome,
        Call::NonExecution,
        Call::DataPreserved,
        Call::ConfirmWithdrawal,
        Call::Correspondence,
        Call::EnforcingAuthorityId,
        Call::Authorities,
    ];

    /// The endpoint's last path segment.
    pub fn endpoint(self) -> &'static str {
        match self {
            Call::Outcome => "outcome",
            Call::NonExecution => "nonexecution",
            Call::DataPreserved => "datapreserved",
            Call::ConfirmWithdrawal => "confirmwithdrawal",
            Call::Correspondence => "correspondence",
            Call::EnforcingAuthorityId => "enforcingauthorityId",
            Call::Authorities => "authorities",
        }
    }

    /// Parses an endpoint name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.endpoint() == s)
    }
}

/// Queues a call in the caller's transaction, audited; the sender (`crate::eevidence::outbox`)
/// builds its message when it sends it. `detail` is what the message needs beyond the order
/// (a Form 3's reasons, a correspondence text), as JSON. Returns the call's id.
pub fn queue_call(
    conn: &mut DbConn,
    order_id: &str,
    authority_id: &str,
    call: Call,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, OrderError> {
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(eevidence_outbox::table)
        .values((
            eevidence_outbox::id.eq(&id),
            eevidence_outbox::order_id.eq(Some(order_id)),
            eevidence_outbox::authority_id.eq(authority_id),
            eevidence_outbox::endpoint.eq(call.endpoint()),
            eevidence_outbox::body.eq(detail),
            eevidence_outbox::status.eq("queued"),
            eevidence_outbox::attempts.eq(0),
            eevidence_outbox::next_attempt_at.eq(now.timestamp_micros()),
            eevidence_outbox::created_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    let entry = NewEntry::new(
        Actor::new(crate::audit::ActorKind::System, "eevidence"),
        audit::Event::EevidenceCallQueued,
    )
    .order(order_id)
    .reference("call", id.as_str())
    .reference("endpoint", call.endpoint());
    audit::append(conn, &entry, now)?;
    Ok(id)
}

/// One document of an order's correspondence thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// `in` (from the issuing or enforcing authority) or `out` (from Writ).
    pub direction: String,
    /// `EPOCDocumentType`, or the outbound call it went with.
    pub document_type: String,
    /// The text.
    pub body: String,
    /// When, UTC microseconds.
    pub at: i64,
}

/// Adds a document to the order's thread, audited (its type and direction, not its text), in
/// the caller's transaction.
pub fn record_letter(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    letter: &Letter,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(eevidence_correspondence::table)
        .values((
            eevidence_correspondence::id.eq(&id),
            eevidence_correspondence::order_id.eq(order_id),
            eevidence_correspondence::direction.eq(&letter.direction),
            eevidence_correspondence::document_type.eq(&letter.document_type),
            eevidence_correspondence::body.eq(&letter.body),
            eevidence_correspondence::created_at.eq(letter.at),
        ))
        .execute(conn)?;
    let entry = NewEntry::new(actor.clone(), audit::Event::EevidenceCorrespondence)
        .order(order_id)
        .reference("direction", letter.direction.as_str())
        .reference("document_type", letter.document_type.as_str())
        .reference(
            "body_sha256",
            crate::digest::sha256_hex(letter.body.as_bytes()),
        );
    audit::append(conn, &entry, now)?;
    Ok(())
}

/// The order's correspondence thread, oldest first.
pub fn thread(conn: &mut DbConn, order_id: &str) -> Result<Vec<Letter>, OrderError> {
    let rows: Vec<(String, String, String, i64)> = eevidence_correspondence::table
        .filter(eevidence_correspondence::order_id.eq(order_id))
        .order((
            eevidence_correspondence::created_at,
            eevidence_correspondence::id,
        ))
        .select((
            eevidence_correspondence::direction,
            eevidence_correspondence::document_type,
            eevidence_correspondence::body,
            eevidence_correspondence::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(direction, document_type, body, at)| Letter {
            direction,
            document_type,
            body,
            at,
        })
        .collect())
}

/// The release gate, inside the release's transaction (the order locked): `Ok` for an order
/// that is not an e-Evidence order, or one whose lifecycle allows release now; else a
/// conflict saying why. An enforcing authority's window that has ended is recorded here as
/// the transition it is.
pub fn release_gate(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let Some(mut lc) = load(conn, order_id)? else {
        return Ok(());
    };
    if let Some(why) = judgement(conn, order_id)? {
        return Err(OrderError::Conflict(format!(
            "a person must judge this e-Evidence order first: {why}"
        )));
    }
    let at = now.timestamp_micros();
    if lc.state == State::EaHold && lc.ea_until.is_some_and(|u| at >= u) {
        lc = apply(conn, actor, order_id, Trigger::EaWindowEnded, None, now)?.0;
    }
    if lc.may_release(at) {
        return Ok(());
    }
    Err(OrderError::Conflict(match lc.state {
        State::EaHold => format!(
            "the enforcing authority's review window runs until {}; nothing is released before it ends or the authority raises no ground for refusal",
            lc.ea_until.map(micros_rfc3339).unwrap_or_default()
        ),
        State::RefusedByEa => {
            "the enforcing authority refused this order's data: it is never released".into()
        }
        State::Clarifying => "a Form 3 awaits the issuing authority's clarification".into(),
        s => format!(
            "the e-Evidence order is {}; it cannot be released",
            s.as_str()
        ),
    }))
}

/// Clears the authority judgement flag after a person checked the authorities, audited.
pub fn clear_judgement(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    crate::db::write_tx(conn, |conn| {
        super::lock(conn, order_id)?;
        let n = diesel::update(
            eevidence_orders::table
                .find(order_id)
                .filter(eevidence_orders::judgement.is_not_null()),
        )
        .set((
            eevidence_orders::judgement.eq(None::<String>),
            eevidence_orders::updated_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(OrderError::Conflict(
                "the order awaits no judgement of its authorities".into(),
            ));
        }
        let entry = NewEntry::new(actor.clone(), audit::Event::EevidenceAuthoritiesConfirmed)
            .order(order_id);
        audit::append(conn, &entry, now)?;
        Ok(())
    })
}

/// The time left until `until`, in words (for badges).
pub fn time_left(until: i64, now: DateTime<Utc>) -> String {
    let left = Duration::microseconds(until.saturating_sub(now.timestamp_micros()));
    if left <= Duration::zero() {
        return "ended".into();
    }
    let days = left.num_days();
    let hours = left.num_hours() - days * 24;
    if days > 0 {
        format!("{days} d {hours} h")
    } else {
        format!(
            "{hours} h {} min",
            left.num_minutes() - left.num_hours() * 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn epoc(notified: bool, priority: &str) -> Lifecycle {
        Lifecycle::new_epoc(Some(priority), notified, false, 0)
    }

    fn at(lc: &Lifecycle, state: State) -> Lifecycle {
        Lifecycle {
            state,
            ..lc.clone()
        }
    }

    #[test]
    fn priorities_set_the_deadline_and_the_ea_window() {
        let n = epoc(false, "TenDaysASAP");
        assert_eq!(n.state, State::Executing);
        assert_eq!(n.due_at, Some(TEN_DAYS));
        assert_eq!(n.ea_until, None);
        assert!(n.may_release(0));
        let ea = epoc(true, "TenDaysSubjectToEA");
        assert_eq!(ea.state, State::EaHold);
        assert_eq!(ea.ea_until, Some(TEN_DAYS));
        assert!(!ea.may_release(TEN_DAYS - 1));
        let e = epoc(true, "EightHours");
        assert!(e.emergency);
        assert_eq!(e.state, State::Executing);
        assert_eq!(e.due_at, Some(8 * H));
        assert_eq!(e.ea_until, Some(96 * H));
        assert!(e.may_release(0), "an emergency releases within 8 h");
    }

    #[test]
    fn every_epoc_row() {
        let ea = epoc(true, "TenDaysSubjectToEA");
        // EA hold: no grounds -> releasable; full -> refused; window end -> releasable.
        let (n, _) = step(&ea, Trigger::GroundsForRefusal { refused: false }, H).unwrap();
        assert_eq!(n.state, State::Releasable);
        assert!(n.may_release(H));
        let (n, _) = step(&ea, Trigger::GroundsForRefusal { refused: true }, H).unwrap();
        assert_eq!(n.state, State::RefusedByEa);
        assert!(
            !n.may_release(TEN_DAYS * 5),
            "day 10 never releases refused data"
        );
        assert!(step(&n, Trigger::EaWindowEnded, TEN_DAYS).is_err());
        assert!(step(&n, Trigger::Released, TEN_DAYS).is_err());
        assert!(step(&ea, Trigger::EaWindowEnded, TEN_DAYS - 1).is_err());
        let (n, _) = step(&ea, Trigger::EaWindowEnded, TEN_DAYS).unwrap();
        assert_eq!(n.state, State::Releasable);
        // Form 3: suspending reasons -> clarifying, others -> objected, both send Form 3.
        let ex = epoc(false, "TenDaysASAP");
        let (c, eff) = step(&ex, Trigger::Form3(Form3Reason::Incomplete), 2 * H).unwrap();
        assert_eq!(c.state, State::Clarifying);
        assert_eq!(eff, vec![Effect::SendNonExecution]);
        assert!(!c.may_release(2 * H));
        let (r, _) = step(&c, Trigger::Clarified, 50 * H).unwrap();
        assert_eq!(r.state, State::Executing);
        assert_eq!(
            r.due_at,
            Some(TEN_DAYS + 48 * H),
            "48 suspended hours added"
        );
        let (o, eff) = step(&ex, Trigger::Form3(Form3Reason::DataNotHeld), H).unwrap();
        assert_eq!(o.state, State::Objected);
        assert_eq!(eff, vec![Effect::SendNonExecution]);
        assert_eq!(o.due_at, ex.due_at, "other reasons leave the clock running");
        let (m, _) = step(&o, Trigger::Maintained, H).unwrap();
        assert_eq!(m.state, State::Executing);
        let (d, _) = step(&o, Trigger::NewDeadline(99 * H), H).unwrap();
        assert_eq!((d.state, d.due_at), (State::Executing, Some(99 * H)));
        let (ct, _) = step(&o, Trigger::ProceedingToCourt, H).unwrap();
        assert_eq!(ct.state, State::Contested);
        assert!(!ct.may_release(H));
        // Release, delivery status.
        let (dl, _) = step(&ex, Trigger::Released, H).unwrap();
        assert_eq!(dl.state, State::Delivered);
        let (cl, _) = step(&dl, Trigger::DeliveryReceived, H).unwrap();
        assert_eq!(cl.state, State::Closed);
        let (again, eff) = step(&dl, Trigger::DeliveryError, H).unwrap();
        assert_eq!(
            (again.state, eff),
            (State::Delivered, vec![Effect::SendOutcome])
        );
        // Withdrawal from every open state, then confirmation.
        for s in [
            State::Executing,
            State::EaHold,
            State::Releasable,
            State::Clarifying,
            State::Objected,
            State::Contested,
            State::RefusedByEa,
            State::Delivered,
        ] {
            let (w, _) = step(&at(&ea, s), Trigger::Withdraw, H).unwrap();
            assert_eq!(w.state, State::Withdrawing, "{s:?}");
            assert!(!w.may_release(TEN_DAYS * 2));
        }
        let (w, eff) = step(
            &at(&ea, State::Withdrawing),
            Trigger::WithdrawalConfirmed,
            H,
        )
        .unwrap();
        assert_eq!(w.state, State::Withdrawn);
        assert_eq!(eff, vec![Effect::LiftHold, Effect::SendConfirmWithdrawal]);
    }

    #[test]
    fn an_emergency_releases_at_once_and_a_late_objection_is_only_recorded() {
        let e = epoc(true, "EightHours");
        let (dl, _) = step(&e, Trigger::Released, H).unwrap();
        let (after, eff) = step(&dl, Trigger::GroundsForRefusal { refused: true }, 20 * H).unwrap();
        assert_eq!(after.state, State::Delivered);
        assert_eq!(eff, vec![Effect::RecordLateObjection]);
        // Objected before the release: refused data never go out.
        let (r, _) = step(&e, Trigger::GroundsForRefusal { refused: true }, H).unwrap();
        assert_eq!(r.state, State::RefusedByEa);
        assert!(!r.may_release(H));
    }

    #[test]
    fn every_epoc_pr_row() {
        let p = Lifecycle::new_epoc_pr(0);
        assert_eq!(p.preserve_until, Some(SIXTY_DAYS));
        assert!(!p.may_release(0), "a preservation order releases nothing");
        let (kept, eff) = step(&p, Trigger::Preserved, H).unwrap();
        assert_eq!(
            (kept.state, eff),
            (State::Preserved, vec![Effect::SendDataPreserved])
        );
        let (o, eff) = step(&p, Trigger::Form3(Form3Reason::DataNotHeld), H).unwrap();
        assert_eq!(
            (o.state, eff),
            (State::Objected, vec![Effect::SendNonExecution])
        );
        let (x, _) = step(&kept, Trigger::Extend, H).unwrap();
        assert_eq!(x.preserve_until, Some(SIXTY_DAYS + THIRTY_DAYS));
        assert!(
            step(&x, Trigger::Extend, 2 * H).is_err(),
            "extended once only"
        );
        assert!(
            step(&kept, Trigger::Extend, SIXTY_DAYS).is_err(),
            "only within the period"
        );
        let (f5, _) = step(&kept, Trigger::SubsequentProduction, H).unwrap();
        assert_eq!(
            (f5.state, f5.preserve_until),
            (State::HeldForProduction, None)
        );
        assert!(step(&f5, Trigger::PeriodEnded, SIXTY_DAYS * 3).is_err());
        let (e, eff) = step(&f5, Trigger::LinkedDelivered, H).unwrap();
        assert_eq!((e.state, eff), (State::Ended, vec![Effect::LiftHold]));
        let (e, _) = step(&kept, Trigger::EndPreservation, H).unwrap();
        assert_eq!(e.state, State::Ended);
        let (e, _) = step(&f5, Trigger::EndPreservation, H).unwrap();
        assert_eq!(e.state, State::Ended);
        assert!(step(&kept, Trigger::PeriodEnded, SIXTY_DAYS - 1).is_err());
        let (lapsed, eff) = step(&kept, Trigger::PeriodEnded, SIXTY_DAYS).unwrap();
        assert_eq!(
            (lapsed.state, eff),
            (State::Expired, vec![Effect::LiftHold])
        );
        let (lapsed, _) = step(&x, Trigger::PeriodEnded, SIXTY_DAYS + THIRTY_DAYS).unwrap();
        assert_eq!(lapsed.state, State::Expired);
        for s in [
            State::Preserving,
            State::Preserved,
            State::HeldForProduction,
        ] {
            let (w, _) = step(&at(&p, s), Trigger::Withdraw, H).unwrap();
            assert_eq!(w.state, State::Withdrawing);
        }
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let ea = epoc(true, "TenDaysSubjectToEA");
        let pr = Lifecycle::new_epoc_pr(0);
        let all = [
            Trigger::GroundsForRefusal { refused: true },
            Trigger::EaWindowEnded,
            Trigger::Form3(Form3Reason::Incomplete),
            Trigger::Clarified,
            Trigger::Maintained,
            Trigger::NewDeadline(H),
            Trigger::ProceedingToCourt,
            Trigger::Released,
            Trigger::DeliveryReceived,
            Trigger::DeliveryError,
            Trigger::Withdraw,
            Trigger::WithdrawalConfirmed,
            Trigger::Preserved,
            Trigger::Extend,
            Trigger::SubsequentProduction,
            Trigger::LinkedDelivered,
            Trigger::EndPreservation,
            Trigger::PeriodEnded,
        ];
        // Closed states take nothing.
        for s in [
            State::Closed,
            State::Withdrawn,
            State::Ended,
            State::Expired,
        ] {
            for t in all {
                let base = if matches!(s, State::Ended | State::Expired) {
                    &pr
                } else {
                    &ea
                };
                let r = step(&at(base, s), t, TEN_DAYS * 20);
                // A late objection after closing is recorded, nothing else moves.
                if s == State::Closed && matches!(t, Trigger::GroundsForRefusal { .. }) {
                    assert_eq!(r.unwrap().0.state, State::Closed);
                } else {
                    assert!(r.is_err(), "{s:?} {t:?}");
                }
            }
        }
        // EPOC-only triggers on an EPOC-PR and the reverse.
        for t in [
            Trigger::Released,
            Trigger::EaWindowEnded,
            Trigger::Clarified,
        ] {
            assert!(step(&pr, t, H).is_err(), "{t:?}");
        }
        for t in [
            Trigger::Preserved,
            Trigger::Extend,
            Trigger::SubsequentProduction,
        ] {
            assert!(step(&ea, t, H).is_err(), "{t:?}");
        }
        // Release during the EA hold, and of refused or withdrawn orders.
        assert!(step(&ea, Trigger::Released, H).is_err());
        assert!(
            step(
                &at(&ea, State::Withdrawing),
                Trigger::Released,
                TEN_DAYS * 2
            )
            .is_err()
        );
        // Grounds for refusal on an order nobody notified.
        let plain = epoc(false, "TenDaysASAP");
        assert!(step(&plain, Trigger::GroundsForRefusal { refused: true }, H).is_err());
        assert_eq!(Form3Reason::ALL.len(), 10);
        for r in Form3Reason::ALL {
            assert_eq!(Form3Reason::parse(r.as_str()), Some(*r));
        }
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(*s));
        }
    }
}

/// Sends a Form 3 for the order (one task), from the workspace: the lifecycle moves (a
/// suspending reason stops the clock) and `nonexecution` is queued with the reason and the
/// explanation, in one transaction.
pub fn send_form3(
    conn: &mut DbConn,
    staff: &crate::staff::Staff,
    order_id: &str,
    reason: Form3Reason,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Lifecycle, OrderError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(OrderError::Conflict(
            "the Form 3 explanation must be 1 to 4000 characters".into(),
        ));
    }
    let detail = serde_json::json!({ "reason": reason.as_str(), "text": text }).to_string();
    crate::db::write_tx(conn, |c| {
        super::lock(c, order_id)?;
        let (lc, _) = apply(
            c,
            &staff.actor(),
            order_id,
            Trigger::Form3(reason),
            Some(&detail),
            now,
        )?;
        record_letter(
            c,
            &staff.actor(),
            order_id,
            &Letter {
                direction: "out".into(),
                document_type: format!("Form3:{}", reason.as_str()),
                body: text.to_owned(),
                at: now.timestamp_micros(),
            },
            now,
        )?;
        Ok(lc)
    })
}

/// A person confirms that all work on a withdrawn order is halted: the order is withdrawn,
/// its holds end and `confirmwithdrawal` is queued, in one transaction.
pub fn confirm_withdrawal(
    conn: &mut DbConn,
    staff: &crate::staff::Staff,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    crate::db::write_tx(conn, |c| {
        super::lock(c, order_id)?;
        apply(
            c,
            &staff.actor(),
            order_id,
            Trigger::WithdrawalConfirmed,
            None,
            now,
        )?;
        let status: String = crate::db::schema::orders::table
            .find(order_id)
            .select(crate::db::schema::orders::status)
            .first(c)?;
        if !super::OrderStatus::parse(&status).is_some_and(|s| s.is_closed()) {
            diesel::update(crate::db::schema::orders::table.find(order_id))
                .set((
                    crate::db::schema::orders::status.eq(super::OrderStatus::Withdrawn.as_str()),
                    crate::db::schema::orders::updated_at.eq(now.timestamp_micros()),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// What the workspace shows of an e-Evidence order: its lifecycle and badges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badges {
    /// The lifecycle state.
    pub state: &'static str,
    /// The badges, each a short text.
    pub badges: Vec<String>,
}

/// The workspace badges of an order ("EA review window", "GFR hold", "partial GFR",
/// "awaiting clarification", "preservation ends in N days", "authority check").
pub fn badges(
    conn: &mut DbConn,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Badges>, OrderError> {
    let Some(lc) = load(conn, order_id)? else {
        return Ok(None);
    };
    let at = now.timestamp_micros();
    let mut out = Vec::new();
    if lc.ea_pending(at)
        && let Some(until) = lc.ea_until
    {
        out.push(format!("EA review window: {} left", time_left(until, now)));
    } else if lc.emergency
        && let Some(until) = lc.ea_until.filter(|u| at < *u)
    {
        out.push(format!(
            "EA objection window (emergency, reported only): {} left",
            time_left(until, now)
        ));
    }
    if lc.state == State::RefusedByEa {
        // Partial when a sibling task of the same authorisation is not refused.
        let auth: Option<String> = eevidence_orders::table
            .find(order_id)
            .select(eevidence_orders::authorisation_id)
            .first(conn)?;
        let siblings: Vec<String> = eevidence_orders::table
            .filter(eevidence_orders::authorisation_id.eq(auth))
            .select(eevidence_orders::state)
            .load(conn)?;
        if siblings.iter().any(|s| s != State::RefusedByEa.as_str()) {
            out.push("partial GFR: this task is refused".into());
        } else {
            out.push("GFR hold: refused by the enforcing authority".into());
        }
    }
    if lc.state == State::Clarifying {
        out.push("awaiting clarification (clock suspended)".into());
    }
    if let Some(until) = lc
        .preserve_until
        .filter(|_| lc.kind == Kind::EpocPr && !lc.state.is_closed())
    {
        let days = (until.saturating_sub(at)).max(0) / (24 * 3_600_000_000);
        out.push(format!("preservation ends in {days} days"));
    }
    if judgement(conn, order_id)?.is_some() {
        out.push("authority check: unknown authority".into());
    }
    Ok(Some(Badges {
        state: lc.state.as_str(),
        badges: out,
    }))
}

/// What an EPOC-PR's holds keep, for `datapreserved` (EEVIDENCE.md section 2: "reasons per
/// category not kept"): the categories held, and each category asked for that the store cannot
/// hold, with the reason.
// EEVIDENCE.md [T?]: check against TS 104 144 (how the profile carries the categories not kept
// is not public; Writ writes them in NotificationDetails)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreservationReport {
    /// The categories the holds keep (`subscriber`, `identification`, `ip_history`).
    pub preserved: Vec<String>,
    /// The categories asked for and not kept.
    pub not_kept: Vec<NotKept>,
}

/// A category asked for that the store cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotKept {
    /// The category.
    pub category: String,
    /// Why it is not kept.
    pub reason: String,
}

impl PreservationReport {
    /// The report in words, for `NotificationDetails`.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Preserved: {}.",
            if self.preserved.is_empty() {
                "nothing".to_owned()
            } else {
                self.preserved.join(", ")
            }
        );
        for n in &self.not_kept {
            out.push_str(&format!(" Not kept: {} ({}).", n.category, n.reason));
        }
        out
    }
}

/// The categories an order asks for (its current version's order JSON) against those its
/// target holds keep.
fn preservation_report(
    conn: &mut DbConn,
    order_id: &str,
) -> Result<PreservationReport, OrderError> {
    use crate::db::schema::{order_versions, target_holds};
    let json: Option<String> = order_versions::table
        .filter(order_versions::order_id.eq(order_id))
        .order(order_versions::version.desc())
        .select(order_versions::order_json)
        .first(conn)
        .optional()?;
    let asked: Vec<String> = json
        .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
        .and_then(|v| {
            v.get("categories").and_then(|c| c.as_array()).map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    let held: Vec<String> = target_holds::table
        .filter(target_holds::order_id.eq(order_id))
        .select(target_holds::categories)
        .load(conn)?;
    let mut preserved: Vec<String> = held
        .iter()
        .flat_map(|c| c.split(','))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    preserved.sort_unstable();
    preserved.dedup();
    let mut not_kept: Vec<NotKept> = asked
        .iter()
        .filter(|c| !preserved.contains(c))
        .map(|c| NotKept {
            category: c.clone(),
            reason: if c == crate::policy::Category::Content.as_str() {
                "the provider's store holds no content".into()
            } else {
                "no target of the order could be held".into()
            },
        })
        .collect();
    not_kept.sort_by(|a, b| a.category.cmp(&b.category));
    not_kept.dedup();
    Ok(PreservationReport {
        preserved,
        not_kept,
    })
}

/// Called, in a transaction of its own, after the hold resolver (`holds::resolve_pending`)
/// committed the resolution of some of `order_id`'s target holds, and by
/// [`confirm_preserved`]: when the order is an EPOC-PR still preserving and none of its target
/// holds is left unresolved, the data are preserved, and the transition queues `datapreserved`
/// with the categories not kept, in the caller's transaction. Returns whether it moved.
///
/// The order's row lock is taken before the count, and before the transition's audit entry, as
/// every transition takes them: of two resolvers that each resolved one of its holds, the second
/// to take the lock sees the first's resolution committed (PostgreSQL's read committed) and the
/// order no longer preserving, so exactly one of them confirms; an `endpreservation` or a
/// withdrawal holding the lock is waited for, and its order then is not confirmed.
pub fn holds_resolved(
    conn: &mut DbConn,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, OrderError> {
    use crate::db::schema::target_holds;
    let preserving = |conn: &mut DbConn| -> Result<bool, OrderError> {
        Ok(load(conn, order_id)?
            .is_some_and(|lc| lc.kind == Kind::EpocPr && lc.state == State::Preserving))
    };
    if !preserving(conn)? {
        return Ok(false);
    }
    super::lock(conn, order_id)?;
    let pending: i64 = target_holds::table
        .filter(target_holds::order_id.eq(order_id))
        .filter(target_holds::resolved_at.is_null())
        .filter(target_holds::released_at.is_null())
        .count()
        .get_result(conn)?;
    if pending > 0 || !preserving(conn)? {
        return Ok(false);
    }
    let report = preservation_report(conn, order_id)?;
    let detail = serde_json::to_string(&report).unwrap_or_default();
    apply(
        conn,
        &Actor::new(crate::audit::ActorKind::System, "holds"),
        order_id,
        Trigger::Preserved,
        Some(&detail),
        now,
    )?;
    Ok(true)
}

/// Confirms every EPOC-PR still preserving whose target holds are all resolved
/// ([`holds_resolved`], each order in a transaction of its own): what the hold resolver does
/// right after it commits, run by the background jobs for an order whose confirmation a stopped
/// process did not make. Returns how many were confirmed.
pub fn confirm_preserved(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, OrderError> {
    use crate::db::schema::target_holds;
    let preserving: Vec<String> = eevidence_orders::table
        .filter(eevidence_orders::kind.eq(Kind::EpocPr.as_str()))
        .filter(eevidence_orders::state.eq(State::Preserving.as_str()))
        .order(eevidence_orders::order_id)
        .select(eevidence_orders::order_id)
        .load(conn)?;
    if preserving.is_empty() {
        return Ok(0);
    }
    let waiting: std::collections::HashSet<String> = target_holds::table
        .filter(target_holds::order_id.eq_any(&preserving))
        .filter(target_holds::resolved_at.is_null())
        .filter(target_holds::released_at.is_null())
        .select(target_holds::order_id)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut confirmed = 0;
    for order_id in preserving.iter().filter(|o| !waiting.contains(*o)) {
        if crate::db::write_tx(conn, |c| holds_resolved(c, order_id, now))? {
            confirmed += 1;
        }
    }
    Ok(confirmed)
}

/// Records the order's language (ISO 639-1, as the EPOC gives it), in the caller's
/// transaction; Form 3 is rendered in it where a template exists.
pub fn set_language(
    conn: &mut DbConn,
    order_id: &str,
    language: Option<&str>,
) -> Result<(), OrderError> {
    diesel::update(eevidence_orders::table.find(order_id))
        .set(eevidence_orders::language.eq(language))
        .execute(conn)?;
    Ok(())
}

/// The order's language as the EPOC gave it, if it gave one.
pub fn language(conn: &mut DbConn, order_id: &str) -> Result<Option<String>, OrderError> {
    Ok(eevidence_orders::table
        .find(order_id)
        .select(eevidence_orders::language)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}
