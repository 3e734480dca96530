//! The policy file schema: what `config/policies/<jurisdiction>.toml` may contain.
//!
//! Every table rejects unknown keys, every enumerated value (category, field, issuer kind,
//! action, notifier) is a closed list, and durations follow a small grammar, so a typo fails to
//! load with the file and line instead of silently widening or narrowing a rule.
//!
//! Layout of one file (see the shipped files for commented examples):
//!
//! ```toml
//! jurisdiction = "eu"          # must match the file name (eu.toml)
//! name = "European Union"
//! [[instrument]]               # one block per legal instrument
//! id = "eu.epoc"               # "<jurisdiction>.<name>"
//! ...                          # see InstrumentSpec
//! [[instrument.rule]]          # what the instrument reaches, one block per condition set
//! [[overlay]]                  # conditions that apply on top of other instruments
//! ```

use super::catalogue::{Category, FieldId};
use super::order::{BasisKind, IssuerKind, ProceduralFramework, PurposeKind, TargetKind};
use crate::deployment::ServiceClass;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use toml::Spanned;

/// A duration written in a policy file.
///
/// Grammar: one or more ASCII digits followed by exactly one unit, `d` (days of 24 hours) or
/// `h` (hours); no sign, no spaces, no combined units. Examples: "10d", "8h", "48h", "60d".
/// Months are deliberately not a unit (their length varies); write days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct PolicyDuration {
    hours: u32,
    /// Whether it was written in days, so it is shown back the way the law states it.
    in_days: bool,
}

impl PolicyDuration {
    /// The longest duration a policy may state (10 years), so arithmetic on dates cannot overflow.
    const MAX_HOURS: u32 = 24 * 3660;

    /// Parses the grammar described on the type.
    pub fn parse(text: &str) -> Result<PolicyDuration, String> {
        let bad = || {
            format!(
                "malformed duration {text:?}: expected digits followed by `d` or `h`, e.g. \"10d\" or \"8h\""
            )
        };
        let (digits, per_unit) = if let Some(d) = text.strip_suffix('d') {
            (d, 24)
        } else if let Some(h) = text.strip_suffix('h') {
            (h, 1)
        } else {
            return Err(bad());
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let hours = digits
            .parse::<u32>()
            .ok()
            .and_then(|n| n.checked_mul(per_unit))
            .filter(|h| *h <= Self::MAX_HOURS)
            .ok_or_else(|| format!("duration {text:?} is out of range (at most 3660d)"))?;
        Ok(PolicyDuration {
            hours,
            in_days: per_unit == 24,
        })
    }

    /// As a chrono duration.
    pub fn to_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(i64::from(self.hours))
    }
}

impl fmt::Display for PolicyDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written back in the unit the policy (and the law) used: "48h" stays "48h".
        if self.in_days {
            write!(f, "{}d", self.hours / 24)
        } else {
            write!(f, "{}h", self.hours)
        }
    }
}

impl From<PolicyDuration> for String {
    fn from(d: PolicyDuration) -> String {
        d.to_string()
    }
}

impl<'de> Deserialize<'de> for PolicyDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PolicyDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether an instrument compels production or only preservation.
///
/// `produce`: the provider hands the data over; `preserve`: the provider keeps the data
/// unchanged and nothing is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The provider hands the data over.
    Produce,
    /// The provider keeps the data unchanged; nothing is released.
    Preserve,
}

/// Who tells the user about the order.
///
/// `authority`: the issuing or prosecuting authority; `provider`: the provider; `nobody`: no one
/// is required to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Notifier {
    /// The issuing or prosecuting authority.
    Authority,
    /// The provider.
    Provider,
    /// No one is required to.
    Nobody,
}

/// What a non-disclosure order does to the provider's duty or freedom to tell the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GagEffect {
    /// The provider may not tell while it runs; the duty or freedom revives when it ends.
    Delays,
    /// The provider may never tell, even after it ends.
    Forbids,
}

/// One policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The jurisdiction code; must equal the file stem.
    pub jurisdiction: Spanned<String>,
    /// Human name of the jurisdiction.
    pub name: String,
    /// A note on what in this file still needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
    /// The instruments of this jurisdiction.
    #[serde(default, rename = "instrument")]
    pub instruments: Vec<InstrumentSpec>,
    /// Overlays defined by this jurisdiction on others' instruments.
    #[serde(default, rename = "overlay")]
    pub overlays: Vec<OverlaySpec>,
}

