//! The jurisdiction policy engine.
//!
//! Policies are data (`config/policies/<jurisdiction>.toml`, loaded into a [`PolicySet`]); the
//! engine, [`decide`], is a pure function of the order, the registry facts, the receipt time,
//! the clarification pauses, the policy set, the deployment and `now`: no I/O, no clock.
//!
//! Module map:
//! - `order`: the [`Order`] as received (JSON) and the [`RegistryFacts`] about its authorities;
//! - `catalogue`: the releasable fields of the metadata store and their default categories;
//! - `model`: the policy file schema; `load`: files -> [`PolicySet`] (the only I/O here);
//! - `engine`: [`decide`]; `decision`: the [`Decision`] it returns;
//! - `narrow`: [`narrow`], which lets people remove scope but never add it;
//! - `explain`: [`Decision::explain`], the lawyer-readable text.
//!
//! Error policy: loading fails with [`PolicyError`] naming file and line; parsing an order fails
//! with [`OrderError`] naming the field; deciding never fails (a bad order is a refusal with a
//! reason code); narrowing fails with [`NarrowError`] naming what would widen.

mod catalogue;
mod decision;
mod engine;
mod explain;
mod load;
mod model;
mod narrow;
mod order;

pub use crate::deployment::{Deployment, ServiceClass};
pub use catalogue::{CATALOGUE, Category, FieldId, FieldSpec, default_fields, describe};
pub use decision::{
    Binding, CategoryDecision, Clarification, Deadline, Decision, Duty, FieldDecision, FieldStatus,
    Finding, FollowUp, Gag, NoticeDuty, NoticeTiming, Objection, Outcome, Preservation, ReasonCode,
    ReleaseTime, ValidationDue,
};
pub use engine::{decide, required_elements};
pub use load::{BUILTIN, PolicySet};
pub use model::{
    Action, BindingSpec, DeadlineSpec, DutySpec, EmergencyValidationSpec, FollowUpSpec,
    FollowUpWhen, GagEffect, Incomplete, InstrumentSpec, NoticeSpec, Notifier, ObjectionSpec,
    OverlaySpec, PolicyDuration, PolicyFile, PreservationSpec, ReleaseHoldSpec, RouteSpec,
    RuleSpec,
};
pub use narrow::{KeepCategory, NarrowError, NarrowingRequest, narrow};
pub use order::{
    Authority, BasisKind, Emergency, IpTarget, IssuerKind, NonDisclosure, NonDisclosureEnd,
    ORDER_ELEMENTS, Offence, Order, OrderDates, OrderElement, OrderError, ProceduralFramework,
    Purpose, PurposeKind, RegistryFacts, StatutoryBasis, Target, TargetKind, TimeWindow,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A clarification period: the provider asked the authority to clarify the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// When the provider asked.
    pub from: DateTime<Utc>,
    /// When the clarification arrived; `None` while still pending.
    pub to: Option<DateTime<Utc>>,
}

/// Why a policy set failed to load.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file's content is invalid; the message names what.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The file name.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file or the directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no policy file.
    #[error("no policy files (*.toml) in {0}")]
    NoFiles(PathBuf),
}

#[cfg(test)]
mod tests;
