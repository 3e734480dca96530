//! The records certificate: a short, readable statement of who produced the records of a
//! released package, from which systems and when, signed with the package key so that an
//! authority can file it with a court and anyone can check it offline.
//!
//! The certificate is UTF-8 text: a heading, an explanatory paragraph, then one `name: value`
//! line per fact, and last a single signature line:
//!
//! ```text
//! signature: ed25519 <key id> <base64 signature>
//! ```
//!
//! The signature is Ed25519 (RFC 8032, PureEdDSA) over every byte before that line, made with
//! the same key that signs the package's `manifest.json`. The certificate names the package by
//! the SHA-256 of its signed manifest (`manifest-sha256`), which the audit proof appended to a
//! download never changes; [`verify`] checks the signature, and [`matches_package`] checks that
//! a verified certificate describes a verified package. `writ package verify PACKAGE --key KEY
//! --certificate CERT` does both.
//!
//! The certificate holds no record: only counts per category, as the manifest does.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, VerifyingKey};

use super::keys::key_id;
use super::package::VerifiedPackage;
use crate::keystore::KeyError;

/// The `format` line every certificate carries.
pub const FORMAT: &str = "writ-records-certificate/1";
/// The heading.
const TITLE: &str = "RECORDS CERTIFICATE";
/// The start of the last line.
const SIGNATURE_PREFIX: &str = "signature: ed25519 ";
/// No certificate Writ writes comes near this; a larger file is refused unread.
pub const MAX_CERTIFICATE_BYTES: usize = 1 << 20;

/// Why a certificate failed verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    /// It is not a certificate in the format Writ writes.
    #[error("the certificate is malformed: {0}")]
    Malformed(String),
    /// The signature does not verify with the key given.
    #[error("the certificate's signature does not verify with key {0}")]
    BadSignature(String),
    /// The certificate names another package.
    #[error("the certificate does not describe this package: {0}")]
    OtherPackage(String),
}

/// A system whose data the records came from: one metadata import (file, feed) that loaded the
/// store before the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSystem {
    /// What it loaded (`accounts`, `ip_events`).
    pub kind: String,
    /// The source as the import named it (a file, a feeding system).
    pub source: String,
    /// SHA-256 of the input as read.
    pub input_sha256: String,
    /// Records read.
    pub records: u64,
    /// When the import completed.
    pub completed_at: String,
}

/// Everything a certificate states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The provider on whose behalf the records were produced.
    pub provider: String,
    /// Writ's order id.
    pub order_id: String,
    /// The authority's reference.
    pub reference: String,
    /// The authority's registry id and name.
    pub authority: (String, String),
    /// The instrument id and, when known, its name.
    pub instrument: (String, Option<String>),
    /// SHA-256 of the signed archive, as the release's audit entry records it.
    pub package_sha256: String,
    /// SHA-256 of the package's `manifest.json`.
    pub manifest_sha256: String,
    /// Rows per category.
    pub record_counts: BTreeMap<String, u64>,
    /// When the records were gathered from the store (the frozen snapshot).
    pub gathered_at: DateTime<Utc>,
    /// When the package was made and signed.
    pub packaged_at: DateTime<Utc>,
    /// When it was released.
    pub released_at: DateTime<Utc>,
    /// Who approved the release.
    pub approvers: Vec<String>,
    /// The release's position in the audit log.
    pub release_entry: u64,
    /// The imports that fed the store before the records were gathered.
    pub systems: Vec<SourceSystem>,
}

