//! What an EPOC or EPOC-PR carries beyond plain HI-1, added to the order its task became
//! before the order is checked and decided (under `eu.epoc` or `eu.epoc_pr`: the legal type
//! picks the instrument, `etsi::map`):
//!
//! - the validating authority: the approval whose `ApproverRole` is `ValidatingAuthority`,
//!   which names the authority by its identifier in the national system (`ApprovalReference`).
//!   When the registry knows that identifier, the order names the validator with its kind,
//!   name and country as registered, the approver's name, its file number
//!   (`ApprovalDescription`) and the validation time (`ApprovalTimestamp`). The validation is
//!   still only a claim a person checks (no validator's signature proves it), but the engine
//!   judges the validator on its registered kind, as the registry knows it. An identifier
//!   the registry does not know names no validator: the order goes to a person first
//!   (`inbound`'s authority judgement) and no field is granted on an unknown validation;
//! - the issuing person: the approver whose role is `IssuingAuthority`, when one is named;
//! - the addressee (Form 1, section A): the service provider the message is addressed to, its
//!   `ReceiverIdentifier` (the service checked it is Writ's own, as it checks a task's CSPID);
//! - whether the enforcing authority was notified (`EnforcingAuthorityNotified`, or the
//!   priority `TenDaysSubjectToEA`) and an emergency (`IsEmergency`, or `EightHours`, whose
//!   justification is the authorisation's `AuthorisationManualInformation`).
//!
//! The legal provisions (Writ's `WritLegalProvision` flags) and the offence
//! (`AuthorisationTypeOfCase`) travel as in plain HI-1: the profile's `EPOCAdditionalInfo`,
//! which carries the rest of Form 1, has no public schema yet.
// EEVIDENCE.md [T?]: check against TS 104 144 (the ApproverRole values, where the validating
// authority's file number travels, and EPOCAdditionalInfo)

use chrono::Utc;
use diesel::prelude::*;

use crate::authority::Authority;
use crate::db::DbConn;
use crate::db::schema::{authorities, authority_etsi};
use crate::etsi::model::{Approval, Authorisation};
use crate::etsi::service::{Fail, ProfileContext, codes, error};
use crate::policy::{Emergency, IssuerKind, Order};

/// The `ApproverRole` of the issuing authority's approval.
pub const ISSUING_ROLE: &str = "IssuingAuthority";
/// The `ApproverRole` of the validating authority's approval.
pub const VALIDATING_ROLE: &str = "ValidatingAuthority";

/// The authorisation's approval in `role`, if any.
fn approval<'a>(auth: &'a Authorisation, role: &str) -> Option<&'a Approval> {
    auth.approvals
        .iter()
        .find(|a| a.approver_role.as_deref() == Some(role))
}

fn filled(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The active registered authority whose identifier in the national system is
/// `unique_identifier`.
pub fn registered(
    c: &mut DbConn,
    unique_identifier: &str,
) -> Result<Option<Authority>, diesel::result::Error> {
    let id: Option<String> = authority_etsi::table
        .filter(authority_etsi::unique_identifier.eq(unique_identifier))
        .select(authority_etsi::authority_id)
        .first(c)
        .optional()?;
    let Some(id) = id else {
        return Ok(None);
    };
    authorities::table
        .find(&id)
        .filter(authorities::status.eq("active"))
        .select(Authority::as_select())
        .first(c)
        .optional()
}

/// Completes `order` from its e-Evidence authorisation (see the module's text), and returns
/// the registry's id of the validating authority when the registry knows it.
pub fn complete(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    auth: Option<&Authorisation>,
    order: &mut Order,
) -> Result<Option<String>, Fail> {
    // A task without its authorisation is refused when its lifecycle is made.
    let Some(auth) = auth else {
        return Ok(None);
    };
    let mut validator = None;
    if let Some(name) = approval(auth, ISSUING_ROLE).and_then(|a| filled(&a.approver_name)) {
        name.clone_into(&mut order.issuer.person);
    }
    if let Some(v) = approval(auth, VALIDATING_ROLE)
        && let Some(id) = filled(&v.reference)
        && let Some(registered) = registered(c, id)?
    {
        let kind: IssuerKind = serde_json::from_value(serde_json::Value::String(
            registered.kind.clone(),
        ))
        .map_err(|_| {
            Fail::Answer(error(
                codes::UNPROCESSABLE,
                format!("the validating authority {id} has no kind Writ knows"),
            ))
        })?;
        order.validator = Some(crate::policy::Authority {
            kind,
            person: filled(&v.approver_name)
                .unwrap_or(&registered.name)
                .to_owned(),
            authority: registered.name,
            country: registered.country,
            file_number: filled(&v.description).map(str::to_owned),
        });
        order.dates.validated_at = v.timestamp.map(|t| t.with_timezone(&Utc));
        validator = Some(registered.id);
    }
    let to = &cx.header.receiver;
    order.addressee = Some(format!("{}/{}", to.country, to.id));
    let priority = auth
        .priority
        .as_ref()
        .filter(|p| p.name == "EPOCPriority")
        .map(|p| p.value.as_str());
    let flagged = |v: &str| auth.flags.iter().any(|f| f.value == v);
    if flagged("EnforcingAuthorityNotified") || priority == Some("TenDaysSubjectToEA") {
        order.enforcing_state_notified = true;
    }
    if order.emergency.is_none() && (flagged("IsEmergency") || priority == Some("EightHours")) {
        // Only what the message says: an empty justification is a missing element.
        order.emergency = Some(Emergency {
            justification: auth.manual_information.clone().unwrap_or_default(),
        });
    }
    Ok(validator)
}
