//! Reply templates: the words the legal team starts from, always editable before sending.
//! A refusal pre-filled from the engine's reasons, the "data not held" reply (Annex III on EU
//! orders), and standard clarification questions. Nothing here sends anything: the texts
//! travel through the ordinary refuse, not-held and ask actions, which check and record them.

use serde::Serialize;

use crate::policy::Decision;

/// A template the order page offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    /// Stable key (for tests and links).
    pub key: &'static str,
    /// What it is, for people.
    pub label: &'static str,
    /// The text, pre-filled and editable.
    pub text: String,
}

/// Whether the order is one of the EU's e-Evidence instruments (answered with Annex III).
pub fn is_eu_order(scope: &Decision) -> bool {
    scope.instrument.starts_with("eu.")
}

/// The refusal, pre-filled from the engine's reasons (empty when the engine refused nothing).
pub fn refusal(scope: &Decision) -> String {
    if scope.refusals.is_empty() {
        return String::new();
    }
    let mut out = String::from("The order cannot be complied with, for these reasons:\n");
    for f in &scope.refusals {
        out.push_str("- ");
        out.push_str(f.text.trim());
        if let Some(c) = &f.citation {
            out.push_str(" (");
            out.push_str(c.trim());
            out.push(')');
        }
        out.push('\n');
    }
    out
}

/// The "data not held" reply: on EU orders the Annex III wording, elsewhere a plain one.
pub fn not_held(scope: &Decision) -> String {
    if is_eu_order(scope) {
        format!(
            "Annex III (Regulation (EU) 2023/1543, Art 10(7) and (8)): the addressee cannot comply with the order {} because the data requested are not stored by the service provider. The data were not held at the time the order was received; no data are therefore produced or preserved.",
            scope.order_reference
        )
    } else {
        format!(
            "The provider holds no data that the order {} reaches: no account or record matches the targets within the order's time window. Nothing is therefore produced or preserved.",
            scope.order_reference
        )
    }
}

/// Standard clarification questions: (key, label, text).
pub const QUESTIONS: [(&str, &str, &str); 4] = [
    (
        "time_zone",
        "Time zone of the window",
        "Please confirm the time zone of the time window stated in the order (UTC or local time), so that the records searched cover exactly the period you intend.",
    ),
    (
        "ip_port",
        "Port of an IPv4 address",
        "An IPv4 address without a source port may be shared by many users behind carrier-grade NAT. Please state the source port and the exact time (to the second, with its time zone) of each IP address in the order.",
    ),
    (
        "identifier",
        "Exact target identifier",
        "We could not identify the account from the identifier given. Please state the exact identifier (user id, username or phone number in international format) as it appears on our service.",
    ),
    (
        "validation",
        "Validation of the order",
        "The order states that it was validated, but the validation is not signed. Please send the validating authority's signed validation, or confirm its name, file number and a contact through which we can verify it.",
    ),
];

/// The clarification templates, in the order offered.
pub fn questions() -> Vec<Template> {
    QUESTIONS
        .iter()
        .map(|(key, label, text)| Template {
            key,
            label,
            text: (*text).to_owned(),
        })
        .collect()
}

/// The standard words for a released package with no records (the "no data held" answer).
pub fn empty_release(scope: &Decision) -> String {
    format!(
        "{} The signed, empty package can be downloaded from the order-intake API as a record of the answer.",
        not_held(scope)
    )
}