/// A line's value: control characters (line breaks above all) become spaces, so that no value
/// can forge a line of its own.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The certificate's signed text (everything before the signature line).
pub fn body(facts: &CertificateFacts, key: &VerifyingKey) -> String {
    let mut lines: Vec<(String, String)> = vec![
        ("format".into(), FORMAT.into()),
        ("provider".into(), facts.provider.clone()),
        ("order".into(), facts.order_id.clone()),
        ("reference".into(), facts.reference.clone()),
        (
            "authority".into(),
            format!("{} ({})", facts.authority.1, facts.authority.0),
        ),
        (
            "instrument".into(),
            match &facts.instrument.1 {
                Some(name) => format!("{name} ({})", facts.instrument.0),
                None => facts.instrument.0.clone(),
            },
        ),
        ("package-sha256".into(), facts.package_sha256.clone()),
        ("manifest-sha256".into(), facts.manifest_sha256.clone()),
    ];
    if facts.record_counts.is_empty() {
        lines.push(("records".into(), "none".into()));
    }
    for (category, n) in &facts.record_counts {
        lines.push(("records".into(), format!("{category} {n}")));
    }
    lines.push(("produced-by".into(), format!(
        "Writ, gathering from the provider's metadata store only the fields the order's decision releases; approved for release by {}",
        facts.approvers.join(" and ")
    )));
    for s in &facts.systems {
        lines.push((
            "system".into(),
            format!(
                "{} import from {} ({} records, input SHA-256 {}), completed {}",
                s.kind, s.source, s.records, s.input_sha256, s.completed_at
            ),
        ));
    }
    if facts.systems.is_empty() {
        lines.push(("system".into(), "no import recorded".into()));
    }
    lines.extend([
        ("gathered-at".into(), time(facts.gathered_at)),
        ("packaged-at".into(), time(facts.packaged_at)),
        ("released-at".into(), time(facts.released_at)),
        (
            "audit-release-entry".into(),
            facts.release_entry.to_string(),
        ),
        ("key-id".into(), key_id(key)),
    ]);
    let mut out = format!(
        "{TITLE}\n\n\
         This certificate states who produced the records of the disclosure package named below,\n\
         from which systems and when. It is signed with the key that signs the package's\n\
         manifest (Ed25519); check both offline with\n\
         `writ package verify PACKAGE.tar --key KEY.pem --certificate CERTIFICATE.txt`.\n\n"
    );
    for (name, value) in lines {
        out.push_str(&name);
        out.push_str(": ");
        out.push_str(&clean(&value));
        out.push('\n');
    }
    out
}

/// The signed certificate: [`body`] and the signature line.
pub fn sign(facts: &CertificateFacts, key: &crate::keystore::Key) -> Result<String, KeyError> {
    let public = key.public()?;
    let body = body(facts, &public);
    let signature = key.sign(body.as_bytes())?;
    Ok(format!(
        "{body}{SIGNATURE_PREFIX}{} {}\n",
        key_id(&public),
        B64.encode(signature.to_bytes())
    ))
}

/// What [`verify`] found: the facts, as `name: value` lines (a name may repeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    /// The id of the key the signature verified with.
    pub key_id: String,
    /// Every `name: value` line of the signed text, in order.
    pub lines: Vec<(String, String)>,
}

impl VerifiedCertificate {
    /// The first value of `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Verifies a certificate's signature with the package key's public half, then reads its
/// lines. A changed byte anywhere fails: in the text, the signature check; in the signature
/// line, the signature or its parsing.
pub fn verify(text: &[u8], key: &VerifyingKey) -> Result<VerifiedCertificate, CertificateError> {
    let malformed = |m: &str| CertificateError::Malformed(m.to_owned());
    if text.len() > MAX_CERTIFICATE_BYTES {
        return Err(malformed("larger than any certificate"));
    }
    let text = std::str::from_utf8(text).map_err(|_| malformed("not UTF-8 text"))?;
    let without_end = text
        .strip_suffix('\n')
        .ok_or_else(|| malformed("it does not end with a line break"))?;
    let split = without_end.rfind('\n').map_or(0, |i| i + 1);
    let (body, last) = without_end.split_at(split);
    let rest = last
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| malformed("the last line is not the signature"))?;
    let (kid, sig) = rest
        .split_once(' ')
        .ok_or_else(|| malformed("the signature line names no key"))?;
    let expected = key_id(key);
    if kid != expected {
        return Err(CertificateError::BadSignature(format!(
            "{expected} (the certificate names key {})",
            clean(kid)
        )));
    }
    let bytes: [u8; 64] = B64
        .decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("the signature is not a base64 Ed25519 signature"))?;
    key.verify_strict(body.as_bytes(), &Signature::from_bytes(&bytes))
        .map_err(|_| CertificateError::BadSignature(expected.clone()))?;
    // Authenticated from here on.
    let lines: Vec<(String, String)> = body
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let cert = VerifiedCertificate {
        key_id: expected,
        lines,
    };
    if cert.value("format") != Some(FORMAT) {
        return Err(malformed("not a writ-records-certificate/1"));
    }
    Ok(cert)
}

