//! The `Order` domain type: what an authority sent, in its JSON form.
//!
//! Everything here is what the order *claims*. Facts that Writ establishes itself (the issuer's
//! registered kind, whether a validation carries the validator's own signature) come from the
//! authority registry as [`RegistryFacts`] and are never read from the order body.
//!
//! An amendment is a replacement `Order`: it is decided afresh, never merged into the old one.

use super::catalogue::Category;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::IpAddr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The kind of an issuing or validating authority.
///
/// The same list serves the order's *claim* and the registry's *fact*; the engine grants
/// entitlements only on the registry's fact.
///
/// `judge` (including a magistrate judge); `court` (an institution, including a clerk issuing
/// in its name); `investigating_judge` (juge d'instruction, Ermittlungsrichter); `prosecutor`;
/// `police` (any law-enforcement officer or agency); `administrative_authority` (another
/// authority with a legal power to request data); `ocda` (UK Office for Communications Data
/// Authorisations); `designated_senior_officer` (UK, urgent Part 3 authorisations).
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
pub enum IssuerKind {
    /// A judge (including a magistrate judge).
    Judge,
    /// A court as an institution (including a court clerk issuing in the court's name).
    Court,
    /// An investigating judge (juge d'instruction, Ermittlungsrichter).
    InvestigatingJudge,
    /// A public prosecutor.
    Prosecutor,
    /// A police or other law-enforcement officer or agency.
    Police,
    /// Another administrative authority with a legal power to request data.
    AdministrativeAuthority,
    /// UK Office for Communications Data Authorisations.
    Ocda,
    /// UK designated senior officer (urgent Part 3 authorisations).
    DesignatedSeniorOfficer,
}

impl IssuerKind {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerKind::Judge => "judge",
            IssuerKind::Court => "court",
            IssuerKind::InvestigatingJudge => "investigating_judge",
            IssuerKind::Prosecutor => "prosecutor",
            IssuerKind::Police => "police",
            IssuerKind::AdministrativeAuthority => "administrative_authority",
            IssuerKind::Ocda => "ocda",
            IssuerKind::DesignatedSeniorOfficer => "designated_senior_officer",
        }
    }
}

impl std::fmt::Display for IssuerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An issuing or validating authority as named in the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// The kind the order claims (checked against Writ's authority registry, never trusted).
    pub kind: IssuerKind,
    /// The person who signed (name and function): 1 to 200 characters, not all blank, with no
    /// control, bidirectional-control or invisible character (nor a Unicode tag character).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$"
    )]
    pub person: String,
    /// The authority's name (e.g. "Parquet de Paris"): 1 to 200 characters, not all blank, with no
    /// control, bidirectional-control or invisible character (nor a Unicode tag character).
    #[schema(
        examples("Parquet de Paris"),
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$"
    )]
    pub authority: String,
    /// ISO 3166-1 alpha-2 country of the authority (e.g. "FR"); for EU orders, the issuing state.
    #[schema(examples("FR"))]
    pub country: String,
    /// The authority's own file number, if given; no control,
    /// bidirectional-control or invisible character (nor a Unicode tag character).
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$"
    )]
    pub file_number: Option<String>,
}

/// The order's dates, as stated by the authority. Receipt time is *not* here: it is what Writ
/// recorded (e.g. the postmark of an order sent by post), not what the order says.
///
/// Each is an RFC 3339 date-time; any offset is accepted and converted to UTC (Writ echoes
/// them back in UTC, with a `Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderDates {
    /// When the order was issued; the ex-post validation window of emergency orders runs from here.
    pub issued_at: DateTime<Utc>,
    /// When a validator validated it, if stated.
    #[serde(default)]
    pub validated_at: Option<DateTime<Utc>>,
    /// The end of the order's own validity, if it has one; after it the order is refused.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The reply date the authority asks for; used as the deadline only where the instrument has
    /// no statutory one.
    #[serde(default)]
    pub respond_by: Option<DateTime<Utc>>,
}

