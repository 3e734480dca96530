//! How HI-1 objects become Writ orders, and how Writ's order states read as HI-1 task states.
//! Pure functions: no I/O, no clock.
//!
//! - The issuer is the registered authority whose key signed the request (kind, name and
//!   country from the registry); the message only adds the approver's name.
//! - The instrument is the one the authorisation names in Writ's own `WritInstrument`
//!   dictionary (`AuthorisationLegalType` with Writ's unique identifier as owner), else the one
//!   registered for the sender for that kind of task. An e-Evidence authorisation
//!   (`EPOCLegalType` `EPOC` or `EPOCPR`) is decided under `eu.epoc` or `eu.epoc_pr` whatever
//!   is registered, and only at the `/eevidence/*` endpoints, where its lifecycle is kept.
//! - `RequestType` maps to categories, request values to targets (see [`REQUEST_TYPES`] and
//!   [`formats`]); an IP address becomes one target per observed time.

use chrono::{DateTime, FixedOffset, Utc};

use super::model::{
    Approval, Authorisation, DictionaryEntry, LdTask, LpTask, RequestDetails, RequestValue,
};
use crate::authority::{Authority, EtsiIdentity};
use crate::orders::OrderStatus;
use crate::policy::{
    Category, Emergency, IpTarget, IssuerKind, Offence, Order, OrderDates, Target, TimeWindow,
};

/// Writ's dictionary of instruments, read from `AuthorisationLegalType`.
pub const INSTRUMENT_DICTIONARY: &str = "WritInstrument";
/// Writ's own `AuthorisationFlag` names (owner: Writ's unique identifier) for the legal inputs
/// TS 103 120 has no element for: `WritPurpose` (a purpose kind, e.g. `crime`),
/// `WritProceduralFramework` (e.g. `preliminary_inquiry`), `WritStatutoryBasis`
/// (`<kind>|<statute>`, e.g. `grand_jury_subpoena|Fed. R. Crim. P. 17`),
/// `WritSoleAimIdentification` and `WritJournalisticSource` (`true` or `false`), and
/// `WritLegalProvision` (one legal provision relied on, e.g. `Code pénal art 313-1`; repeated
/// for each).
pub const INPUT_FLAGS: [&str; 6] = [
    "WritPurpose",
    "WritProceduralFramework",
    "WritStatutoryBasis",
    "WritSoleAimIdentification",
    "WritJournalisticSource",
    "WritLegalProvision",
];
/// The e-Evidence profile's dictionary of legal types (`AuthorisationLegalType`).
// EEVIDENCE.md [T?]: check against TS 104 144 (owner `EU` in the profile's examples, `ETSI` in
// an early reference translator: both are read)
pub const EPOC_LEGAL_TYPE: &str = "EPOCLegalType";
/// The instruments of the e-Evidence legal types: an EPOC (Form 1) and an EPOC-PR (Form 2).
pub const EPOC_INSTRUMENTS: [(&str, &str); 2] = [("EPOC", "eu.epoc"), ("EPOCPR", "eu.epoc_pr")];
/// Writ's own target format for an account id.
pub const FORMAT_USER_ID: &str = "WritUserId";
/// Writ's own target format for a user name.
pub const FORMAT_USERNAME: &str = "WritUsername";
/// Writ's own target format for an IP address with its source port (`203.0.113.7:51234`,
/// `[2001:db8::7]:51234`), used with observed times.
pub const FORMAT_IP_PORT: &str = "WritIPAddressPort";

/// ETSI `RequestType` values Writ serves, and the Writ categories each asks for.
pub const REQUEST_TYPES: &[(&str, &[Category])] = &[
    ("SubscriberData", &[Category::Subscriber]),
    ("UserIdentifyingData", &[Category::Identification]),
    ("TrafficData", &[Category::IpHistory]),
    ("StoredContentData", &[Category::Content]),
    (
        "SubscriberDataAndUserIdentifyingData",
        &[Category::Subscriber, Category::Identification],
    ),
    (
        "TrafficDataAndStoredContentData",
        &[Category::IpHistory, Category::Content],
    ),
];

/// Categories a preservation task covers when it names no `RequestType`: everything Writ holds.
const PRESERVE_ALL: &[Category] = &[
    Category::Subscriber,
    Category::Identification,
    Category::IpHistory,
];

/// A target format Writ accepts: owner (`ETSI` or Writ's identifier), name, description and
/// the regular expression published in `GETCSPCONFIG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// `FormatOwner`.
    pub owner: String,
    /// `FormatName`.
    pub name: &'static str,
    /// What the value is.
    pub description: &'static str,
    /// The value's pattern (for Writ's own formats).
    pub regex: &'static str,
    /// Whether the value needs `ObservedTimes`.
    pub needs_observed_time: bool,
}

