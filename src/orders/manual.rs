//! An order that came on paper, entered field by field: the form's fields (generated from the
//! instrument's required elements), turning the filled form into Writ's order JSON with an
//! error beside each field at fault, and the further papers (translations, annexes) kept with
//! the order.
//!
//! The form produces the same order JSON an authority would send, and that JSON takes the same
//! path as the API's and the raw-JSON form's (`intake::check_parts`, then `intake::store`): a
//! form-entered order is decided exactly like any other.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::OrderError;
use super::validate::FieldError;
use crate::db::DbConn;
use crate::db::schema::order_attachments;
use crate::digest::sha256_hex;
use crate::metadata::normalize;
use crate::policy::{Category, Deployment, ORDER_ELEMENTS, PolicySet};

/// How a field is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// One line of text.
    Text,
    /// Several lines of text.
    Long,
    /// One item per line.
    Lines,
    /// A date and time, in the viewer's time zone.
    When,
    /// A whole number.
    Number,
    /// One of a few values (the empty value: not stated).
    Choice(&'static [&'static str]),
    /// A box to tick.
    Flag,
}

/// One field of the manual-intake form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The form field's name: the order JSON path it fills (`issuer.person`).
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// How it is entered.
    pub input: Input,
    /// Every order needs it, whatever the instrument (the order JSON requires it).
    pub always: bool,
    /// A hint shown under the field.
    pub hint: &'static str,
}

const YES_NO: &[&str] = &["yes", "no"];
const ISSUER_KINDS: &[&str] = &[
    "judge",
    "court",
    "investigating_judge",
    "prosecutor",
    "police",
    "administrative_authority",
    "ocda",
    "designated_senior_officer",
];
const GAG_ENDS: &[&str] = &["open_ended", "until"];
const PURPOSES: &[&str] = &[
    "crime",
    "national_security",
    "economic_well_being",
    "public_safety",
    "preventing_death_or_injury",
    "missing_or_vulnerable_person",
    "miscarriage_of_justice",
    "executing_sentence",
    "other",
];
const FRAMEWORKS: &[&str] = &[
    "flagrant_offence",
    "preliminary_inquiry",
    "judicial_investigation",
];
const BASIS_KINDS: &[&str] = &[
    "administrative_subpoena",
    "grand_jury_subpoena",
    "trial_subpoena",
    "other",
];

const fn f(name: &'static str, label: &'static str, input: Input) -> Field {
    Field {
        name,
        label,
        input,
        always: false,
        hint: "",
    }
}

const fn always(mut field: Field) -> Field {
    field.always = true;
    field
}

const fn hint(mut field: Field, hint: &'static str) -> Field {
    field.hint = hint;
    field
}