/// The offence under investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Offence {
    /// Plain description of the offence.
    pub description: String,
    /// Maximum custodial sentence in months under the issuing state's law, as stated.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub max_custodial_months: Option<u32>,
    /// Offence codes used by policies for listed offences (e.g. "eu.dir_2017_541").
    #[serde(default)]
    #[schema(examples("eu.dir_2017_541"))]
    pub codes: Vec<String>,
    /// Whether the offence was committed over an electronic communications network.
    #[serde(default)]
    pub over_network: Option<bool>,
    /// For an order executing a sentence: the custodial sentence or detention order imposed,
    /// in months (e-Evidence Art 5(4)(d)).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub sentence_imposed_months: Option<u32>,
}

/// The emergency claim of an order; its presence makes the order an emergency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Emergency {
    /// Why the authority says there is an imminent threat (life, physical integrity, safety,
    /// critical infrastructure).
    pub justification: String,
}

/// When a non-disclosure order ends: `{"until": "<RFC 3339 date-time>"}` or the string
/// `"open_ended"`.
///
/// The JSON schema is written by hand ([`PartialSchema`] below): the derive would let the
/// `until` object carry other keys, which serde rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NonDisclosureEnd {
    /// It ends at this time.
    Until(DateTime<Utc>),
    /// It runs until lifted.
    OpenEnded,
}

impl PartialSchema for NonDisclosureEnd {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "When a non-disclosure order ends: `{\"until\": \"<date-time>\"}` (it ends at that \
                 time; any offset is accepted and converted to UTC) or the string \
                 `\"open_ended\"` (it runs until lifted).",
            ))
            .item(tagged_variant(
                "until",
                date_time_schema(),
                "It ends at this time.",
            ))
            .item(unit_variant("open_ended", "It runs until lifted."))
            .into()
    }
}

impl ToSchema for NonDisclosureEnd {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NonDisclosureEnd")
    }
}

/// A non-disclosure ("gag") order attached to the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NonDisclosure {
    /// When it ends.
    pub ends: NonDisclosureEnd,
    /// The provision it is made under (e.g. "18 U.S.C. 2705(b)"), if stated.
    #[serde(default)]
    pub legal_basis: Option<String>,
}

/// An IP target: "who used this address (and port) at this moment?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpTarget {
    /// The IP address, as a string: IPv4 in dotted-decimal form (no leading zeros) or IPv6 in
    /// RFC 4291 text form, without brackets, port or zone index. Writ echoes it back in canonical
    /// form (RFC 5952 for IPv6).
    #[schema(schema_with = ip_address_schema)]
    pub address: IpAddr,
    /// The source port, 1 to 65535;
    /// without it an IPv4 address behind carrier-grade NAT can match many users.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// The moment, as an RFC 3339 date-time with the offset the authority gave (kept as given,
    /// not converted to UTC).
    #[schema(examples("2026-08-30T10:14:03+02:00"))]
    pub timestamp: DateTime<FixedOffset>,
    /// The time zone the authority stated (e.g. "Europe/Paris"); e-Evidence Annex I asks for it.
    #[serde(default)]
    #[schema(examples("Europe/Paris"))]
    pub time_zone: Option<String>,
}

/// Whom the order is about: an object with exactly one key, `user_id`, `username`,
/// `phone_number` or `ip`, e.g. `{"username": "alice"}`. Targets are passed through to the
/// decision as given.
///
/// The JSON schema is written by hand ([`PartialSchema`] below): the derive would let each
/// variant's object carry other keys, which serde rejects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// Writ's account id.
    UserId(String),
    /// A user name.
    Username(String),
    /// A phone number.
    PhoneNumber(String),
    /// An IP address with port, timestamp and time zone.
    Ip(IpTarget),
}