/// One legal instrument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    /// "<jurisdiction>.<name>", e.g. "eu.epoc".
    pub id: Spanned<String>,
    /// Human name.
    pub name: String,
    /// The legal basis.
    pub citation: String,
    /// Produce or preserve.
    pub action: Action,
    /// Elements the order must contain, as `Order` field paths (see `ORDER_ELEMENTS`).
    #[serde(default)]
    pub required_elements: Vec<Spanned<String>>,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
    /// Where the instrument binds the provider.
    pub binding: BindingSpec,
    /// Reply deadline.
    #[serde(default)]
    pub deadline: Option<DeadlineSpec>,
    /// Hold on release while another state may object.
    #[serde(default)]
    pub release_hold: Option<ReleaseHoldSpec>,
    /// Ex-post validation of emergency orders.
    #[serde(default)]
    pub emergency_validation: Option<EmergencyValidationSpec>,
    /// Preservation period (preservation orders, or preservation on receipt).
    #[serde(default)]
    pub preservation: Option<PreservationSpec>,
    /// Who informs the user.
    pub user_notice: NoticeSpec,
    /// Other duties the provider has on receipt.
    #[serde(default, rename = "duty")]
    pub duties: Vec<DutySpec>,
    /// What the instrument reaches.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSpec>,
    /// What an incomplete order gets: `refuse` (default) or `clarify` (e-Evidence Art 10(6):
    /// the provider asks the authority to complete it and the deadlines stop meanwhile).
    #[serde(default)]
    pub on_incomplete: Incomplete,
    /// The provider classification this instrument is the basis for (German law: a
    /// number-independent interpersonal communications service under the TKG, or a digital
    /// service under the TDDDG). Absent: any provider.
    #[serde(default)]
    pub service_class: Option<ServiceClass>,
    /// Countries whose authorities may issue under this instrument, where it is not only the
    /// jurisdiction's own (e.g. a CLOUD Act executive agreement partner). Empty: the default.
    #[serde(default)]
    pub issuer_countries: Vec<String>,
    /// Tasks the provider must follow up on, each with its clock.
    #[serde(default, rename = "follow_up")]
    pub follow_ups: Vec<FollowUpSpec>,
    /// Reasoned objections the legal team may choose instead of complying.
    #[serde(default, rename = "objection")]
    pub objections: Vec<ObjectionSpec>,
    /// Authorisation routes: who may issue or authorise, depending on the procedure (French
    /// procedural frameworks, UK authorising bodies and purposes). Rules that name no issuer
    /// take their entitlement from the first route whose conditions hold.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSpec>,
}

/// One authorisation route of an instrument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Plain name, e.g. "preliminary inquiry (art 77-1-1)".
    pub name: String,
    /// Only in these procedural frameworks; empty: any.
    #[serde(default)]
    pub frameworks: Vec<ProceduralFramework>,
    /// Only for these stated purposes; empty: any.
    #[serde(default)]
    pub purposes: Vec<PurposeKind>,
    /// Only for emergency (urgent) orders.
    #[serde(default)]
    pub requires_emergency: bool,
    /// Only when the order seeks to identify or confirm a journalist's source (and then only
    /// such routes apply).
    #[serde(default)]
    pub journalistic_source: bool,
    /// The authorisation lapses this long after it was given.
    #[serde(default)]
    pub lapses_after: Option<PolicyDuration>,
    /// Issuer kinds that may issue on their own on this route.
    #[serde(default)]
    pub issuers: Vec<IssuerKind>,
    /// Issuer kinds that may issue when authorised by one of `validators`.
    #[serde(default)]
    pub validated_issuers: Vec<IssuerKind>,
    /// Authorising (validating) kinds on this route.
    #[serde(default)]
    pub validators: Vec<IssuerKind>,
    /// The legal basis.
    pub citation: String,
}

/// What an order missing required elements gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Incomplete {
    /// Refused, with the missing elements named.
    #[default]
    Refuse,
    /// A clarification request listing the missing elements; nothing released meanwhile.
    Clarify,
}

/// When a follow-up task applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpWhen {
    /// Every order under the instrument.
    #[default]
    Always,
    /// Only emergency orders.
    Emergency,
}

/// A task the provider must follow up on (e.g. asking for legal process after an emergency
/// disclosure, or checking the court application that keeps a preservation alive).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpSpec {
    /// The task in plain words.
    pub text: String,
    /// Due this long after receipt; absent: no fixed time.
    #[serde(default)]
    pub within: Option<PolicyDuration>,
    /// When it applies.
    #[serde(default)]
    pub when: FollowUpWhen,
    /// The legal basis.
    pub citation: String,
}

