//! The `Decision`: what the engine concluded about one order, stored with the order.
//!
//! A decision is a ceiling: people may narrow it (see `narrow`), never widen it.

use super::catalogue::{Category, FieldId};
use super::model::{Action, Notifier};
use super::order::{
    NonDisclosureEnd, Target, TargetKind, date_time_schema, tagged_variant, unit_variant,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

/// The overall outcome.
///
/// `acceptable_for_review`: the order may go to the normal two-person review for release of the
/// granted fields; `needs_human_judgement`: something needs a person's legal judgement first
/// (see `review_flags`); `clarification_needed`: the order is incomplete and the provider asks
/// the authority to complete it (see `clarification`); `refused`: nothing may be released (see
/// `refusals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The order may go to the normal two-person review for release of the granted fields.
    AcceptableForReview,
    /// Something needs a person's legal judgement first (voluntary disclosure, unproven
    /// validation, a claimed issuer kind the registry contradicts, an ambiguous IP target).
    NeedsHumanJudgement,
    /// The order is incomplete or erroneous: the provider asks the authority to clarify it
    /// (see `clarification`, which lists the missing elements); nothing is released meanwhile.
    ClarificationNeeded,
    /// Nothing may be released; see `refusals`.
    Refused,
}

/// The status of one category or field.
///
/// `permit`: may be released (after the usual approvals); `permit_pending_validation_check`:
/// would be permitted once a person confirms the claimed validation against the signed
/// document; `preserve`: must be preserved, never released under this order; `deny`: may not
/// be released; `not_held`: Writ does not hold such data (message content).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    /// May be released (after the usual approvals).
    Permit,
    /// Would be permitted if the claimed validation is confirmed by a person against the signed
    /// document (the registry does not prove it by the validator's own signature).
    PermitPendingValidationCheck,
    /// Must be preserved; never released under this order.
    Preserve,
    /// May not be released.
    Deny,
    /// Writ does not hold such data (content): the truthful answer, whatever the law allows.
    NotHeld,
}

impl FieldStatus {
    /// Whether the status lets the data leave Writ (now or after a check).
    pub fn releases(self) -> bool {
        matches!(
            self,
            FieldStatus::Permit | FieldStatus::PermitPendingValidationCheck
        )
    }

    /// Whether the status grants anything (release or hold).
    pub fn grants(self) -> bool {
        self.releases() || self == FieldStatus::Preserve
    }
}