impl PartialSchema for Target {
    fn schema() -> RefOr<Schema> {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        OneOfBuilder::new()
            .description(Some(
                "Whom the order is about: an object with exactly one key, `user_id`, `username`, \
                 `phone_number` or `ip`, e.g. `{\"username\": \"alice\"}`. Targets are passed \
                 through to the decision as given.",
            ))
            .item(tagged_variant(
                "user_id",
                text()
                    .min_length(Some(1))
                    .max_length(Some(200))
                    .pattern(Some(IDENTIFIER)),
                "Writ's account id: 1 to 200 characters, not all blank, with no control, \
                 bidirectional-control or invisible character.",
            ))
            .item(tagged_variant(
                "username",
                text().pattern(Some(USERNAME)),
                "A user name: 1 to 64 characters without spaces, control, bidirectional-control \
                 or invisible characters \
                 (surrounding blanks are ignored; compared without case).",
            ))
            .item(tagged_variant(
                "phone_number",
                text()
                    .format(Some(SchemaFormat::Custom("phone".into())))
                    .pattern(Some(PHONE)),
                "A phone number in international format: `+` and the country code, e.g. \
                 \"+33612345678\" (spaces, dots, dashes and parentheses are ignored). It must \
                 be a valid number in its country's numbering plan (format `phone`), which no \
                 pattern can say: an order with a number outside any plan is refused (422).",
            ))
            .item(tagged_variant(
                "ip",
                Ref::from_schema_name(IpTarget::name()),
                "An IP address with port, timestamp and time zone.",
            ))
            .into()
    }
}

impl ToSchema for Target {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Target")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((IpTarget::name().into_owned(), IpTarget::schema()));
        IpTarget::schemas(schemas);
    }
}

/// What the order is for, as the authority states it (a closed list, so a policy can test it).
///
/// `crime`: preventing or detecting crime (or an investigation of an offence);
/// `national_security`; `economic_well_being` (of the UK, so far as relevant to national
/// security); `public_safety`; `preventing_death_or_injury` (preventing death, injury or damage
/// to a person's health); `missing_or_vulnerable_person` (finding a missing person, or
/// identifying a person who has died or cannot identify themselves); `miscarriage_of_justice`
/// (assisting an investigation into an alleged miscarriage of justice); `executing_sentence`
/// (executing a custodial sentence or detention order against a person who absconded); `other`.
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
pub enum PurposeKind {
    /// Preventing or detecting crime, or investigating an offence.
    Crime,
    /// National security.
    NationalSecurity,
    /// The economic well-being of the UK, so far as relevant to national security.
    EconomicWellBeing,
    /// Public safety.
    PublicSafety,
    /// Preventing death, injury or damage to a person's health.
    PreventingDeathOrInjury,
    /// Finding a missing person, or identifying a person who has died or cannot identify
    /// themselves.
    MissingOrVulnerablePerson,
    /// Assisting an investigation into an alleged miscarriage of justice.
    MiscarriageOfJustice,
    /// Executing a custodial sentence or detention order against a person who absconded
    /// (e-Evidence Art 5(3), 5(4)(d)).
    ExecutingSentence,
    /// Any other purpose (a person judges it).
    Other,
}

impl PurposeKind {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            PurposeKind::Crime => "crime",
            PurposeKind::NationalSecurity => "national_security",
            PurposeKind::EconomicWellBeing => "economic_well_being",
            PurposeKind::PublicSafety => "public_safety",
            PurposeKind::PreventingDeathOrInjury => "preventing_death_or_injury",
            PurposeKind::MissingOrVulnerablePerson => "missing_or_vulnerable_person",
            PurposeKind::MiscarriageOfJustice => "miscarriage_of_justice",
            PurposeKind::ExecutingSentence => "executing_sentence",
            PurposeKind::Other => "other",
        }
    }
}

/// The purpose of the order: its kind and, where the law asks for it, the statement in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// The kind of purpose.
    pub kind: PurposeKind,
    /// The purpose in the authority's words (e.g. India BNSS s.94: why the record is necessary
    /// or desirable for the investigation). At most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub statement: Option<String>,
}

/// The procedural framework the order is made in (French criminal procedure: who may
/// requisition depends on it).
///
/// `flagrant_offence`: enquête de flagrance (CPP art 60-1); `preliminary_inquiry`: enquête
/// préliminaire (art 77-1-1: an officer needs the prosecutor's authorisation);
/// `judicial_investigation`: information judiciaire, on a commission rogatoire of the
/// investigating judge (art 99-3).
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
pub enum ProceduralFramework {
    /// Enquête de flagrance (CPP art 60-1).
    FlagrantOffence,
    /// Enquête préliminaire (CPP art 77-1-1).
    PreliminaryInquiry,
    /// Information judiciaire / commission rogatoire (CPP art 99-3).
    JudicialInvestigation,
}