/// Every field the form knows, in the order of a paper order. The categories are ticked one by
/// one (`category.<name>`), outside this list.
pub const FIELDS: &[Field] = &[
    always(f("reference", "The authority's reference", Input::Text)),
    always(f(
        "issuer.kind",
        "The issuer's kind, as the order claims it",
        Input::Choice(ISSUER_KINDS),
    )),
    always(f(
        "issuer.person",
        "The person who issued the order (name and function)",
        Input::Text,
    )),
    always(f(
        "issuer.authority",
        "The issuing authority, as named in the order",
        Input::Text,
    )),
    always(hint(
        f("issuer.country", "The issuing state", Input::Text),
        "ISO 3166-1 alpha-2, e.g. FR",
    )),
    f(
        "issuer.file_number",
        "The issuing authority's file number",
        Input::Text,
    ),
    always(f("dates.issued_at", "Issued on", Input::When)),
    f("dates.validated_at", "Validated on", Input::When),
    f("dates.expires_at", "Valid until", Input::When),
    f("dates.respond_by", "Reply asked for by", Input::When),
    hint(
        f(
            "legal_provisions",
            "The legal provisions relied on",
            Input::Lines,
        ),
        "one per line",
    ),
    f("reasons", "The statement of reasons", Input::Long),
    f("redress", "Information on redress", Input::Long),
    f("addressee", "The addressee", Input::Text),
    f(
        "receiving_authority",
        "The authority to receive the data (if not the issuer)",
        Input::Text,
    ),
    f("offence.description", "The offence", Input::Long),
    f(
        "offence.max_custodial_months",
        "Maximum custodial sentence (months)",
        Input::Number,
    ),
    hint(
        f("offence.codes", "Offence codes", Input::Text),
        "separated by commas, e.g. eu.dir_2019_713",
    ),
    f(
        "offence.over_network",
        "Committed over an electronic communications network",
        Input::Choice(YES_NO),
    ),
    f(
        "offence.sentence_imposed_months",
        "Sentence imposed (months; executing a sentence)",
        Input::Number,
    ),
    always(hint(
        f("targets", "Whom the order is about", Input::Lines),
        "one per line: username alice · user_id u-1 · phone_number +33612345678 · ip 203.0.113.7 port 51234 at 2026-08-30T10:14:03+02:00 zone Europe/Paris (the moment as the order states it, with its offset)",
    )),
    f("time_window.from", "Data from", Input::When),
    f("time_window.to", "Data until", Input::When),
    f("emergency", "This is an emergency order", Input::Flag),
    f(
        "emergency.justification",
        "Why the authority says it is an emergency",
        Input::Long,
    ),
    f(
        "non_disclosure.ends",
        "Non-disclosure order (the user must not be told)",
        Input::Choice(GAG_ENDS),
    ),
    f(
        "non_disclosure.until",
        "Non-disclosure ends on",
        Input::When,
    ),
    f(
        "non_disclosure.legal_basis",
        "Non-disclosure made under",
        Input::Text,
    ),
    f(
        "validator.kind",
        "The validator's kind",
        Input::Choice(ISSUER_KINDS),
    ),
    f("validator.person", "The validating person", Input::Text),
    f(
        "validator.authority",
        "The validating authority",
        Input::Text,
    ),
    f(
        "validator.country",
        "The validating authority's state",
        Input::Text,
    ),
    f(
        "validator.file_number",
        "The validating authority's file number",
        Input::Text,
    ),
    f("purpose.kind", "The purpose", Input::Choice(PURPOSES)),
    f(
        "purpose.statement",
        "The purpose, in the order's words",
        Input::Long,
    ),
    f(
        "procedural_framework",
        "The procedural framework",
        Input::Choice(FRAMEWORKS),
    ),
    f(
        "statutory_basis.kind",
        "The kind of process",
        Input::Choice(BASIS_KINDS),
    ),
    f(
        "statutory_basis.statute",
        "The statute authorising it",
        Input::Text,
    ),
    f(
        "sole_aim_identification",
        "The sole aim is to identify the author",
        Input::Choice(YES_NO),
    ),
    f(
        "journalistic_source",
        "It seeks a journalistic source",
        Input::Flag,
    ),
    f(
        "enforcing_state_notified",
        "The order says the enforcing state was notified",
        Input::Flag,
    ),
];

/// The form field where a missing required element is entered.
pub fn field_of_element(path: &str) -> &'static str {
    match path {
        "validator" => "validator.authority",
        "offence" => "offence.description",
        "targets.ip.port" | "targets.ip.time_zone" => "targets",
        "non_disclosure" => "non_disclosure.ends",
        "time_window" => "time_window.from",
        "purpose" => "purpose.kind",
        "statutory_basis" => "statutory_basis.statute",
        "categories" => "categories",
        other => FIELDS
            .iter()
            .find(|f| f.name == other)
            .map_or("", |f| f.name),
    }
}