/// Every target format Writ accepts; Writ's own are owned by `writ_id`.
pub fn formats(writ_id: &str) -> Vec<Format> {
    let etsi = |name, description, needs_observed_time| Format {
        owner: "ETSI".into(),
        name,
        description,
        regex: "",
        needs_observed_time,
    };
    let own = |name, description, regex, needs_observed_time| Format {
        owner: writ_id.to_owned(),
        name,
        description,
        regex,
        needs_observed_time,
    };
    vec![
        etsi(
            "InternationalE164",
            "A phone number in E.164 form without the plus sign.",
            false,
        ),
        etsi(
            "IPv4Address",
            "An IPv4 address; with ObservedTimes, who used it at each time.",
            true,
        ),
        etsi(
            "IPv6Address",
            "An IPv6 address; with ObservedTimes, who used it at each time.",
            true,
        ),
        own(
            FORMAT_USER_ID,
            "A Writ account id, as Writ disclosed it earlier.",
            "^[A-Za-z0-9._:-]{1,128}$",
            false,
        ),
        own(
            FORMAT_USERNAME,
            "A user name of the service.",
            "^[^\\s]{1,128}$",
            false,
        ),
        own(
            FORMAT_IP_PORT,
            "An IP address and source port (203.0.113.7:51234 or [2001:db8::7]:51234); with \
             ObservedTimes, who used it at each time. Without the port, an address behind \
             carrier-grade NAT can match many users.",
            "^(\\d{1,3}(\\.\\d{1,3}){3}|\\[[0-9A-Fa-f:.]+\\]):\\d{1,5}$",
            true,
        ),
    ]
}

/// Why a task cannot become an order: the element at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{element}`: {reason}")]
pub struct MapError {
    /// The element, e.g. `task:RequestDetails/task:RequestValues/task:RequestValue[2]`.
    pub element: String,
    /// What is wrong.
    pub reason: String,
}

fn err(element: impl Into<String>, reason: impl Into<String>) -> MapError {
    MapError {
        element: element.into(),
        reason: reason.into(),
    }
}

/// The sender as the registry knows it.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The registered authority.
    pub authority: &'a Authority,
    /// Its HI-1 identity.
    pub etsi: &'a EtsiIdentity,
}

/// What the message says around a task.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The task's authorisation, if it has one.
    pub authorisation: Option<&'a Authorisation>,
    /// The message's `Timestamp` (the issue date when the authorisation gives none).
    pub sent_at: DateTime<FixedOffset>,
    /// The message's `TransactionIdentifier`.
    pub transaction_id: &'a str,
    /// Writ's own HI-1 unique identifier.
    pub writ_id: &'a str,
    /// Whether the message came to an e-Evidence endpoint (`/eevidence/*`): only there is an
    /// EPOC or EPOC-PR taken.
    pub eevidence: bool,
}

