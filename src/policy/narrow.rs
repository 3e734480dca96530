//! Narrowing: people may remove categories, fields or targets from a decision, never add.
//!
//! The request names what to *keep*; anything the decision does not grant cannot be kept, and
//! asking for it is refused with an error naming it, so a widening can never pass silently.

use super::catalogue::{Category, FieldId};
use super::decision::{Decision, FieldStatus, Finding, Outcome, ReasonCode};
use super::order::{Target, TimeWindow};
use serde::{Deserialize, Serialize};

/// A category to keep, with the fields of it to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepCategory {
    /// The category.
    pub category: Category,
    /// The fields to keep (each must be granted in this category by the decision).
    pub fields: Vec<FieldId>,
}

/// What a reviewer keeps of a decision. Anything granted that is not listed is removed; listing
/// anything the decision does not grant is refused. Unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NarrowingRequest {
    /// The categories and fields to keep; every other granted field is removed.
    pub keep: Vec<KeepCategory>,
    /// The targets to keep, each exactly as in the decision; absent or null keeps them all.
    #[serde(default)]
    pub keep_targets: Option<Vec<Target>>,
    /// A shorter period of data to keep, inside the decision's; absent or null keeps it.
    #[serde(default)]
    pub time_window: Option<TimeWindow>,
    /// Why (recorded in the decision).
    pub reason: String,
}

/// Why a narrowing was refused: it would widen the decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NarrowError {
    /// The category is not in the decision.
    #[error("would widen: category `{0}` was not requested or decided")]
    CategoryNotInDecision(Category),
    /// The field is not granted in that category.
    #[error(
        "would widen: field `{field}` in category `{category}` is {status:?} in the decision, not granted"
    )]
    FieldNotGranted {
        /// The category.
        category: Category,
        /// The field.
        field: FieldId,
        /// Its status in the decision (`None`: not part of the category at all).
        status: Option<FieldStatus>,
    },
    /// The target is not in the decision.
    #[error("would widen: target {0} is not in the decision")]
    TargetNotInDecision(String),
    /// The period is not inside the decision's (or the decision has none to narrow).
    #[error("would widen: the time window must lie inside the decision's and end after it starts")]
    TimeWindowNotInside,
}

/// Applies a narrowing. Statuses never change except to `Deny` (reason `NarrowedByReviewer`).
pub fn narrow(decision: &Decision, request: &NarrowingRequest) -> Result<Decision, NarrowError> {
    for keep in &request.keep {
        let Some(category) = decision.category(keep.category) else {
            return Err(NarrowError::CategoryNotInDecision(keep.category));
        };
        for field in &keep.fields {
            let status = category
                .fields
                .iter()
                .find(|f| f.field == *field)
                .map(|f| f.status);
            if !status.is_some_and(FieldStatus::grants) {
                return Err(NarrowError::FieldNotGranted {
                    category: keep.category,
                    field: *field,
                    status,
                });
            }
        }
    }
    if let Some(targets) = &request.keep_targets
        && let Some(extra) = targets.iter().find(|t| !decision.targets.contains(t))
    {
        return Err(NarrowError::TargetNotInDecision(
            serde_json::to_string(extra).unwrap_or_else(|_| format!("{extra:?}")),
        ));
    }

    if let Some(w) = &request.time_window {
        let inside = decision
            .time_window
            .as_ref()
            .is_some_and(|d| d.from <= w.from && w.to <= d.to);
        if !inside || w.to <= w.from {
            return Err(NarrowError::TimeWindowNotInside);
        }
    }

    let mut narrowed = decision.clone();
    if let Some(w) = &request.time_window {
        narrowed.time_window = Some(*w);
    }
    for category in &mut narrowed.categories {
        let kept: Vec<FieldId> = request
            .keep
            .iter()
            .filter(|k| k.category == category.category)
            .flat_map(|k| k.fields.iter().copied())
            .collect();
        let mut removed = false;
        for field in &mut category.fields {
            if field.status.grants() && !kept.contains(&field.field) {
                field.status = FieldStatus::Deny;
                field.reason = ReasonCode::NarrowedByReviewer;
                field.text = format!("Removed by a reviewer: {}", request.reason);
                // The provision that permitted the field is not why it is withheld.
                field.citation = None;
                removed = true;
            }
        }
        if category.status.grants() {
            let granted = category.fields.iter().filter(|f| f.status.grants()).count();
            if let Some(best) = category
                .fields
                .iter()
                .filter(|f| f.status.grants())
                .min_by_key(|f| f.status)
            {
                category.status = best.status;
                if removed {
                    // The caption counts what is still granted, under the remaining grant's
                    // provision.
                    category.reason = best.reason;
                    category.citation = best.citation.clone();
                    category.text = format!(
                        "Granted for {granted} of {} field(s); the rest removed by a reviewer.",
                        category.fields.len()
                    );
                }
            } else {
                category.status = FieldStatus::Deny;
                category.reason = ReasonCode::NarrowedByReviewer;
                category.text = format!("Removed by a reviewer: {}", request.reason);
                category.citation = None;
            }
        }
    }
    if let Some(targets) = &request.keep_targets {
        narrowed.targets.retain(|t| targets.contains(t));
    }
    let anything = narrowed
        .categories
        .iter()
        .any(|c| c.status.grants() || c.status == FieldStatus::NotHeld);
    if (!anything || narrowed.targets.is_empty()) && narrowed.outcome != Outcome::Refused {
        narrowed.outcome = Outcome::Refused;
        narrowed.earliest_release = None;
        narrowed.refusals.push(Finding {
            code: ReasonCode::NarrowedByReviewer,
            text: format!("Narrowed to nothing by a reviewer: {}", request.reason),
            citation: None,
        });
    }
    narrowed.narrowing.push(request.reason.clone());
    Ok(narrowed)
}