impl ProceduralFramework {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            ProceduralFramework::FlagrantOffence => "flagrant_offence",
            ProceduralFramework::PreliminaryInquiry => "preliminary_inquiry",
            ProceduralFramework::JudicialInvestigation => "judicial_investigation",
        }
    }
}

/// The kind of process a statutory basis names (US: what authorises a subpoena).
///
/// `administrative_subpoena`: authorised by a federal or state statute (named in `statute`);
/// `grand_jury_subpoena`; `trial_subpoena`; `other` (a person judges it).
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
pub enum BasisKind {
    /// An administrative subpoena authorised by a federal or state statute.
    AdministrativeSubpoena,
    /// A federal or state grand jury subpoena.
    GrandJurySubpoena,
    /// A trial subpoena.
    TrialSubpoena,
    /// Anything else (a person judges it).
    Other,
}

impl BasisKind {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            BasisKind::AdministrativeSubpoena => "administrative_subpoena",
            BasisKind::GrandJurySubpoena => "grand_jury_subpoena",
            BasisKind::TrialSubpoena => "trial_subpoena",
            BasisKind::Other => "other",
        }
    }
}

/// The statute that authorises the process, as stated in the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatutoryBasis {
    /// The kind of process.
    pub kind: BasisKind,
    /// The statute (e.g. "21 U.S.C. 876" or "Fed. R. Crim. P. 17"): 1 to 200 characters, not all
    /// blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub statute: String,
}

/// The kind of a target, for rules that depend on it (an IP address at a time is resolved from
/// connection records, which several laws treat as traffic or events data).
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
pub enum TargetKind {
    /// Writ's account id.
    UserId,
    /// A user name.
    Username,
    /// A phone number.
    PhoneNumber,
    /// An IP address at a time.
    Ip,
}

impl TargetKind {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::UserId => "user_id",
            TargetKind::Username => "username",
            TargetKind::PhoneNumber => "phone_number",
            TargetKind::Ip => "ip",
        }
    }
}

impl Target {
    /// The kind of this target.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::UserId(_) => TargetKind::UserId,
            Target::Username(_) => TargetKind::Username,
            Target::PhoneNumber(_) => TargetKind::PhoneNumber,
            Target::Ip(_) => TargetKind::Ip,
        }
    }
}

/// An optional whole number, written `145` or `145.0`: JSON Schema counts both as integers
/// (serde alone refuses the second), so the order schema means what the server accepts.
fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|w| T::try_from(w).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "invalid value: {number}, expected a whole number in range"
            ))
        })
}

/// A JSON Schema pattern for an identifier that is not all blank and holds no character
/// [`crate::text::is_hidden`] refuses (Unicode tag characters, outside the Basic Multilingual
/// Plane, cannot be named in a pattern every JSON Schema dialect reads; they are refused too).
pub const IDENTIFIER: &str = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$";

/// A username as `normalize::username` accepts it: surrounding white space, then 1 to 64
/// characters that are neither white space nor control characters.
const USERNAME: &str = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,64}[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// The shape of a phone number in international format (its validity in a numbering plan is
/// checked when the order is).
const PHONE: &str = r"^ *\+[0-9][0-9 ().-]{3,30}$";

/// The JSON schema of an IP address as Rust parses it: IPv4 dotted decimal or IPv6 text.
fn ip_address_schema() -> Schema {
    let with_format = |format: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .build()
    };
    // anyOf, not oneOf: no text is both, and a checker that ignores formats sees both match.
    AnyOfBuilder::new()
        .description(Some(
            "The IP address, as a string: IPv4 in dotted-decimal form (no leading zeros) or \
             IPv6 in RFC 4291 text form, without brackets, port or zone index. Writ echoes it \
             back in canonical form (RFC 5952 for IPv6).",
        ))
        .examples(["203.0.113.7", "2001:db8::7"])
        .item(with_format(KnownFormat::Ipv4))
        .item(with_format(KnownFormat::Ipv6))
        .build()
        .into()
}