/// Why: one code per distinct reason, so that refusals can be counted and tested. Each finding
/// carrying a code also carries a plain-language `text`; new codes may be added.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Granted: the registered issuer (or proven validation) is entitled and conditions hold.
    Permitted,
    /// Granted in an emergency without prior validation; validation must follow in time.
    PermittedEmergencyWithoutValidation,
    /// Granted only if a person confirms the claimed validation against the signed document.
    PendingValidationCheck,
    /// A preservation order: hold, never release.
    PreserveOnly,
    /// Writ holds no such data.
    NotHeld,
    /// The instrument's jurisdiction has no policy file.
    UnknownJurisdiction,
    /// The jurisdiction is known but the instrument is not.
    UnknownInstrument,
    /// The order lacks elements the instrument (or an overlay) requires.
    MissingRequiredElements,
    /// The sender is not in the authority registry.
    IssuerNotRegistered,
    /// The order's own validity has ended.
    OrderExpired,
    /// An emergency order issued without validation was not validated in time.
    EmergencyValidationOverdue,
    /// The preservation period of a preservation order has run out.
    PreservationPeriodEnded,
    /// Nothing requested can be granted.
    NothingPermitted,
    /// The instrument does not reach this category at all.
    CategoryNotReached,
    /// The instrument does not reach this field in this category.
    FieldNotReached,
    /// The registered issuer kind may not use the instrument for this.
    IssuerKindNotEntitled,
    /// The issuer needs a validation the order does not claim.
    ValidationRequired,
    /// The (registered or claimed) validator kind may not validate this.
    ValidatorNotEntitled,
    /// A threshold applies but the order states no offence.
    OffenceNotStated,
    /// The offence is below the threshold and not a listed offence.
    OffenceBelowThreshold,
    /// Only available in an emergency.
    EmergencyRequired,
    /// Only for offences committed over an electronic network.
    NetworkOffenceRequired,
    /// Only when the order's sole aim is identification.
    SoleAimIdentificationRequired,
    /// A reviewer removed it when narrowing the decision.
    NarrowedByReviewer,
    /// The instrument does not bind the provider from its establishment: voluntary disclosure.
    VoluntaryDisclosure,
    /// The order claims an issuer kind the registry contradicts.
    ClaimedIssuerKindMismatch,
    /// The order claims a validator kind the registry contradicts.
    ClaimedValidatorKindMismatch,
    /// An IPv4 target without a port may match many users behind carrier-grade NAT.
    AmbiguousIpTarget,
    /// The order's time window ends before it starts.
    InvalidTimeWindow,
    /// The registry does not record the issuing authority's country.
    IssuerCountryUnknown,
    /// The registered issuing authority's country cannot issue under this instrument's law.
    IssuerCountryMismatch,
    /// The order names a validator the registry does not know.
    ValidatorNotRegistered,
    /// Granted only as an emergency without prior validation: the route forged requests take.
    EmergencyWithoutValidation,
    /// One duty forbids the provider to inform the user while another requires it.
    NoticeConflict,
    /// The order states no purpose, or one the rule does not serve.
    PurposeNotCovered,
    /// The order states no procedural framework, or one in which this is not open.
    FrameworkNotCovered,
    /// A target is of a kind this rule does not take (e.g. an IP address at a time).
    TargetKindNotCovered,
    /// The order states no statutory basis of a kind the rule takes.
    StatutoryBasisRequired,
    /// The stated statutory basis is of a kind a person must judge.
    StatutoryBasisToJudge,
    /// The authorisation has lapsed (e.g. an urgent UK authorisation after 3 days).
    AuthorisationLapsed,
    /// The order relies on a basis for another classification of the provider.
    WrongServiceClass,
    /// The deployment does not say how the provider is classified, which picks the basis.
    ServiceClassUnset,
    /// The law allows no further renewal of a preservation for these targets.
    PreservationRenewalsExhausted,
}

/// A reason with its text and legal basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// The reason code.
    pub code: ReasonCode,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis, where there is one (else null).
    #[schema(required = true)]
    pub citation: Option<String>,
}

/// The decision on one field within a requested category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldDecision {
    /// The field.
    pub field: FieldId,
    /// What may happen to it.
    pub status: FieldStatus,
    /// Why.
    pub reason: ReasonCode,
    /// Plain-language explanation.
    pub text: String,
    /// The rule's legal basis, where there is one (else null).
    #[schema(required = true)]
    pub citation: Option<String>,
    /// The kinds of target the grant covers, where the rule that grants it reaches only some
    /// (absent: every target of the order). Records found from a target of another kind are
    /// not released under this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_kinds: Option<Vec<TargetKind>>,
}

/// The decision on one requested category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryDecision {
    /// The category, as requested.
    pub category: Category,
    /// The best status among its fields (or `not_held` / `deny` for the category as a whole).
    pub status: FieldStatus,
    /// Why.
    pub reason: ReasonCode,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis, where there is one (else null).
    #[schema(required = true)]
    pub citation: Option<String>,
    /// Every field this category covers under the instrument, each decided.
    pub fields: Vec<FieldDecision>,
}

/// The reply deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deadline {
    /// When the reply is due (UTC); null when no date applies or while suspended.
    #[schema(required = true)]
    pub due: Option<DateTime<Utc>>,
    /// Whether a clarification request is pending and has stopped the clock.
    pub suspended: bool,
    /// Time left on the clock while suspended, in seconds; null unless suspended.
    #[schema(required = true)]
    pub remaining_seconds: Option<i64>,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis, where there is one (else null).
    #[schema(required = true)]
    pub citation: Option<String>,
}

/// The earliest time the granted data may be released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseTime {
    /// Not before this time (UTC).
    pub earliest: DateTime<Utc>,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis, where there is one (else null).
    #[schema(required = true)]
    pub citation: Option<String>,
}

/// When an emergency order issued without prior validation must be validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationDue {
    /// The validation is due by this time (UTC).
    pub due: DateTime<Utc>,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// When the provider may or must tell the user: one of the strings `"not_applicable"`,