fn utc(t: DateTime<FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

/// The categories an ETSI `RequestType` asks for.
pub fn categories(request_type: &DictionaryEntry) -> Result<Vec<Category>, MapError> {
    let element = "task:RequestDetails/task:Type";
    if request_type.owner != "ETSI" || request_type.name != "RequestType" {
        return Err(err(
            element,
            format!(
                "Writ reads ETSI's RequestType dictionary; {}/{} is not supported",
                request_type.owner, request_type.name
            ),
        ));
    }
    REQUEST_TYPES
        .iter()
        .find(|(name, _)| *name == request_type.value)
        .map(|(_, c)| c.to_vec())
        .ok_or_else(|| {
            err(
                element,
                format!(
                    "request type `{}` is not supported; Writ serves {}",
                    request_type.value,
                    REQUEST_TYPES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

fn ip_with_port(value: &str) -> Option<(std::net::IpAddr, u16)> {
    let (ip, port) = if let Some(rest) = value.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        (ip, port)
    } else {
        value.rsplit_once(':')?
    };
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// The targets of a task's request values.
pub fn targets(details: &RequestDetails, writ_id: &str) -> Result<Vec<Target>, MapError> {
    let mut out = Vec::new();
    if details.values.is_empty() {
        return Err(err(
            "task:RequestDetails/task:RequestValues",
            "at least one RequestValue is required: Writ needs to know whom the task is about",
        ));
    }
    for (
        i,
        RequestValue {
            format_owner,
            format_name,
            value,
        },
    ) in details.values.iter().enumerate()
    {
        let element = format!(
            "task:RequestDetails/task:RequestValues/task:RequestValue[{}]",
            i + 1
        );
        let known = formats(writ_id)
            .into_iter()
            .find(|f| f.owner == *format_owner && f.name == format_name);
        let Some(format) = known else {
            return Err(err(
                format!("{element}/task:FormatType"),
                format!(
                    "format {format_owner}/{format_name} is not supported; GETCSPCONFIG lists \
                     the formats Writ accepts"
                ),
            ));
        };
        let ip_targets = |address: std::net::IpAddr, port: Option<u16>| {
            if details.observed_times.is_empty() {
                return Err(err(
                    "task:RequestDetails/task:ObservedTimes",
                    format!(
                        "an {} value needs ObservedTimes: Writ identifies who used an address \
                         at a moment",
                        format.name
                    ),
                ));
            }
            Ok(details
                .observed_times
                .iter()
                .map(|t| {
                    Target::Ip(IpTarget {
                        address,
                        port,
                        timestamp: *t,
                        time_zone: None,
                    })
                })
                .collect::<Vec<_>>())
        };
        let bad = |what: &str| err(format!("{element}/task:Value"), format!("is not {what}"));
        match format.name {
            "InternationalE164" => {
                let digits = value.strip_prefix('+').unwrap_or(value);
                if digits.is_empty()
                    || digits.len() > 15
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad("an E.164 number (up to 15 digits)"));
                }
                out.push(Target::PhoneNumber(format!("+{digits}")));
            }
            "IPv4Address" => {
                let ip: std::net::Ipv4Addr = value.parse().map_err(|_| bad("an IPv4 address"))?;
                out.extend(ip_targets(ip.into(), None)?);
            }
            "IPv6Address" => {
                let ip: std::net::Ipv6Addr = value.parse().map_err(|_| bad("an IPv6 address"))?;
                out.extend(ip_targets(ip.into(), None)?);
            }
            FORMAT_IP_PORT => {
                let (ip, port) = ip_with_port(value)
                    .ok_or_else(|| bad("an address and port such as 203.0.113.7:51234"))?;
                out.extend(ip_targets(ip, Some(port))?);
            }
            FORMAT_USER_ID => {
                if value.is_empty() || value.len() > 128 {
                    return Err(bad("an account id of 1 to 128 characters"));
                }
                out.push(Target::UserId(value.clone()));
            }
            _ => {
                if value.is_empty() || value.len() > 128 || value.chars().any(char::is_whitespace) {
                    return Err(bad("a user name of 1 to 128 characters without spaces"));
                }
                out.push(Target::Username(value.clone()));
            }
        }
    }
    Ok(out)
}

/// The instrument a task is decided under.
fn instrument(ctx: &Context<'_>, registered: Option<&str>, kind: &str) -> Result<String, MapError> {
    const AT: &str = "auth:AuthorisationLegalType";
    if let Some(entry) = ctx.authorisation.and_then(|a| a.legal_type.as_ref())
        && entry.name == EPOC_LEGAL_TYPE
        && (entry.owner == "EU" || entry.owner == "ETSI")
    {
        // An EPOC's legal type is the law it is decided under, whatever is registered for
        // the sender; outside the e-Evidence endpoints it would escape its lifecycle (the
        // enforcing authority's review, Form 3, withdrawal), so it is refused there.
        if !ctx.eevidence {
            return Err(err(
                AT,
                "an EPOC or EPOC-PR is taken at /eevidence/production or /eevidence/preservation, \
                 where its e-Evidence lifecycle is kept; not at /etsi/hi1",
            ));
        }
        return EPOC_INSTRUMENTS
            .iter()
            .find(|(value, _)| *value == entry.value)
            .map(|(_, id)| (*id).to_owned())
            .ok_or_else(|| {
                err(
                    AT,
                    format!("EPOCLegalType {:?} is neither EPOC nor EPOCPR", entry.value),
                )
            });
    }
    if let Some(entry) = ctx.authorisation.and_then(|a| a.legal_type.as_ref())
        && entry.owner == ctx.writ_id
        && entry.name == INSTRUMENT_DICTIONARY
    {
        return Ok(entry.value.clone());
    }
    registered.map(str::to_owned).ok_or_else(|| {
        err(
            "HI1Object",
            format!(
                "no Writ instrument is registered for {kind} tasks from this sender, and the \
                 authorisation names none (AuthorisationLegalType in dictionary {}/{})",
                ctx.writ_id, INSTRUMENT_DICTIONARY
            ),
        )
    })
}

/// The legal inputs Writ's own authorisation flags carry (see [`INPUT_FLAGS`]).
#[derive(Default)]
struct LegalInputs {
    purpose: Option<crate::policy::Purpose>,
    procedural_framework: Option<crate::policy::ProceduralFramework>,
    statutory_basis: Option<crate::policy::StatutoryBasis>,
    sole_aim_identification: Option<bool>,
    journalistic_source: bool,
    legal_provisions: Vec<String>,
}

fn legal_inputs(ctx: &Context<'_>) -> Result<LegalInputs, MapError> {
    const AT: &str = "auth:AuthorisationFlags/auth:AuthorisationFlag";
    let mut out = LegalInputs::default();
    let flags = ctx
        .authorisation
        .map(|a| a.flags.as_slice())
        .unwrap_or_default();
    let word = |value: &str, what: &str| -> Result<serde_json::Value, MapError> {
        let v = value.trim();
        if v.is_empty() || v.len() > 64 {
            return Err(err(AT, format!("{what}: expected a Writ identifier")));
        }
        Ok(serde_json::Value::String(v.to_owned()))
    };
    let boolean = |value: &str, name: &str| match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(err(AT, format!("{name} must be `true` or `false`"))),
    };
    for f in flags.iter().filter(|f| f.owner == ctx.writ_id) {
        match f.name.as_str() {
            "WritPurpose" => {
                let kind =
                    serde_json::from_value(word(&f.value, "WritPurpose")?).map_err(|_| {
                        err(
                            AT,
                            format!("WritPurpose {:?} is not a purpose Writ knows", f.value),
                        )
                    })?;
                out.purpose = Some(crate::policy::Purpose {
                    kind,
                    statement: None,
                });
            }
            "WritProceduralFramework" => {
                out.procedural_framework = Some(
                    serde_json::from_value(word(&f.value, "WritProceduralFramework")?).map_err(
                        |_| {
                            err(
                                AT,
                                format!(
                                    "WritProceduralFramework {:?} is not a framework Writ knows",
                                    f.value
                                ),
                            )
                        },
                    )?,
                );
            }
            "WritStatutoryBasis" => {
                let (kind, statute) = f
                    .value
                    .split_once('|')
                    .ok_or_else(|| err(AT, "WritStatutoryBasis must be `<kind>|<statute>`"))?;
                let statute = statute.trim();
                if statute.is_empty() || statute.chars().count() > 200 {
                    return Err(err(
                        AT,
                        "WritStatutoryBasis: the statute must be 1 to 200 characters",
                    ));
                }
                let kind =
                    serde_json::from_value(word(kind, "WritStatutoryBasis")?).map_err(|_| {
                        err(
                            AT,
                            format!("WritStatutoryBasis kind {kind:?} is not one Writ knows"),
                        )
                    })?;
                out.statutory_basis = Some(crate::policy::StatutoryBasis {
                    kind,
                    statute: statute.to_owned(),
                });
            }
            "WritSoleAimIdentification" => {
                out.sole_aim_identification = Some(boolean(&f.value, "WritSoleAimIdentification")?);
            }
            "WritJournalisticSource" => {
                out.journalistic_source = boolean(&f.value, "WritJournalisticSource")?;
            }
            "WritLegalProvision" => {
                let provision = f.value.trim();
                if provision.is_empty() || provision.chars().count() > 500 {
                    return Err(err(
                        AT,
                        "WritLegalProvision: a provision must be 1 to 500 characters",
                    ));
                }
                if out.legal_provisions.len() >= 20 {
                    return Err(err(AT, "at most 20 WritLegalProvision flags"));
                }
                out.legal_provisions.push(provision.to_owned());
            }
            _ => {}
        }
    }
    Ok(out)
}

fn flagged_emergency(flags: &[DictionaryEntry]) -> bool {
    flags
        .iter()
        .any(|f| f.owner == "ETSI" && f.value == "IsEmergency")
}

/// The order common to both kinds of task.
#[allow(clippy::too_many_arguments)]
fn base_order(
    sender: Sender<'_>,
    ctx: &Context<'_>,
    instrument: String,
    reference: String,
    emergency: bool,
    details: &RequestDetails,
    categories: Vec<Category>,
    task_approvals: &[Approval],
) -> Result<Order, MapError> {
    let auth = ctx.authorisation;
    let approvals = auth.map(|a| a.approvals.as_slice()).unwrap_or_default();
    // Every instrument needs the person who issued the order; a placeholder would pass the
    // policy's required-element check on a claim nobody made.
    let person = approvals
        .iter()
        .chain(task_approvals)
        .find_map(|a| a.approver_name.clone().filter(|n| !n.trim().is_empty()))
        .ok_or_else(|| {
            err(
                "auth:AuthorisationApprovalDetails/common:ApproverDetails/common:ApproverName",
                "is required (in the authorisation, or in the task's ApprovalDetails): Writ \
                 needs the name of the person who issued the order",
            )
        })?;
    let kind: IssuerKind =
        serde_json::from_value(serde_json::Value::String(sender.authority.kind.clone()))
            .map_err(|_| err("HI1Object", "the sender's registered kind is unknown"))?;
    let issued_at = auth
        .and_then(|a| a.creation_timestamp)
        .or_else(|| approvals.iter().find_map(|a| a.timestamp))
        .unwrap_or(ctx.sent_at);
    let time_window = match (details.start, details.end) {
        (Some(from), Some(to)) => Some(TimeWindow {
            from: utc(from),
            to: utc(to),
        }),
        _ => None,
    };
    let emergency = (emergency
        || auth.is_some_and(|a| flagged_emergency(&a.flags))
        || approvals.iter().any(|a| a.is_emergency == Some(true)))
    .then(|| Emergency {
        // Only what the message says: an empty justification is a missing element for the
        // policy, never a placeholder that would pass for one.
        justification: auth
            .and_then(|a| a.manual_information.clone())
            .unwrap_or_default(),
    });
    let reasons = auth.and_then(|a| a.manual_information.clone());
    let inputs = legal_inputs(ctx)?;
    let offence = auth.and_then(|a| a.type_of_case.as_ref()).map(|c| Offence {
        description: c.value.clone(),
        max_custodial_months: None,
        codes: Vec::new(),
        over_network: None,
        sentence_imposed_months: None,
    });
    Ok(Order {
        reference,
        instrument,
        issuer: crate::policy::Authority {
            kind,
            person,
            authority: sender.authority.name.clone(),
            country: sender.authority.country.clone(),
            file_number: auth.and_then(|a| a.reference.clone()),
        },
        validator: None,
        dates: OrderDates {
            issued_at: utc(issued_at),
            validated_at: None,
            expires_at: auth.and_then(|a| a.timespan).and_then(|t| t.end).map(utc),
            respond_by: None,
        },
        legal_provisions: inputs.legal_provisions,
        reasons,
        redress: None,
        addressee: None,
        receiving_authority: None,
        offence,
        emergency,
        enforcing_state_notified: false,
        non_disclosure: None,
        targets: targets(details, ctx.writ_id)?,
        categories,
        time_window,
        // TS 103 120 has no element for these: Writ's own authorisation flags carry them.
        purpose: inputs.purpose,
        procedural_framework: inputs.procedural_framework,
        statutory_basis: inputs.statutory_basis,
        sole_aim_identification: inputs.sole_aim_identification,
        journalistic_source: inputs.journalistic_source,
        follow_up_notified_at: None,
        extension_requested_at: Vec::new(),
    })
}

/// The order a disclosure task (`LDTaskObject`) becomes.
pub fn disclosure_order(
    task: &LdTask,
    sender: Sender<'_>,
    ctx: &Context<'_>,
) -> Result<Order, MapError> {
    if task
        .flags
        .iter()
        .chain(
            ctx.authorisation
                .map(|a| a.flags.as_slice())
                .unwrap_or_default(),
        )
        .any(|f| f.owner == "ETSI" && f.value == "IsTest")
    {
        return Err(err(
            "task:Flags",
            "IsTest tasks are not taken: Writ has no test mode, and a test task would place \
             real holds on real accounts",
        ));
    }
    let details = task.request.as_ref().ok_or_else(|| {
        err(
            "task:RequestDetails",
            "is required: it says what is asked for and about whom",
        )
    })?;
    // Without a request type (ETSI's request6), the values say what is asked: an address at
    // observed times asks who used it (identification); anything else asks for the account.
    let categories = match &details.request_type {
        Some(t) => categories(t)?,
        None if !details.values.is_empty()
            && details.values.iter().all(|v| {
                matches!(
                    v.format_name.as_str(),
                    "IPv4Address" | "IPv6Address" | FORMAT_IP_PORT
                )
            }) =>
        {
            vec![Category::Identification]
        }
        None => vec![Category::Subscriber],
    };
    let instrument = instrument(ctx, Some(&sender.etsi.disclosure_instrument), "disclosure")?;
    let reference = task
        .reference
        .clone()
        .unwrap_or_else(|| task.base.identifier.clone());
    let mut order = base_order(
        sender,
        ctx,
        instrument,
        reference,
        flagged_emergency(&task.flags),
        details,
        categories,
        &task.approvals,
    )?;
    order.dates.respond_by = task.deadlines.iter().map(|d| utc(d.at)).min();
    if order.reasons.is_none() {
        order.reasons = task.manual_information.clone();
    }
    Ok(order)
}

/// The order a preservation task (`LPTaskObject`) becomes.
pub fn preservation_order(
    task: &LpTask,
    sender: Sender<'_>,
    ctx: &Context<'_>,
) -> Result<Order, MapError> {
    let details = task.request.as_ref().ok_or_else(|| {
        err(
            "task:RequestDetails",
            "is required: it says what is to be preserved and about whom",
        )
    })?;
    let categories = match &details.request_type {
        Some(t) => categories(t)?,
        None => PRESERVE_ALL.to_vec(),
    };
    let instrument = instrument(
        ctx,
        sender.etsi.preservation_instrument.as_deref(),
        "preservation",
    )?;
    // An LPTaskObject has no reference of its own: its external identifier, else its id.
    let reference = task
        .base
        .external_identifier
        .clone()
        .unwrap_or_else(|| task.base.identifier.clone());
    let mut order = base_order(
        sender,
        ctx,
        instrument,
        reference,
        false,
        details,
        categories,
        &[],
    )?;
    if order.dates.expires_at.is_none() {
        order.dates.expires_at = task.desired_expiration.map(utc);
    }
    Ok(order)
}

/// An order's state as an ETSI `LDTaskStatus` value.
pub fn disclosure_status(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::UnderReview | OrderStatus::AwaitingClarification => "AwaitingApproval",
        OrderStatus::Approved => "AwaitingDisclosure",
        OrderStatus::Released => "Disclosed",
        OrderStatus::Refused => "Rejected",
        OrderStatus::Withdrawn => "Cancelled",
    }
}

/// A preservation order's state as an ETSI `LPTaskStatus` value: `holding` says whether its
/// holds are in force, `ended` whether the preservation period has run out.
pub fn preservation_status(status: OrderStatus, holding: bool, ended: bool) -> &'static str {
    match status {
        OrderStatus::Refused => "Rejected",
        OrderStatus::Withdrawn => "Cancelled",
        _ if ended => "Expired",
        _ if holding => "Preserved",
        _ => "AwaitingPreservation",
    }
}

/// An order's state as an ETSI `AuthorisationStatus` value (an authorisation stands for the
/// orders of its tasks: approved once any was approved).
pub fn authorisation_status(statuses: &[OrderStatus]) -> &'static str {
    if statuses
        .iter()
        .any(|s| matches!(s, OrderStatus::Approved | OrderStatus::Released))
    {
        "Approved"
    } else if !statuses.is_empty() && statuses.iter().all(|s| *s == OrderStatus::Refused) {
        "Rejected"
    } else if !statuses.is_empty() && statuses.iter().all(|s| *s == OrderStatus::Withdrawn) {
        "Cancelled"
    } else {
        "AwaitingApproval"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etsi::model::{ObjectBase, Timespan};

    fn authority() -> Authority {
        Authority {
            id: "fr-police".into(),
            name: "Police nationale".into(),
            country: "FR".into(),
            kind: "police".into(),
            contacts: "a@example.org".into(),
            status: "active".into(),
            created_at: 0,
        }
    }

    fn identity() -> EtsiIdentity {
        EtsiIdentity {
            authority_id: "fr-police".into(),
            country_code: "XX".into(),
            unique_identifier: "ACTOR01".into(),
            disclosure_instrument: "eu.epoc".into(),
            preservation_instrument: None,
            delivery_url: None,
            updated_at: 0,
        }
    }

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn value(owner: &str, name: &str, v: &str) -> RequestValue {
        RequestValue {
            format_owner: owner.into(),
            format_name: name.into(),
            value: v.into(),
        }
    }

    fn task(request_type: &str, values: Vec<RequestValue>, observed: Vec<&str>) -> LdTask {
        LdTask {
            base: ObjectBase {
                identifier: "2b36a78b-b628-416d-bd22-404e68a0cd36".into(),
                ..ObjectBase::default()
            },
            reference: Some("XX-ACTOR01-1234".into()),
            approvals: vec![approver("Insp. Martin")],
            request: Some(RequestDetails {
                request_type: Some(DictionaryEntry::etsi("RequestType", request_type)),
                start: Some(t("2026-09-01T00:00:00Z")),
                end: Some(t("2026-10-01T00:00:00Z")),
                observed_times: observed.into_iter().map(t).collect(),
                values,
                subtypes: Vec::new(),
            }),
            ..LdTask::default()
        }
    }

    fn approver(name: &str) -> Approval {
        Approval {
            approver_name: Some(name.into()),
            ..Approval::default()
        }
    }

    fn ctx<'a>(auth: Option<&'a Authorisation>) -> Context<'a> {
        Context {
            authorisation: auth,
            sent_at: t("2026-10-02T08:00:00Z"),
            transaction_id: "c02358b2-76cf-4ba4-a8eb-f6436ccaea2e",
            writ_id: "WRIT",
            eevidence: false,
        }
    }

    #[test]
    fn every_request_type_maps_to_its_categories_and_others_are_named() {
        for (name, cats) in REQUEST_TYPES {
            assert_eq!(
                categories(&DictionaryEntry::etsi("RequestType", name)).unwrap(),
                cats.to_vec()
            );
        }
        let e = categories(&DictionaryEntry::etsi("RequestType", "Other")).unwrap_err();
        assert!(e.reason.contains("`Other` is not supported"), "{e}");
        let e = categories(&DictionaryEntry {
            owner: "XX".into(),
            name: "RequestType".into(),
            value: "SubscriberData".into(),
        })
        .unwrap_err();
        assert!(e.reason.contains("XX/RequestType"), "{e}");
    }

    #[test]
    fn a_phone_task_becomes_an_order_from_the_registered_issuer() {
        let (a, e) = (authority(), identity());
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        let auth = Authorisation {
            base: ObjectBase {
                identifier: "7dbbc880-8750-4d3c-abe7-ea4a17646045".into(),
                ..ObjectBase::default()
            },
            reference: Some("W000001".into()),
            approvals: vec![approver("M. Dupont")],
            timespan: Some(Timespan {
                start: Some(t("2026-09-30T12:00:00Z")),
                end: Some(t("2026-12-01T12:00:00Z")),
            }),
            ..Authorisation::default()
        };
        let task = task(
            "SubscriberData",
            vec![value("ETSI", "InternationalE164", "442079460223")],
            vec![],
        );
        let order = disclosure_order(&task, sender, &ctx(Some(&auth))).unwrap();
        assert_eq!(order.instrument, "eu.epoc");
        assert_eq!(order.reference, "XX-ACTOR01-1234");
        assert_eq!(order.issuer.kind, IssuerKind::Police);
        assert_eq!(order.issuer.authority, "Police nationale");
        assert_eq!(order.issuer.country, "FR");
        assert_eq!(order.issuer.file_number.as_deref(), Some("W000001"));
        assert_eq!(
            order.issuer.person, "M. Dupont",
            "the authorisation's approver first"
        );
        assert_eq!(
            order.targets,
            vec![Target::PhoneNumber("+442079460223".into())]
        );
        assert_eq!(order.categories, vec![Category::Subscriber]);
        assert_eq!(order.dates.issued_at, utc(t("2026-10-02T08:00:00Z")));
        assert_eq!(order.dates.expires_at, Some(utc(t("2026-12-01T12:00:00Z"))));
        assert!(order.emergency.is_none());
    }

    /// The legal inputs of issue 17 travel in Writ's own authorisation flags.
    #[test]
    fn writ_flags_carry_the_legal_inputs() {
        let (a, e) = (authority(), identity());
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        let flag = |name: &str, value: &str| DictionaryEntry {
            owner: "WRIT".into(),
            name: name.into(),
            value: value.into(),
        };
        let mut auth = Authorisation {
            approvals: vec![approver("M. Dupont")],
            flags: vec![
                flag("WritPurpose", "missing_or_vulnerable_person"),
                flag("WritProceduralFramework", "preliminary_inquiry"),
                flag(
                    "WritStatutoryBasis",
                    "administrative_subpoena| 21 U.S.C. 876",
                ),
                flag("WritSoleAimIdentification", "true"),
                flag("WritJournalisticSource", "false"),
                // Another owner's flag of the same name says nothing to Writ.
                DictionaryEntry {
                    owner: "XX".into(),
                    name: "WritPurpose".into(),
                    value: "bogus".into(),
                },
            ],
            ..Authorisation::default()
        };
        let task = task(
            "SubscriberData",
            vec![value("ETSI", "InternationalE164", "442079460223")],
            vec![],
        );
        let order = disclosure_order(&task, sender, &ctx(Some(&auth))).unwrap();
        assert_eq!(
            order.purpose.map(|p| p.kind),
            Some(crate::policy::PurposeKind::MissingOrVulnerablePerson)
        );
        assert_eq!(
            order.procedural_framework,
            Some(crate::policy::ProceduralFramework::PreliminaryInquiry)
        );
        let basis = order.statutory_basis.unwrap();
        assert_eq!(basis.kind, crate::policy::BasisKind::AdministrativeSubpoena);
        assert_eq!(basis.statute, "21 U.S.C. 876");
        assert_eq!(order.sole_aim_identification, Some(true));
        assert!(!order.journalistic_source);
        auth.flags = vec![flag("WritStatutoryBasis", "no separator")];
        let e = disclosure_order(&task, sender, &ctx(Some(&auth))).unwrap_err();
        assert!(e.reason.contains("<kind>|<statute>"), "{e}");
        auth.flags = vec![flag("WritPurpose", "revenge")];
        let e = disclosure_order(&task, sender, &ctx(Some(&auth))).unwrap_err();
        assert!(e.element.contains("AuthorisationFlag"), "{e}");
    }

    #[test]
    fn an_ip_becomes_one_target_per_observed_time_and_needs_one() {
        let (a, e) = (authority(), identity());
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        let mut task = task(
            "UserIdentifyingData",
            vec![value("ETSI", "IPv4Address", "192.0.2.23")],
            vec!["2026-09-03T12:32:12Z", "2026-09-03T12:35:34+02:00"],
        );
        task.flags = vec![DictionaryEntry::etsi("LDTaskFlag", "IsEmergency")];
        let order = disclosure_order(&task, sender, &ctx(None)).unwrap();
        assert_eq!(order.targets.len(), 2);
        let Target::Ip(ip) = &order.targets[1] else {
            panic!("not an IP target")
        };
        assert_eq!(ip.address.to_string(), "192.0.2.23");
        assert_eq!(ip.timestamp, t("2026-09-03T12:35:34+02:00"));
        assert!(order.emergency.is_some());
        let mut none = task.clone();
        none.request.as_mut().unwrap().observed_times.clear();
        let e = disclosure_order(&none, sender, &ctx(None)).unwrap_err();
        assert!(e.element.ends_with("ObservedTimes"), "{e}");
        let port = self::task(
            "UserIdentifyingData",
            vec![value("WRIT", FORMAT_IP_PORT, "[2001:db8::7]:51234")],
            vec!["2026-09-03T12:32:12Z"],
        );
        let order = disclosure_order(&port, sender, &ctx(None)).unwrap();
        let Target::Ip(ip) = &order.targets[0] else {
            panic!("not an IP target")
        };
        assert_eq!(
            (ip.address.to_string(), ip.port),
            ("2001:db8::7".into(), Some(51234))
        );
    }

    #[test]
    fn unknown_formats_and_bad_values_name_the_value() {
        let (a, e) = (authority(), identity());
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        for (v, fault) in [
            (value("ETSI", "IMSI", "208150123456789"), "not supported"),
            (value("OTHER", FORMAT_USERNAME, "alice"), "not supported"),
            (value("ETSI", "InternationalE164", "+33 6 12"), "E.164"),
            (value("ETSI", "IPv4Address", "2001:db8::1"), "IPv4"),
        ] {
            let task = task(
                "SubscriberData",
                vec![value("WRIT", FORMAT_USERNAME, "bob"), v],
                vec!["2026-09-03T12:32:12Z"],
            );
            let e = disclosure_order(&task, sender, &ctx(None)).unwrap_err();
            assert!(e.element.contains("RequestValue[2]"), "{e}");
            assert!(e.reason.contains(fault), "{e}");
        }
    }

    #[test]
    fn the_authorisation_may_name_a_writ_instrument_and_preservation_needs_one() {
        let (a, mut e) = (authority(), identity());
        let auth = Authorisation {
            legal_type: Some(DictionaryEntry {
                owner: "WRIT".into(),
                name: INSTRUMENT_DICTIONARY.into(),
                value: "eu.epoc_pr".into(),
            }),
            approvals: vec![approver("M. Dupont")],
            ..Authorisation::default()
        };
        let plain = Authorisation {
            approvals: vec![approver("M. Dupont")],
            ..Authorisation::default()
        };
        let lp = LpTask {
            request: Some(RequestDetails {
                values: vec![value("ETSI", "InternationalE164", "442079460223")],
                ..RequestDetails::default()
            }),
            desired_expiration: Some(t("2026-12-30T12:00:00Z")),
            ..LpTask::default()
        };
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        let err = preservation_order(&lp, sender, &ctx(None)).unwrap_err();
        assert!(err.reason.contains("no Writ instrument"), "{err}");
        let order = preservation_order(&lp, sender, &ctx(Some(&auth))).unwrap();
        assert_eq!(order.instrument, "eu.epoc_pr");
        assert_eq!(order.categories, PRESERVE_ALL.to_vec());
        assert_eq!(order.dates.expires_at, Some(utc(t("2026-12-30T12:00:00Z"))));
        e.preservation_instrument = Some("us.preservation".into());
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        assert_eq!(
            preservation_order(&lp, sender, &ctx(Some(&plain)))
                .unwrap()
                .instrument,
            "us.preservation"
        );
        // Nobody named as issuing it: refused, naming the element to add.
        let e = preservation_order(&lp, sender, &ctx(None)).unwrap_err();
        assert!(e.element.ends_with("ApproverName"), "{e}");
    }

    /// An EPOC's legal type decides its instrument, whatever is registered for the sender, and
    /// only at the e-Evidence endpoints; Writ's legal-provision flags carry Form 1's provisions.
    #[test]
    fn an_epoc_is_decided_under_the_regulation_only_at_the_eevidence_endpoints() {
        let (a, mut e) = (authority(), identity());
        e.disclosure_instrument = "fr.requisition".into();
        e.preservation_instrument = None;
        let sender = Sender {
            authority: &a,
            etsi: &e,
        };
        let legal = |value: &str| DictionaryEntry {
            owner: "EU".into(),
            name: EPOC_LEGAL_TYPE.into(),
            value: value.into(),
        };
        let provision = |value: &str| DictionaryEntry {
            owner: "WRIT".into(),
            name: "WritLegalProvision".into(),
            value: value.into(),
        };
        let mut auth = Authorisation {
            legal_type: Some(legal("EPOC")),
            approvals: vec![approver("M. Durand")],
            flags: vec![
                provision("Regulation (EU) 2023/1543 Art 4(1)"),
                provision(" Code pénal art 313-2 "),
            ],
            ..Authorisation::default()
        };
        let ld = task(
            "SubscriberData",
            vec![value("ETSI", "InternationalE164", "442079460223")],
            vec![],
        );
        fn at_eevidence(auth: &Authorisation) -> Context<'_> {
            Context {
                eevidence: true,
                ..ctx(Some(auth))
            }
        }
        let order = disclosure_order(&ld, sender, &at_eevidence(&auth)).unwrap();
        assert_eq!(order.instrument, "eu.epoc");
        assert_eq!(
            order.legal_provisions,
            vec![
                "Regulation (EU) 2023/1543 Art 4(1)".to_owned(),
                "Code pénal art 313-2".to_owned()
            ]
        );
        // At /etsi/hi1 it would escape its lifecycle: refused, naming the element.
        let e = disclosure_order(&ld, sender, &ctx(Some(&auth))).unwrap_err();
        assert!(e.element.ends_with("AuthorisationLegalType"), "{e}");
        assert!(e.reason.contains("/eevidence/production"), "{e}");
        // An EPOC-PR needs no registered preservation instrument.
        auth.legal_type = Some(legal("EPOCPR"));
        let lp = LpTask {
            request: Some(RequestDetails {
                values: vec![value("ETSI", "InternationalE164", "442079460223")],
                ..RequestDetails::default()
            }),
            ..LpTask::default()
        };
        let order = preservation_order(&lp, sender, &at_eevidence(&auth)).unwrap();
        assert_eq!(order.instrument, "eu.epoc_pr");
        auth.legal_type = Some(legal("EIO"));
        let e = disclosure_order(&ld, sender, &at_eevidence(&auth)).unwrap_err();
        assert!(e.reason.contains("neither EPOC nor EPOCPR"), "{e}");
        auth.legal_type = Some(legal("EPOC"));
        auth.flags = vec![provision("  ")];
        let e = disclosure_order(&ld, sender, &at_eevidence(&auth)).unwrap_err();
        assert!(e.reason.contains("WritLegalProvision"), "{e}");
    }

    #[test]
    fn states_map_onto_the_etsi_dictionaries() {
        assert_eq!(
            disclosure_status(OrderStatus::UnderReview),
            "AwaitingApproval"
        );
        assert_eq!(
            disclosure_status(OrderStatus::AwaitingClarification),
            "AwaitingApproval"
        );
        assert_eq!(
            disclosure_status(OrderStatus::Approved),
            "AwaitingDisclosure"
        );
        assert_eq!(disclosure_status(OrderStatus::Released), "Disclosed");
        assert_eq!(disclosure_status(OrderStatus::Refused), "Rejected");
        assert_eq!(disclosure_status(OrderStatus::Withdrawn), "Cancelled");
        assert_eq!(
            preservation_status(OrderStatus::UnderReview, true, false),
            "Preserved"
        );
        assert_eq!(
            preservation_status(OrderStatus::UnderReview, false, false),
            "AwaitingPreservation"
        );
        assert_eq!(
            preservation_status(OrderStatus::UnderReview, true, true),
            "Expired"
        );
        assert_eq!(
            preservation_status(OrderStatus::Withdrawn, true, false),
            "Cancelled"
        );
        assert_eq!(
            authorisation_status(&[OrderStatus::Refused, OrderStatus::Released]),
            "Approved"
        );
        assert_eq!(authorisation_status(&[OrderStatus::Refused]), "Rejected");
        assert_eq!(authorisation_status(&[]), "AwaitingApproval");
    }
}