/// The JSON schema of one data-carrying variant of an externally tagged enum: an object with
/// exactly the variant's key (serde rejects any other key, and an object with two).
pub(super) fn tagged_variant(
    name: &str,
    value: impl Into<RefOr<Schema>>,
    description: &str,
) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some(name))
        .description(Some(description))
        .property(name, value)
        .required(name)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build()
        .into()
}

/// The JSON schema of one unit variant of an externally tagged enum: its name, as a string.
pub(super) fn unit_variant(name: &str, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .title(Some(name))
        .description(Some(description))
        .enum_values(Some([name]))
        .build()
        .into()
}

/// The JSON schema of a chrono `DateTime`: an RFC 3339 date-time string.
pub(super) fn date_time_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

/// The period the requested data should cover (RFC 3339 date-times; any offset is accepted and
/// converted to UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
}

/// A lawful-disclosure order as received. Unknown keys are rejected at every level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The authority's own reference for the order: 1 to 200 characters, not all blank, with no
    /// control, bidirectional-control or invisible character (nor a Unicode tag character).
    #[schema(
        examples("PR-2026-0042"),
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$"
    )]
    pub reference: String,
    /// The instrument id, e.g. "eu.epoc"; the part before the first dot is the jurisdiction.
    /// 1 to 100 characters, not all blank, no control characters.
    #[schema(
        examples("eu.epoc"),
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub instrument: String,
    /// Who issued the order (as claimed).
    pub issuer: Authority,
    /// Who validated or authorised it, if the order claims so: the e-Evidence validating
    /// authority, the French prosecutor or investigating judge authorising a police requisition
    /// (CPP arts 77-1-1, 99-3), the UK OCDA or designated senior officer authorising a Part 3
    /// request. Proven only by that authority's own registered signature over the order.
    #[serde(default)]
    pub validator: Option<Authority>,
    /// The order's own dates.
    pub dates: OrderDates,
    /// The legal provisions relied on.
    #[serde(default)]
    pub legal_provisions: Vec<String>,
    /// The statement of reasons (necessity, proportionality, facts).
    #[serde(default)]
    pub reasons: Option<String>,
    /// Information on redress available to the provider and the user.
    #[serde(default)]
    pub redress: Option<String>,
    /// The addressee (the provider's legal representative or establishment); no control,
    /// bidirectional-control or invisible character (nor a Unicode tag character).
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$"
    )]
    pub addressee: Option<String>,
    /// The authority the data are to be sent to, if not the issuer; no control,
    /// bidirectional-control or invisible character (nor a Unicode tag character).
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*$"
    )]
    pub receiving_authority: Option<String>,
    /// The offence under investigation.
    #[serde(default)]
    pub offence: Option<Offence>,
    /// The emergency claim; absent (or null) for a normal order.
    #[serde(default)]
    pub emergency: Option<Emergency>,
    /// Whether the order states that the enforcing state was notified (e-Evidence Art 8).
    #[serde(default)]
    pub enforcing_state_notified: bool,
    /// A non-disclosure order attached to the order.
    #[serde(default)]
    pub non_disclosure: Option<NonDisclosure>,
    /// Whom the order is about: 1 to 100 targets.
    #[schema(min_items = 1, max_items = 100)]
    pub targets: Vec<Target>,
    /// The categories requested, at least one (duplicates are ignored).
    #[schema(min_items = 1)]
    pub categories: Vec<Category>,
    /// The period the data should cover.
    #[serde(default)]
    pub time_window: Option<TimeWindow>,
    /// What the order is for, as stated (UK IPA Part 3 purposes, India BNSS s.94, France art
    /// 60-1-2 4°).
    #[serde(default)]
    pub purpose: Option<Purpose>,
    /// The procedural framework (France: flagrance, preliminary inquiry, judicial investigation).
    #[serde(default)]
    pub procedural_framework: Option<ProceduralFramework>,
    /// The statute authorising the process (US subpoenas).
    #[serde(default)]
    pub statutory_basis: Option<StatutoryBasis>,
    /// Whether the authority states that the order's sole aim is to identify the author of the
    /// offence (France art 60-1-2 2°); never inferred from the categories.
    #[serde(default)]
    pub sole_aim_identification: Option<bool>,
    /// Whether the order seeks to identify or confirm a source of journalistic information
    /// (UK IPA s.77: Judicial Commissioner approval).
    #[serde(default)]
    pub journalistic_source: bool,
    /// When the issuing authority notified that a production request follows (e-Evidence
    /// Annex V): a preservation then continues until that request arrives.
    #[serde(default)]
    pub follow_up_notified_at: Option<DateTime<Utc>>,
    /// When the issuing authority asked to extend the preservation (e-Evidence Annex VI), one
    /// entry per request; only requests received before the hold ends count. At most 10.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub extension_requested_at: Vec<DateTime<Utc>>,
}