/// The form for one instrument: its required fields first, the rest after.
#[derive(Debug, Clone)]
pub struct Form {
    /// The instrument id.
    pub instrument: String,
    /// Its name.
    pub instrument_name: String,
    /// The fields this instrument requires (and those every order needs), each with the
    /// element's meaning when the instrument names it.
    pub required: Vec<Field>,
    /// The other fields an order may state.
    pub optional: Vec<Field>,
    /// The required elements that apply only when a part is present (`validator.*` when the
    /// order names a validator, `emergency.justification` for an emergency order, ...), in
    /// words.
    pub conditional: Vec<String>,
}

/// The instruments a person may choose, as (id, name), by id.
pub fn instruments(set: &PolicySet) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = set
        .instruments()
        .map(|(id, spec)| (id.to_owned(), spec.name.clone()))
        .collect();
    out.sort();
    out
}

/// The form of `instrument`; `None` when the policy set does not know it.
pub fn form(set: &PolicySet, deployment: &Deployment, instrument: &str) -> Option<Form> {
    let spec = set.instrument(instrument)?;
    let elements = crate::policy::required_elements(set, deployment, instrument)?;
    let conditional_part = |p: &str| {
        p.starts_with("validator.") || p.starts_with("emergency.") || p.starts_with("targets.ip.")
    };
    let required_names: Vec<&str> = elements
        .iter()
        .filter(|p| !conditional_part(p))
        .map(|p| field_of_element(p))
        .collect();
    let (required, optional): (Vec<Field>, Vec<Field>) = FIELDS
        .iter()
        .copied()
        .partition(|f| f.always || required_names.contains(&f.name));
    let conditional = elements
        .iter()
        .filter(|p| conditional_part(p))
        .filter_map(|p| ORDER_ELEMENTS.iter().find(|e| e.path == *p))
        .map(|e| e.meaning.to_owned())
        .collect();
    Some(Form {
        instrument: instrument.to_owned(),
        instrument_name: spec.name.clone(),
        required,
        optional,
        conditional,
    })
}

/// The filled form: each field's text as entered, by name.
pub type Values = BTreeMap<String, String>;