/// `"when_giving_effect"`, `"when_gag_lifted"`, `"never"`, or `{"not_before": "<date-time>"}`.
///
/// The JSON schema is written by hand ([`PartialSchema`] below) so that the `not_before` object
/// is closed, as serde makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeTiming {
    /// The provider has no role in telling the user (or must keep the order confidential).
    NotApplicable,
    /// When giving effect to the order, at the latest.
    WhenGivingEffect,
    /// Not before the non-disclosure order ends at this time.
    NotBefore(DateTime<Utc>),
    /// Not before an open-ended non-disclosure order is lifted.
    WhenGagLifted,
    /// Never: a non-disclosure order removes it.
    Never,
}

impl PartialSchema for NoticeTiming {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "When the provider may or must tell the user: one of the strings \
                 `\"not_applicable\"`, `\"when_giving_effect\"`, `\"when_gag_lifted\"`, \
                 `\"never\"`, or `{\"not_before\": \"<date-time>\"}`.",
            ))
            .item(unit_variant(
                "not_applicable",
                "The provider has no role in telling the user (or must keep the order \
                 confidential).",
            ))
            .item(unit_variant(
                "when_giving_effect",
                "When giving effect to the order, at the latest.",
            ))
            .item(tagged_variant(
                "not_before",
                date_time_schema(),
                "Not before the non-disclosure order ends at this time (UTC).",
            ))
            .item(unit_variant(
                "when_gag_lifted",
                "Not before an open-ended non-disclosure order is lifted.",
            ))
            .item(unit_variant(
                "never",
                "Never: a non-disclosure order removes it.",
            ))
            .into()
    }
}

impl ToSchema for NoticeTiming {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NoticeTiming")
    }
}

/// One user-notice duty (from the instrument or an overlay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoticeDuty {
    /// Who tells the user.
    pub informs: Notifier,
    /// Whether the provider must tell the user.
    pub provider_must_inform: bool,
    /// Whether the provider may tell the user.
    pub provider_may_inform: bool,
    /// When the provider's telling (duty or freedom) applies.
    pub timing: NoticeTiming,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// The non-disclosure order attached to the order, as decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Gag {
    /// When it ends.
    pub ends: NonDisclosureEnd,
    /// Whether it was still running at decision time.
    pub active_at_decision: bool,
    /// The provision it is made under, as stated.
    #[schema(required = true)]
    pub legal_basis: Option<String>,
}

/// How long a preservation lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preservation {
    /// End of the preservation period (UTC), from receipt.
    pub expires_at: DateTime<Utc>,
    /// Length of one extension (e.g. "30d"), if the law allows one.
    #[schema(required = true)]
    pub extension: Option<String>,
    /// How many extensions the law allows.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub max_extensions: u32,
    /// Whether the hold continues past `expires_at` until a follow-up request arrives (the
    /// authority announced one, e.g. e-Evidence Annex V): it is then ended by a person.
    #[serde(default)]
    #[schema(required = true)]
    pub until_follow_up: bool,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// An incomplete or erroneous order: what the provider asks the authority to supply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Clarification {
    /// The missing elements, as order field paths (e.g. `issuer.file_number`).
    pub missing: Vec<String>,
    /// Plain-language explanation (what to ask, what happens to the deadlines and the data).
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// A task the provider must follow up on, with its clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowUp {
    /// When it is due (UTC); null when the law sets no time.
    #[schema(required = true)]
    pub due: Option<DateTime<Utc>>,
    /// The task.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// A reasoned objection the legal team may choose instead of complying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Objection {
    /// A short code, e.g. `immunity_or_privilege`.
    pub code: String,
    /// What it means and what the provider sends.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// Another duty of the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Duty {
    /// The duty.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// Whether the instrument binds the provider from its establishment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Binding {
    /// `true`: binding; `false`: voluntary disclosure (always human judgement).
    pub binding: bool,
    /// Plain-language explanation.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// What the engine concluded about one order (narrowed by reviewers, if `narrowing` is not