/// A reasoned objection the legal team may choose (e.g. e-Evidence Art 10(5), Art 17).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectionSpec {
    /// A short code, e.g. "immunity_or_privilege".
    pub code: String,
    /// What it means and what the provider sends.
    pub text: String,
    /// The legal basis.
    pub citation: String,
}

/// Where an instrument binds the provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    /// ISO country codes where an establishment or legal representative makes it binding.
    /// Empty: never binding (voluntary disclosure).
    pub binds_provider_in: Vec<String>,
    /// Whether an establishment in the issuing state itself does *not* count (EU cross-border
    /// instruments address providers in *another* member state).
    #[serde(default)]
    pub except_issuing_state: bool,
    /// The legal basis for the territorial scope.
    pub citation: String,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
    /// Also binding on a provider established elsewhere that offers its service in one of
    /// `binds_provider_in` (e.g. Marco Civil art 11), per the deployment's `offers_service_in`.
    #[serde(default)]
    pub binds_providers_serving: bool,
}

/// A reply deadline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineSpec {
    /// Normal deadline from receipt; absent when the law sets none ("without undue delay").
    #[serde(default)]
    pub normal: Option<PolicyDuration>,
    /// Deadline from receipt for emergency orders.
    #[serde(default)]
    pub emergency: Option<PolicyDuration>,
    /// Whether the deadline stops running while a clarification request is pending.
    #[serde(default)]
    pub clarification_pauses: bool,
    /// The legal basis.
    pub citation: String,
    /// Plain words for deadlines the law does not express as a duration.
    #[serde(default)]
    pub note: Option<String>,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
}

/// A window in which another authority may object before data are released.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseHoldSpec {
    /// The categories whose release is held.
    pub categories: Vec<Category>,
    /// Hold from receipt when the order says the enforcing state was notified (normal orders).
    pub window: PolicyDuration,
    /// In an emergency the data go out by the emergency deadline; the other authority may still
    /// object within this window after receipt (reported, not a hold).
    #[serde(default)]
    pub emergency_objection_window: Option<PolicyDuration>,
    /// The legal basis.
    pub citation: String,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
}

/// Ex-post validation of orders issued in an emergency without prior validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyValidationSpec {
    /// From the order's issue time (give this or `working_days`).
    #[serde(default)]
    pub window: Option<PolicyDuration>,
    /// Working days (Monday to Friday) from the order's issue time, where the law counts them.
    #[serde(default)]
    pub working_days: Option<u32>,
    /// Who must validate (shown in the task), e.g. "the court".
    #[serde(default)]
    pub by: Option<String>,
    /// The legal basis.
    pub citation: String,
    /// What happens if validation does not come.
    #[serde(default)]
    pub note: Option<String>,
}

/// How long preserved data are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreservationSpec {
    /// Period from receipt.
    pub period: PolicyDuration,
    /// Length of one extension, if the law allows one.
    #[serde(default)]
    pub extension: Option<PolicyDuration>,
    /// How many extensions the law allows.
    #[serde(default)]
    pub max_extensions: u32,
    /// The legal basis.
    pub citation: String,
    /// Plain words on what else keeps the data preserved (e.g. a pending follow-up request).
    #[serde(default)]
    pub note: Option<String>,
    /// Whether the hold continues past the period once the authority announces a follow-up
    /// request before it ends (e-Evidence Art 11(1) with Annex V).
    #[serde(default)]
    pub continues_until_follow_up: bool,
}

/// Who informs the user, and what a non-disclosure order does to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeSpec {
    /// Who tells the user.
    pub informs: Notifier,
    /// Whether the provider may tell the user on its own initiative (when no one forbids it).
    pub provider_may_inform: bool,
    /// What a non-disclosure order attached to the order does.
    pub non_disclosure: GagEffect,
    /// The legal basis.
    pub citation: String,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
}

/// Another duty of the provider (reported in the decision, not enforced by the engine).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutySpec {
    /// The duty in plain words.
    pub text: String,
    /// The legal basis.
    pub citation: String,
    /// Only for a provider of this classification (unset in the deployment: shown as
    /// conditional).
    #[serde(default)]
    pub service_class: Option<ServiceClass>,
}