/// A date and time from a `datetime-local` field, in the IANA zone `zone`.
fn instant(text: &str, zone: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// One target line (`username alice`, `ip 203.0.113.7 port 51234 at <time> zone <zone>`) as
/// the order JSON's target.
fn target(line: &str) -> Result<Value, String> {
    let mut words = line.split_whitespace();
    let kind = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    match kind {
        "username" | "user_id" | "phone_number" => match rest.as_slice() {
            [value] => Ok(json!({ kind: value })),
            _ => Err(format!("`{kind}` takes exactly one value")),
        },
        "ip" => {
            let Some((address, mut rest)) = rest.split_first() else {
                return Err("`ip` needs an address".into());
            };
            let mut ip = Map::new();
            ip.insert("address".into(), json!(address));
            while let [key, value, more @ ..] = rest {
                match *key {
                    "port" => {
                        let port: u16 = value
                            .parse()
                            .map_err(|_| format!("port `{value}` is not a port number"))?;
                        ip.insert("port".into(), json!(port));
                    }
                    "at" => {
                        ip.insert("timestamp".into(), json!(value));
                    }
                    "zone" => {
                        ip.insert("time_zone".into(), json!(value));
                    }
                    other => return Err(format!("`{other}` is not port, at or zone")),
                }
                rest = more;
            }
            if !rest.is_empty() {
                return Err(format!("`{}` has no value", rest.join(" ")));
            }
            if !ip.contains_key("timestamp") {
                return Err("an IP target needs `at` and the moment, with its offset".into());
            }
            Ok(json!({ "ip": ip }))
        }
        other => Err(format!(
            "`{other}` is not username, user_id, phone_number or ip"
        )),
    }
}

/// Turns the filled form into the order JSON for `instrument`, or the errors, each at the
/// form field it concerns (the empty name: the form as a whole). Dates are read in `zone`.
/// Unless `incomplete` (the person confirms the paper order lacks them), every element the
/// instrument requires must be given.
pub fn order_json(
    values: &Values,
    zone: &str,
    set: &PolicySet,
    deployment: &Deployment,
    incomplete: bool,
) -> Result<String, Vec<FieldError>> {
    let get = |name: &str| values.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut errors = Vec::new();
    let instrument = get("instrument").unwrap_or_default().to_owned();
    let Some(form) = form(set, deployment, &instrument) else {
        return Err(vec![FieldError::new(
            "instrument",
            "is not an instrument of the policy set",
        )]);
    };
    let mut order = Map::new();
    order.insert(
        "reference".into(),
        json!(get("reference").unwrap_or_default()),
    );
    order.insert("instrument".into(), json!(instrument));
    // A group (`issuer`, `offence`, ...) is written when one of its fields is filled.
    let mut groups: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for field in FIELDS {
        let Some(text) = get(field.name) else {
            continue;
        };
        let value = match field.input {
            Input::Text | Input::Long => json!(text),
            Input::Lines if field.name == "targets" => continue,
            Input::Lines => json!(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
            ),
            Input::When => match instant(text, zone) {
                Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                None => {
                    errors.push(FieldError::new(field.name, "is not a date and time"));
                    continue;
                }
            },
            Input::Number => match text.parse::<u32>() {
                Ok(n) => json!(n),
                Err(_) => {
                    errors.push(FieldError::new(field.name, "is not a whole number"));
                    continue;
                }
            },
            Input::Choice(choices) => {
                if !choices.contains(&text) {
                    errors.push(FieldError::new(
                        field.name,
                        format!("must be one of: {}", choices.join(", ")),
                    ));
                    continue;
                }
                if choices == YES_NO {
                    json!(text == "yes")
                } else {
                    json!(text)
                }
            }
            Input::Flag => json!(true),
        };
        match field.name {
            "offence.codes" => {
                let codes: Vec<&str> = text
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                groups
                    .entry("offence")
                    .or_default()
                    .insert("codes".into(), json!(codes));
            }
            "emergency" | "non_disclosure.ends" | "non_disclosure.until" => {}
            name => match name.split_once('.') {
                Some((group, key)) => {
                    groups.entry(group).or_default().insert(key.into(), value);
                }
                None => {
                    order.insert(name.into(), value);
                }
            },
        }
    }
    if get("emergency").is_some() || get("emergency.justification").is_some() {
        groups
            .entry("emergency")
            .or_default()
            .entry("justification")
            .or_insert_with(|| json!(""));
    } else {
        groups.remove("emergency");
    }
    match get("non_disclosure.ends") {
        Some("open_ended") => {
            groups
                .entry("non_disclosure")
                .or_default()
                .insert("ends".into(), json!("open_ended"));
        }
        Some("until") => match get("non_disclosure.until").and_then(|t| instant(t, zone)) {
            Some(t) => {
                let at = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                groups
                    .entry("non_disclosure")
                    .or_default()
                    .insert("ends".into(), json!({ "until": at }));
            }
            None => errors.push(FieldError::new(
                "non_disclosure.until",
                "a non-disclosure order with an end needs its date and time",
            )),
        },
        _ => {
            if groups.contains_key("non_disclosure") || get("non_disclosure.until").is_some() {
                errors.push(FieldError::new(
                    "non_disclosure.ends",
                    "say whether the non-disclosure order is open-ended or ends on a date",
                ));
            }
            groups.remove("non_disclosure");
        }
    }
    let mut targets = Vec::new();
    for (i, line) in get("targets")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        match target(line) {
            Ok(t) => targets.push(t),
            Err(e) => errors.push(FieldError::new("targets", format!("line {}: {e}", i + 1))),
        }
    }
    order.insert("targets".into(), json!(targets));
    let categories: Vec<&str> = Category::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| get(&format!("category.{c}")).is_some())
        .collect();
    order.insert("categories".into(), json!(categories.clone()));
    let dates = groups.remove("dates").unwrap_or_default();
    order.insert("dates".into(), Value::Object(dates));
    for (group, members) in groups {
        order.insert(group.into(), Value::Object(members));
    }
    // Every order needs these, whatever the instrument.
    for field in FIELDS.iter().filter(|f| f.always) {
        if get(field.name).is_none() && !errors.iter().any(|e| e.field == field.name) {
            errors.push(FieldError::new(field.name, "is required"));
        }
    }
    if categories.is_empty() {
        errors.push(FieldError::new("categories", "tick at least one category"));
    }
    let text = serde_json::to_string_pretty(&Value::Object(order))
        .map_err(|e| vec![FieldError::new("", e.to_string())])?;
    let parsed = match super::validate::check_order(&text, "order") {
        Ok(parsed) => Some(parsed),
        Err(found) => {
            for e in found {
                let field = form_field(&e.field);
                if !errors.iter().any(|x| x.field == field) {
                    errors.push(FieldError::new(field, e.message));
                }
            }
            None
        }
    };
    if !incomplete {
        for path in
            crate::policy::required_elements(set, deployment, &instrument).unwrap_or_default()
        {
            let field = field_of_element(path);
            // An element under an optional part is judged on the parsed order (it is required
            // only when the part is there); any other, on whether its field was filled.
            let lacking = match &parsed {
                Some(order) => order.has_element(path) == Some(false),
                None => match path {
                    "categories" => categories.is_empty(),
                    p if p.contains('.')
                        && (p.starts_with("validator.")
                            || p.starts_with("emergency.")
                            || p.starts_with("targets.ip.")) =>
                    {
                        false
                    }
                    _ => get(field).is_none(),
                },
            };
            if lacking && !errors.iter().any(|e| e.field == field) {
                let meaning = ORDER_ELEMENTS
                    .iter()
                    .find(|e| e.path == path)
                    .map_or(path, |e| e.meaning);
                errors.push(FieldError::new(
                    field,
                    format!("{} requires {meaning}", form.instrument_name),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(text)
    } else {
        Err(errors)
    }
}

/// The form field of an order JSON path from `validate::check_order` (`order.targets[1].ip`
/// -> `targets`, `order.issuer.person` -> `issuer.person`); the empty name when none.
pub fn form_field(path: &str) -> String {
    let path = path.strip_prefix("order.").unwrap_or(path);
    let path = path.split('[').next().unwrap_or(path);
    let mut candidate = path;
    loop {
        if FIELDS.iter().any(|f| f.name == candidate) {
            return candidate.to_owned();
        }
        if candidate == "categories" {
            return "categories".into();
        }
        if candidate == "non_disclosure" {
            return "non_disclosure.ends".into();
        }
        match candidate.rsplit_once('.') {
            Some((parent, _)) => candidate = parent,
            None => return String::new(),
        }
    }
}

/// A further paper that came with an order (a translation, an annex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// What it is, in the words of the person entering it.
    pub label: String,
    /// The uploaded file's name.
    pub file_name: String,
    /// The file.
    pub content: Vec<u8>,
}

/// A stored attachment, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its place among the order's attachments, from 1.
    pub position: i32,
    /// What it is.
    pub label: String,
    /// The uploaded file's name.
    pub file_name: String,
    /// SHA-256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Who entered it.
    pub added_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// At most this many further papers per order.
pub const MAX_ATTACHMENTS: usize = 5;

/// Keeps the attachments with the order, inside the caller's transaction (the order's intake),
/// with one audit entry naming each one's SHA-256.
pub fn store_attachments(
    conn: &mut DbConn,
    order_id: &str,
    staff: &crate::staff::Staff,
    attachments: &[NewAttachment],
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    if attachments.is_empty() {
        return Ok(());
    }
    let mut entry =
        crate::audit::NewEntry::new(staff.actor(), crate::audit::Event::OrderAttachmentsStored)
            .order(order_id)
            .reference("attachments", attachments.len());
    for (i, a) in attachments.iter().enumerate() {
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        let sha256 = sha256_hex(&a.content);
        diesel::insert_into(order_attachments::table)
            .values((
                order_attachments::order_id.eq(order_id),
                order_attachments::position.eq(position),
                order_attachments::label.eq(&a.label),
                order_attachments::file_name.eq(&a.file_name),
                order_attachments::sha256.eq(&sha256),
                order_attachments::size.eq(i64::try_from(a.content.len()).unwrap_or(i64::MAX)),
                order_attachments::content.eq(&a.content),
                order_attachments::added_by.eq(&staff.username),
                order_attachments::created_at.eq(now.timestamp_micros()),
            ))
            .execute(conn)?;
        entry = entry.reference(format!("attachment_{position}_sha256"), sha256.as_str());
    }
    crate::audit::append(conn, &entry, now)?;
    Ok(())
}

/// Checks the attachments a person gave (labels and names within their limits; a file without
/// a label is labelled by its name), each error at its form field (`attachment.N`).
pub fn check_attachments(
    given: Vec<(usize, Option<String>, String, Vec<u8>)>,
) -> Result<Vec<NewAttachment>, Vec<FieldError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, label, file_name, content) in given {
        let field = format!("attachment.{n}");
        let file_name: String = file_name
            .chars()
            .filter(|c| !c.is_control() && !crate::text::is_hidden(*c))
            .take(200)
            .collect();
        let label = label
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| file_name.clone());
        if content.is_empty() {
            errors.push(FieldError::new(field, "the file is empty"));
            continue;
        }
        if label.chars().count() > 200 || label.chars().any(|c| c.is_control()) {
            errors.push(FieldError::new(
                field,
                "the description may have at most 200 characters, on one line",
            ));
            continue;
        }
        let file_name = if file_name.trim().is_empty() {
            format!("attachment-{n}")
        } else {
            file_name
        };
        out.push(NewAttachment {
            label,
            file_name,
            content,
        });
    }
    if out.len() > MAX_ATTACHMENTS {
        errors.push(FieldError::new(
            "",
            format!("at most {MAX_ATTACHMENTS} further papers per order"),
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The attachments of an order, without their content, in order.
pub fn attachments(conn: &mut DbConn, order_id: &str) -> Result<Vec<Attachment>, OrderError> {
    Ok(order_attachments::table
        .filter(order_attachments::order_id.eq(order_id))
        .order(order_attachments::position)
        .select((
            order_attachments::position,
            order_attachments::label,
            order_attachments::file_name,
            order_attachments::sha256,
            order_attachments::size,
            order_attachments::added_by,
            order_attachments::created_at,
        ))
        .load::<(i32, String, String, String, i64, String, i64)>(conn)?
        .into_iter()
        .map(
            |(position, label, file_name, sha256, size, added_by, at)| Attachment {
                position,
                label,
                file_name,
                sha256,
                size,
                added_by,
                created_at: normalize::from_micros(at),
            },
        )
        .collect())
}

/// One attachment's content, for a staff member's download (audited like the signed
/// document's viewing).
pub fn attachment(
    conn: &mut DbConn,
    order_id: &str,
    position: i32,
    actor: &crate::audit::Actor,
) -> Result<(Attachment, Vec<u8>), OrderError> {
    crate::db::write_tx(conn, |c| {
        let row: (String, String, String, i64, Vec<u8>, String, i64) = order_attachments::table
            .find((order_id, position))
            .select((
                order_attachments::label,
                order_attachments::file_name,
                order_attachments::sha256,
                order_attachments::size,
                order_attachments::content,
                order_attachments::added_by,
                order_attachments::created_at,
            ))
            .first(c)
            .optional()?
            .ok_or(OrderError::NotFound)?;
        let (label, file_name, sha256, size, content, added_by, at) = row;
        let entry =
            crate::audit::NewEntry::new(actor.clone(), crate::audit::Event::OrderDocumentViewed)
                .order(order_id)
                .reference("attachment", u64::try_from(position).unwrap_or(0))
                .reference("document_sha256", sha256.as_str());
        crate::audit::append(c, &entry, Utc::now())?;
        Ok((
            Attachment {
                position,
                label,
                file_name,
                sha256,
                size,
                added_by,
                created_at: normalize::from_micros(at),
            },
            content,
        ))
    })
}

/// An order entered by hand: its JSON (from the form or typed), its signed document, its
/// further papers and the true time of receipt.
pub struct Entry<'a> {
    /// The sending authority (registry id) the person chose.
    pub authority: &'a str,
    /// The order JSON.
    pub order_json: String,
    /// The scanned or signed order (PDF).
    pub document: Vec<u8>,
    /// The validator's signature, if the order carries one.
    pub validation: Option<String>,
    /// The true time of receipt.
    pub received_at: DateTime<Utc>,
    /// Who enters it.
    pub staff: &'a crate::staff::Staff,
    /// Further papers, already checked.
    pub attachments: Vec<NewAttachment>,
    /// The document's size limit (`api.document_limit_bytes`).
    pub document_limit: usize,
    /// Whether validations not bound to this Writ are accepted.
    pub accept_unbound: bool,
}

/// Enters an order by hand: checked like any order (`intake::check_parts`, the document as
/// bytes), then stored and decided with channel `manual`, its attachments and their audit entry
/// in the same transaction. Returns the order's id.
pub fn enter(
    conn: &mut DbConn,
    entry: Entry<'_>,
    policies: &PolicySet,
    deployment: &Deployment,
    mail: &crate::settings::MailSettings,
    now: DateTime<Utc>,
) -> Result<String, OrderError> {
    let raw = serde_json::value::RawValue::from_string(entry.order_json.trim().to_owned())
        .map_err(|e| OrderError::Invalid {
            kind: super::InvalidKind::Unprocessable,
            slug: "invalid-order",
            title: "The order is not valid".into(),
            errors: vec![FieldError::new("order", format!("is not JSON: {e}"))],
            submission_id: None,
        })?;
    let checked = super::intake::check_parts(
        conn,
        &raw,
        Some(super::intake::Document::Raw(entry.document)),
        entry.validation,
        entry.authority,
        entry.document_limit,
        true,
        &crate::authority::validation::Binding {
            now: now.timestamp(),
            accept_unbound: entry.accept_unbound,
        },
    )?;
    crate::db::write_tx(conn, |c| {
        let view = super::intake::store(
            c,
            entry.authority,
            &checked,
            policies,
            deployment,
            &super::intake::Receipt {
                received_at: entry.received_at,
                entered_by: Some(entry.staff),
                mail: Some(mail),
                channel: "manual",
            },
            now,
        )?;
        store_attachments(c, &view.id, entry.staff, &entry.attachments, now)?;
        Ok(view.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_lines_read_as_the_order_json_writes_them() {
        assert_eq!(target("username alice"), Ok(json!({"username": "alice"})));
        assert_eq!(
            target("ip 203.0.113.7 port 51234 at 2026-08-30T10:14:03+02:00 zone Europe/Paris"),
            Ok(json!({"ip": {"address": "203.0.113.7", "port": 51234,
                "timestamp": "2026-08-30T10:14:03+02:00", "time_zone": "Europe/Paris"}}))
        );
        assert!(target("ip 203.0.113.7 port x at now").is_err());
        assert!(target("ip 203.0.113.7").is_err());
        assert!(target("email a@b").is_err());
        assert_eq!(form_field("order.targets[1].ip.port"), "targets");
        assert_eq!(form_field("order.issuer.person"), "issuer.person");
        assert_eq!(form_field("order.time_window.to"), "time_window.to");
        assert_eq!(form_field("order.categories[0]"), "categories");
    }
}