/// Facts about the order's authorities taken from Writ's authority registry, never from the
/// order body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFacts {
    /// The issuer's registered kind; `None` when the sender is not in the registry.
    pub issuer_kind: Option<IssuerKind>,
    /// The registered kind of the claimed validator, when the registry knows it.
    #[serde(default)]
    pub validator_kind: Option<IssuerKind>,
    /// The issuing authority's country as registered (ISO 3166-1 alpha-2); an authority may
    /// only issue under its own country's law (or, for EU instruments, as a bound member state).
    #[serde(default)]
    pub issuer_country: Option<String>,
    /// Whether the claimed validation carries the validator's own registered signature.
    /// Without it, a validation is only a claim that a human checks against the signed document.
    #[serde(default)]
    pub validation_signed_by_validator: bool,
    /// How many earlier preservation orders under the same instrument, by the same authority,
    /// still hold any of this order's targets (Writ counts them; the order's claim is not
    /// asked). A renewed request is then an extension, within the number the law allows.
    #[serde(default)]
    pub earlier_preservations: u32,
}

/// Why an order's JSON was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order field `{field}`: {message}")]
pub struct OrderError {
    /// The top-level field at fault (or `(document)` when the JSON itself is malformed).
    pub field: String,
    /// Serde's message, which names nested fields for unknown and missing keys.
    pub message: String,
}