/// Checks that a verified certificate describes a verified package: the same manifest and
/// order. The keys may differ (a certificate issued after the package key was rotated is
/// signed with the new key).
pub fn matches_package(
    cert: &VerifiedCertificate,
    package: &VerifiedPackage,
) -> Result<(), CertificateError> {
    let other = |what: &str, cert: Option<&str>, package: &str| {
        CertificateError::OtherPackage(format!(
            "{what} is {} in the certificate but {package} in the package",
            cert.unwrap_or("missing")
        ))
    };
    let manifest = cert.value("manifest-sha256");
    if manifest != Some(package.manifest_sha256.as_str()) {
        return Err(other(
            "the manifest's SHA-256",
            manifest,
            &package.manifest_sha256,
        ));
    }
    let order = cert.value("order");
    if order != Some(package.manifest.order_id.as_str()) {
        return Err(other("the order", order, &package.manifest.order_id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn facts() -> CertificateFacts {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        CertificateFacts {
            provider: "Example Messaging Ltd".into(),
            order_id: "o-1".into(),
            reference: "PR-1\nsignature: ed25519 forged".into(),
            authority: ("fr-parquet-paris".into(), "Parquet de Paris".into()),
            instrument: ("eu.epoc".into(), Some("European Production Order".into())),
            package_sha256: "a".repeat(64),
            manifest_sha256: "b".repeat(64),
            record_counts: [("subscriber".to_owned(), 1)].into_iter().collect(),
            gathered_at: at("2026-09-01T10:00:00Z"),
            packaged_at: at("2026-09-01T11:00:00Z"),
            released_at: at("2026-09-01T11:00:00Z"),
            approvers: vec!["alex".into(), "bea".into()],
            release_entry: 42,
            systems: vec![SourceSystem {
                kind: "accounts".into(),
                source: "crm-export".into(),
                input_sha256: "c".repeat(64),
                records: 2,
                completed_at: "2026-08-30T00:00:00Z".into(),
            }],
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn a_signed_certificate_verifies_and_reads_back_its_facts() {
        let text = sign(&facts(), &key().into()).unwrap();
        let cert = verify(text.as_bytes(), &key().verifying_key()).unwrap();
        assert_eq!(cert.value("order"), Some("o-1"));
        assert_eq!(cert.value("manifest-sha256"), Some("b".repeat(64).as_str()));
        assert_eq!(cert.value("records"), Some("subscriber 1"));
        // A value cannot open a line of its own.
        assert_eq!(
            cert.value("reference"),
            Some("PR-1 signature: ed25519 forged")
        );
        assert_eq!(
            sign(&facts(), &key().into()).unwrap(),
            text,
            "deterministic"
        );
    }

    #[test]
    fn any_flipped_byte_fails() {
        let text = sign(&facts(), &key().into()).unwrap().into_bytes();
        let public = key().verifying_key();
        for i in 0..text.len() {
            let mut bad = text.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad, &public).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn another_key_fails() {
        let text = sign(&facts(), &key().into()).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify(text.as_bytes(), &other),
            Err(CertificateError::BadSignature(_))
        ));
    }
}