/// empty). Every property is always present; those that do not apply are null or empty arrays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// The id (SHA-256 hex) of the policy set that decided.
    pub policy_set_id: String,
    /// The authority's reference.
    pub order_reference: String,
    /// The instrument id as given in the order.
    pub instrument: String,
    /// The instrument's name, when known.
    #[schema(required = true)]
    pub instrument_name: Option<String>,
    /// The instrument's legal basis, when known.
    #[schema(required = true)]
    pub instrument_citation: Option<String>,
    /// Produce or preserve, when the instrument is known.
    #[schema(required = true)]
    pub action: Option<Action>,
    /// When Writ received the order.
    pub received_at: DateTime<Utc>,
    /// The `now` the decision was taken at.
    pub decided_at: DateTime<Utc>,
    /// The overall outcome.
    pub outcome: Outcome,
    /// Order-level reasons for refusal (empty unless refused).
    pub refusals: Vec<Finding>,
    /// Points a person must judge before anything is released.
    pub review_flags: Vec<Finding>,
    /// Binding or voluntary, when the instrument is known.
    #[schema(required = true)]
    pub binding: Option<Binding>,
    /// The targets, exactly as given in the order.
    pub targets: Vec<Target>,
    /// The order's stated inputs that rules read beyond issuer and categories (purpose,
    /// procedural framework, statutory basis, sole aim, urgency, target kinds), in plain words.
    #[serde(default)]
    #[schema(required = true)]
    pub inputs: Vec<String>,
    /// The period of data the decision reaches: the order's window (a reviewer may shorten it,
    /// never lengthen it). Null when the order states none.
    #[serde(default)]
    #[schema(required = true)]
    pub time_window: Option<super::order::TimeWindow>,
    /// One entry per requested category (duplicates removed), in the order requested.
    pub categories: Vec<CategoryDecision>,
    /// The reply deadline.
    #[schema(required = true)]
    pub deadline: Option<Deadline>,
    /// The earliest release time (produce orders that are not refused).
    #[schema(required = true)]
    pub earliest_release: Option<ReleaseTime>,
    /// When ex-post validation is due (emergency orders relying on it).
    #[schema(required = true)]
    pub validation_due: Option<ValidationDue>,
    /// User-notice duties.
    pub user_notice: Vec<NoticeDuty>,
    /// The non-disclosure order, if any.
    #[schema(required = true)]
    pub gag: Option<Gag>,
    /// The preservation period (preservation orders).
    #[schema(required = true)]
    pub preservation: Option<Preservation>,
    /// Other duties.
    pub duties: Vec<Duty>,
    /// What the authority must supply, when the order is incomplete and the instrument asks
    /// for clarification rather than refusing.
    #[serde(default)]
    #[schema(required = true)]
    pub clarification: Option<Clarification>,
    /// Tasks the provider must follow up on.
    #[serde(default)]
    #[schema(required = true)]
    pub follow_ups: Vec<FollowUp>,
    /// Reasoned objections the legal team may choose instead of complying.
    #[serde(default)]
    #[schema(required = true)]
    pub objections: Vec<Objection>,
    /// Points the policy files mark as still to verify.
    pub caveats: Vec<String>,
    /// Reasons given for each narrowing applied since the engine decided.
    pub narrowing: Vec<String>,
}

impl Decision {
    /// Every field a category of this decision releases (permit or pending check), deduplicated.
    pub fn released_fields(&self) -> std::collections::BTreeSet<FieldId> {
        self.fields_where(FieldStatus::releases)
    }

    /// Every field this decision grants (release or preserve), deduplicated.
    pub fn granted_fields(&self) -> std::collections::BTreeSet<FieldId> {
        self.fields_where(FieldStatus::grants)
    }

    /// The decision on one category, if requested.
    pub fn category(&self, category: Category) -> Option<&CategoryDecision> {
        self.categories.iter().find(|c| c.category == category)
    }

    /// Whether `field` of `category` is released for records found from a target of `kind`:
    /// the field releases and its grant covers that kind of target.
    pub fn releases_for(&self, category: Category, field: FieldId, kind: TargetKind) -> bool {
        self.category(category)
            .and_then(|c| c.fields.iter().find(|f| f.field == field))
            .is_some_and(|f| {
                f.status.releases()
                    && f.target_kinds
                        .as_ref()
                        .is_none_or(|kinds| kinds.contains(&kind))
            })
    }

    /// The status of a field within a requested category.
    pub fn field_status(&self, category: Category, field: FieldId) -> Option<FieldStatus> {
        self.category(category)?
            .fields
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.status)
    }

    fn fields_where(&self, keep: fn(FieldStatus) -> bool) -> std::collections::BTreeSet<FieldId> {
        self.categories
            .iter()
            .flat_map(|c| c.fields.iter())
            .filter(|f| keep(f.status))
            .map(|f| f.field)
            .collect()
    }
}