/// One condition set under which an instrument reaches some fields of a category.
/// Several rules for the same field are alternatives: the field is reached if any rule holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The requested category this rule answers.
    pub category: Category,
    /// The fields reached (may be empty: the category is lawful but reaches nothing Writ holds;
    /// must be empty for `content`).
    pub fields: Spanned<Vec<FieldId>>,
    /// Issuer kinds (from the registry) that may use the instrument for this on their own.
    /// Empty together with `validated_issuers`: the instrument's routes decide.
    #[serde(default)]
    pub issuers: Vec<IssuerKind>,
    /// Issuer kinds that may use it if validated by one of `validators`.
    #[serde(default)]
    pub validated_issuers: Vec<IssuerKind>,
    /// Validator kinds that make a validated issuer's order valid.
    #[serde(default)]
    pub validators: Vec<IssuerKind>,
    /// Issuer kinds that may, in an emergency, issue without prior validation (validation follows).
    #[serde(default)]
    pub emergency_unvalidated_issuers: Vec<IssuerKind>,
    /// Offence threshold: maximum custodial sentence of at least this many months ...
    #[serde(default)]
    pub min_custodial_months: Option<u32>,
    /// ... or one of these listed offence codes. With neither, any offence qualifies.
    #[serde(default)]
    pub listed_offence_codes: Vec<String>,
    /// Only for emergency orders.
    #[serde(default)]
    pub requires_emergency: bool,
    /// Only for offences committed over an electronic communications network.
    #[serde(default)]
    pub requires_network_offence: bool,
    /// Only when the order states a sentence imposed of at least this many months (execution of
    /// a sentence, e-Evidence Art 5(4)(d)).
    #[serde(default)]
    pub min_sentence_imposed_months: Option<u32>,
    /// Only when the order states that its sole aim is to identify the author (and requests
    /// nothing beyond `subscriber` and `identification`).
    #[serde(default)]
    pub requires_sole_aim_identification: bool,
    /// Only for these stated purposes; empty: any (or none stated).
    #[serde(default)]
    pub purposes: Vec<PurposeKind>,
    /// Not for these stated purposes (e.g. the e-Evidence Art 5(4)(a)-(c) thresholds do not
    /// serve the execution of a sentence, which has its own, Art 5(4)(d)).
    #[serde(default)]
    pub excluded_purposes: Vec<PurposeKind>,
    /// Only in these procedural frameworks; empty: any.
    #[serde(default)]
    pub frameworks: Vec<ProceduralFramework>,
    /// Only when every target is of these kinds; empty: any.
    #[serde(default)]
    pub target_kinds: Vec<TargetKind>,
    /// Only on a stated statutory basis of these kinds (with the statute named); a basis of
    /// another kind goes to a person's judgement. Empty: no basis needed.
    #[serde(default)]
    pub statutory_basis_kinds: Vec<BasisKind>,
    /// The authorisation lapses this long after it was given (`dates.validated_at`, else
    /// `dates.issued_at`), e.g. the UK's urgent authorisations after 3 days.
    #[serde(default)]
    pub lapses_after: Option<PolicyDuration>,
    /// The legal basis.
    pub citation: String,
    /// Plain words shown in explanations.
    #[serde(default)]
    pub note: Option<String>,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
}

/// Conditions that apply on top of other jurisdictions' instruments (e.g. DSA Art 10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlaySpec {
    /// Overlay id, "<jurisdiction>.<name>".
    pub id: Spanned<String>,
    /// Human name.
    pub name: String,
    /// The legal basis.
    pub citation: String,
    /// Jurisdictions whose instruments it applies to.
    pub applies_to_jurisdictions: Vec<Spanned<String>>,
    /// Applies only if the deployment says the provider is a DSA intermediary service.
    #[serde(default)]
    pub requires_dsa_intermediary: bool,
    /// Additional elements the order must contain.
    #[serde(default)]
    pub required_elements: Vec<Spanned<String>>,
    /// An additional user-notice duty.
    #[serde(default)]
    pub user_notice: Option<NoticeSpec>,
    /// Additional duties.
    #[serde(default, rename = "duty")]
    pub duties: Vec<DutySpec>,
    /// A note on what needs a lawyer's check.
    #[serde(default)]
    pub verify: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_grammar() {
        for (text, hours) in [
            ("10d", 240),
            ("8h", 8),
            ("48h", 48),
            ("60d", 1440),
            ("0h", 0),
        ] {
            assert_eq!(PolicyDuration::parse(text).unwrap().hours, hours, "{text}");
        }
        for bad in [
            "",
            "d",
            "10",
            "10 d",
            "1.5d",
            "-1d",
            "10D",
            "3m",
            "1d12h",
            "99999999d",
        ] {
            assert!(
                PolicyDuration::parse(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
        assert_eq!(PolicyDuration::parse("48h").unwrap().to_string(), "48h");
        assert_eq!(PolicyDuration::parse("10d").unwrap().to_string(), "10d");
        assert_eq!(PolicyDuration::parse("8h").unwrap().to_string(), "8h");
    }
}