impl Order {
    /// Parses an order from JSON, naming the field at fault on error.
    ///
    /// Serde's own messages name unknown and missing fields; for a value of the wrong type they
    /// do not, so on failure each top-level field is re-parsed alone to find the culprit.
    pub fn from_json(text: &str) -> Result<Order, OrderError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| OrderError {
            field: "(document)".into(),
            message: e.to_string(),
        })?;
        let whole_error = match serde_json::from_value::<Order>(value.clone()) {
            Ok(order) => return Ok(order),
            Err(e) => e.to_string(),
        };
        let field = value
            .as_object()
            .and_then(|object| {
                object
                    .iter()
                    .find(|(key, v)| !top_level_field_parses(key, v))
                    .map(|(key, _)| key.clone())
            })
            .or_else(|| missing_field_name(&whole_error))
            .unwrap_or_else(|| "(order)".into());
        Err(OrderError {
            field,
            message: whole_error,
        })
    }

    /// Whether the order is an emergency order.
    pub fn is_emergency(&self) -> bool {
        self.emergency.is_some()
    }

    /// Whether a required-element path (see [`ORDER_ELEMENTS`]) is present in this order.
    /// `None` when the path names no element.
    pub fn has_element(&self, path: &str) -> Option<bool> {
        let filled = |s: &str| !s.trim().is_empty();
        let opt = |s: &Option<String>| s.as_deref().is_some_and(filled);
        let validator = |f: &dyn Fn(&Authority) -> bool| self.validator.as_ref().is_none_or(f);
        let ip_targets = || {
            self.targets.iter().filter_map(|t| match t {
                Target::Ip(ip) => Some(ip),
                _ => None,
            })
        };
        let present = match path {
            "reference" => filled(&self.reference),
            "instrument" => filled(&self.instrument),
            "issuer.person" => filled(&self.issuer.person),
            "issuer.authority" => filled(&self.issuer.authority),
            "issuer.country" => filled(&self.issuer.country),
            "issuer.file_number" => opt(&self.issuer.file_number),
            "validator" => self.validator.is_some(),
            "validator.person" => validator(&|v| filled(&v.person)),
            "validator.authority" => validator(&|v| filled(&v.authority)),
            "validator.file_number" => validator(&|v| opt(&v.file_number)),
            "dates.issued_at" => true,
            "dates.validated_at" => self.dates.validated_at.is_some(),
            "dates.expires_at" => self.dates.expires_at.is_some(),
            "dates.respond_by" => self.dates.respond_by.is_some(),
            "legal_provisions" => self.legal_provisions.iter().any(|p| filled(p)),
            "reasons" => opt(&self.reasons),
            "redress" => opt(&self.redress),
            "addressee" => opt(&self.addressee),
            "receiving_authority" => opt(&self.receiving_authority),
            "offence" => self.offence.is_some(),
            "offence.description" => self
                .offence
                .as_ref()
                .is_some_and(|o| filled(&o.description)),
            "offence.max_custodial_months" => self
                .offence
                .as_ref()
                .is_some_and(|o| o.max_custodial_months.is_some()),
            "offence.codes" => self.offence.as_ref().is_some_and(|o| !o.codes.is_empty()),
            "offence.sentence_imposed_months" => self
                .offence
                .as_ref()
                .is_some_and(|o| o.sentence_imposed_months.is_some()),
            "offence.over_network" => self
                .offence
                .as_ref()
                .is_some_and(|o| o.over_network.is_some()),
            "emergency.justification" => self
                .emergency
                .as_ref()
                .is_none_or(|e| filled(&e.justification)),
            "non_disclosure" => self.non_disclosure.is_some(),
            "targets" => !self.targets.is_empty(),
            "targets.ip.port" => ip_targets().all(|ip| ip.port.is_some()),
            "targets.ip.time_zone" => ip_targets().all(|ip| opt(&ip.time_zone)),
            "categories" => !self.categories.is_empty(),
            "time_window" => self.time_window.is_some(),
            "purpose" => self.purpose.is_some(),
            "purpose.statement" => self.purpose.as_ref().is_some_and(|p| opt(&p.statement)),
            "procedural_framework" => self.procedural_framework.is_some(),
            "statutory_basis" => self
                .statutory_basis
                .as_ref()
                .is_some_and(|b| filled(&b.statute)),
            "sole_aim_identification" => self.sole_aim_identification.is_some(),
            _ => return None,
        };
        Some(present)
    }
}

/// One element a policy can require, as an `Order` field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderElement {
    /// The path used in policy files' `required_elements`.
    pub path: &'static str,
    /// What it means, in plain words.
    pub meaning: &'static str,
}

/// Every element a policy may list in `required_elements`. Paths under an optional part
/// (`validator.*`, `emergency.*`, `targets.ip.*`) are required only when that part is present:
/// "emergency.justification" means "an emergency order must say why".
#[rustfmt::skip]
pub const ORDER_ELEMENTS: &[OrderElement] = &[
    OrderElement { path: "reference", meaning: "the authority's reference" },
    OrderElement { path: "instrument", meaning: "the instrument relied on" },
    OrderElement { path: "issuer.person", meaning: "the person who issued the order" },
    OrderElement { path: "issuer.authority", meaning: "the issuing authority" },
    OrderElement { path: "issuer.country", meaning: "the issuing state" },
    OrderElement { path: "issuer.file_number", meaning: "the issuing authority's file number" },
    OrderElement { path: "validator", meaning: "a validating authority" },
    OrderElement { path: "validator.person", meaning: "the validating person (if validated)" },
    OrderElement { path: "validator.authority", meaning: "the validating authority (if validated)" },
    OrderElement { path: "validator.file_number", meaning: "the validating authority's file number (if validated)" },
    OrderElement { path: "dates.issued_at", meaning: "the date of issue" },
    OrderElement { path: "dates.validated_at", meaning: "the date of validation" },
    OrderElement { path: "dates.expires_at", meaning: "the end of the order's validity" },
    OrderElement { path: "dates.respond_by", meaning: "the reply date asked for" },
    OrderElement { path: "legal_provisions", meaning: "the legal provisions relied on" },
    OrderElement { path: "reasons", meaning: "the statement of reasons" },
    OrderElement { path: "redress", meaning: "information on redress" },
    OrderElement { path: "addressee", meaning: "the addressee" },
    OrderElement { path: "receiving_authority", meaning: "the authority receiving the data" },
    OrderElement { path: "offence", meaning: "the offence" },
    OrderElement { path: "offence.description", meaning: "a description of the offence" },
    OrderElement { path: "offence.max_custodial_months", meaning: "the maximum custodial sentence" },
    OrderElement { path: "offence.codes", meaning: "offence codes" },
    OrderElement { path: "offence.over_network", meaning: "whether the offence was committed over a network" },
    OrderElement { path: "offence.sentence_imposed_months", meaning: "the sentence imposed (execution of a sentence)" },
    OrderElement { path: "emergency.justification", meaning: "the reasons for an emergency (if emergency)" },
    OrderElement { path: "non_disclosure", meaning: "a non-disclosure order" },
    OrderElement { path: "targets", meaning: "at least one target identifier" },
    OrderElement { path: "targets.ip.port", meaning: "the source port of each IP target" },
    OrderElement { path: "targets.ip.time_zone", meaning: "the time zone of each IP target" },
    OrderElement { path: "categories", meaning: "the data categories requested" },
    OrderElement { path: "time_window", meaning: "the time range of the data" },
    OrderElement { path: "purpose", meaning: "the purpose of the order" },
    OrderElement { path: "purpose.statement", meaning: "the purpose stated in writing" },
    OrderElement { path: "procedural_framework", meaning: "the procedural framework (flagrance, preliminary inquiry, judicial investigation)" },
    OrderElement { path: "statutory_basis", meaning: "the statutory basis of the process (kind and statute)" },
    OrderElement { path: "sole_aim_identification", meaning: "whether the sole aim is to identify the author" },
];

/// Whether one top-level field of an order parses on its own (used to name the culprit).
fn top_level_field_parses(key: &str, value: &serde_json::Value) -> bool {
    fn ok<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> bool {
        serde_json::from_value::<T>(value.clone()).is_ok()
    }
    match key {
        "reference" | "instrument" => ok::<String>(value),
        "issuer" => ok::<Authority>(value),
        "validator" => ok::<Option<Authority>>(value),
        "dates" => ok::<OrderDates>(value),
        "legal_provisions" => ok::<Vec<String>>(value),
        "reasons" | "redress" | "addressee" | "receiving_authority" => ok::<Option<String>>(value),
        "offence" => ok::<Option<Offence>>(value),
        "emergency" => ok::<Option<Emergency>>(value),
        "enforcing_state_notified" => ok::<bool>(value),
        "non_disclosure" => ok::<Option<NonDisclosure>>(value),
        "targets" => ok::<Vec<Target>>(value),
        "categories" => ok::<Vec<Category>>(value),
        "time_window" => ok::<Option<TimeWindow>>(value),
        "purpose" => ok::<Option<Purpose>>(value),
        "procedural_framework" => ok::<Option<ProceduralFramework>>(value),
        "statutory_basis" => ok::<Option<StatutoryBasis>>(value),
        "sole_aim_identification" => ok::<Option<bool>>(value),
        "journalistic_source" => ok::<bool>(value),
        "follow_up_notified_at" => ok::<Option<DateTime<Utc>>>(value),
        "extension_requested_at" => ok::<Vec<DateTime<Utc>>>(value),
        // An unknown key is the culprit; serde's message already names it.
        _ => false,
    }
}

/// Extracts `x` from serde's "missing field `x`" message (a missing key has no value to re-parse).
fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    rest.split('`').next().map(str::to_owned)
}
