//! What accompanies a released package when the legal team hands it over itself (by post, to a
//! court): a readable cover letter and a signed records certificate.
//!
//! Both are made from what was released, never from the live order: the archive's own
//! `manifest.json` and `scope.json` (the decision that bounded the release), the release's row
//! and audit entry, the authority's registry entry, and the metadata imports the audit log
//! recorded before the release. The same release therefore always gives the same letter and
//! the same certificate bytes. Neither holds a record: counts per category only.
//!
//! Staff downloads of the package itself go through [`download`], audited like the
//! authority's (`order.package_downloaded`, with the staff member as the actor); issuing a
//! certificate is audited as `order.certificate_issued` with its hash.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;

use crate::audit::{self, Actor, NewEntry};
use crate::db::schema::{authorities, orders, packages};
use crate::db::{DbConn, write_tx};
use crate::digest::sha256_hex;
use crate::disclosure::certificate::{self, CertificateFacts, SourceSystem};
use crate::disclosure::keys::key_id;
use crate::disclosure::package::{self, MANIFEST_FILE, Manifest, SCOPE_FILE};
use crate::metadata::normalize;
use crate::orders::OrderError;
use crate::policy::{Decision, FieldStatus};

/// Imports read back from the audit log for a certificate (the newest per kind and source).
const IMPORTS_READ: i64 = 1000;

/// A released package and the facts around it.
struct Released {
    manifest: Manifest,
    manifest_sha256: String,
    scope: Decision,
    package_sha256: String,
    gathered_at: DateTime<Utc>,
    released_at: DateTime<Utc>,
    release_seq: u64,
    authority_name: String,
    authority_country: String,
}

fn corrupt(what: impl std::fmt::Display) -> OrderError {
    OrderError::Db(crate::db::DbError::Corrupt(what.to_string()))
}

/// The released package of an order, if it is still served (as
/// [`super::approval::released_archive`]: not after its retention, not once withdrawn).
fn released(conn: &mut DbConn, order_id: &str) -> Result<Option<Released>, OrderError> {
    let Some((tar, package_sha256, release_seq)) =
        super::approval::released_archive(conn, order_id)?
    else {
        return Ok(None);
    };
    let (gathered, released_at): (i64, Option<i64>) = packages::table
        .filter(packages::order_id.eq(order_id))
        .filter(packages::status.eq("released"))
        .select((packages::created_at, packages::released_at))
        .first(conn)?;
    let authority_id: String = orders::table
        .find(order_id)
        .select(orders::authority_id)
        .first(conn)?;
    let (authority_name, authority_country): (String, String) = authorities::table
        .find(&authority_id)
        .select((authorities::name, authorities::country))
        .first(conn)?;
    let manifest_bytes = package::file_of(&tar, MANIFEST_FILE).map_err(corrupt)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(corrupt)?;
    let scope: Decision =
        serde_json::from_slice(&package::file_of(&tar, SCOPE_FILE).map_err(corrupt)?)
            .map_err(corrupt)?;
    Ok(Some(Released {
        manifest_sha256: sha256_hex(&manifest_bytes),
        manifest,
        scope,
        package_sha256,
        gathered_at: normalize::from_micros(gathered),
        released_at: normalize::from_micros(released_at.unwrap_or(gathered)),
        release_seq,
        authority_name,
        authority_country,
    }))
}

/// The metadata imports completed before the release: the newest of each kind and source, as
/// the audit log recorded them.
fn systems(conn: &mut DbConn, before_seq: u64) -> Result<Vec<SourceSystem>, OrderError> {
    let filter = audit::search::Filter {
        event: Some(audit::Event::MetadataImportCompleted.to_string()),
        before: Some(i64::try_from(before_seq).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    let entries = audit::search::search(
        conn,
        &filter,
        audit::search::Direction::NewestFirst,
        IMPORTS_READ,
    )?;
    let mut newest: BTreeMap<(String, String), SourceSystem> = BTreeMap::new();
    for e in entries {
        let leaf: serde_json::Value = serde_json::from_str(&e.leaf).map_err(corrupt)?;
        let refs = &leaf["refs"];
        let text = |k: &str| match &refs[k] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (kind, source) = (text("kind"), text("source"));
        newest
            .entry((kind.clone(), source.clone()))
            .or_insert_with(|| SourceSystem {
                kind,
                source,
                input_sha256: text("input_sha256"),
                records: refs["records"].as_u64().unwrap_or(0),
                completed_at: e.at.clone(),
            });
    }
    Ok(newest.into_values().collect())
}

/// The signed records certificate of an order's released package (see
/// [`crate::disclosure::certificate`]), audited as `order.certificate_issued`; `None` when
/// nothing is released or the archive was deleted.
pub fn certificate(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    provider: &str,
    key: &crate::keystore::Key,
    now: DateTime<Utc>,
) -> Result<Option<String>, OrderError> {
    write_tx(conn, |c| {
        let Some(r) = released(c, order_id)? else {
            return Ok(None);
        };
        let facts = CertificateFacts {
            provider: provider.to_owned(),
            order_id: order_id.to_owned(),
            reference: r.manifest.reference.clone(),
            authority: (r.manifest.authority_id.clone(), r.authority_name.clone()),
            instrument: (
                r.manifest.instrument.clone(),
                r.scope.instrument_name.clone(),
            ),
            package_sha256: r.package_sha256.clone(),
            manifest_sha256: r.manifest_sha256.clone(),
            record_counts: r.manifest.record_counts.clone(),
            gathered_at: r.gathered_at,
            packaged_at: r.manifest.created_at,
            released_at: r.released_at,
            approvers: r.manifest.approvers.clone(),
            release_entry: r.release_seq,
            systems: systems(c, r.release_seq)?,
        };
        let text = certificate::sign(&facts, key)
            .map_err(|e| OrderError::Conflict(format!("the certificate cannot be signed: {e}")))?;
        let entry = NewEntry::new(actor.clone(), audit::Event::OrderCertificateIssued)
            .order(order_id)
            .reference("certificate_sha256", sha256_hex(text.as_bytes()))
            .reference("manifest_sha256", r.manifest_sha256.as_str())
            .reference("key_id", key_id(&public_of(key)?));
        audit::append(c, &entry, now)?;
        Ok(Some(text))
    })
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A status in words, for the letter.
fn status_words(status: FieldStatus) -> &'static str {
    match status {
        FieldStatus::Permit | FieldStatus::PermitPendingValidationCheck => "released",
        FieldStatus::Preserve => "preserved, not produced",
        FieldStatus::Deny => "withheld",
        FieldStatus::NotHeld => "not held",
    }
}

/// The cover letter of an order's released package, as plain text: reference, authority,
/// instrument, what is enclosed (files and record counts), what was withheld and why; `None`
/// when nothing is released or the archive was deleted. It holds no record.
pub fn cover_letter(
    conn: &mut DbConn,
    order_id: &str,
    provider: &str,
    key: &crate::keystore::Key,
) -> Result<Option<String>, OrderError> {
    let Some(r) = released(conn, order_id)? else {
        return Ok(None);
    };
    Ok(Some(letter(&r, provider, &key_id(&public_of(key)?))))
}

fn letter(r: &Released, provider: &str, key: &str) -> String {
    use std::fmt::Write as _;
    let m = &r.manifest;
    let s = &r.scope;
    let mut out = String::new();
    let instrument = match (&s.instrument_name, &s.instrument_citation) {
        (Some(name), Some(cite)) => format!("{name} ({}; {cite})", m.instrument),
        (Some(name), None) => format!("{name} ({})", m.instrument),
        _ => m.instrument.clone(),
    };
    let _ = writeln!(out, "{provider}");
    let _ = writeln!(out, "{}\n", time(r.released_at));
    let _ = writeln!(
        out,
        "To: {} ({}, {})",
        r.authority_name, m.authority_id, r.authority_country
    );
    let _ = writeln!(out, "Your reference: {}", m.reference);
    let _ = writeln!(out, "Instrument: {instrument}");
    let _ = writeln!(out, "Order received: {}", time(s.received_at));
    let _ = writeln!(out, "Our order id: {}\n", m.order_id);
    let _ = writeln!(out, "Response to your order {}\n", m.reference);
    let total: u64 = m.record_counts.values().sum();
    let _ = writeln!(
        out,
        "We enclose the disclosure package answering your order, approved for release by {} on {}.",
        m.approvers.join(" and "),
        time(r.released_at)
    );
    let _ = writeln!(out, "\nEnclosed:");
    let _ = writeln!(
        out,
        "- the disclosure package (signed archive SHA-256 {}; manifest SHA-256 {}), holding:",
        r.package_sha256, r.manifest_sha256
    );
    let _ = writeln!(
        out,
        "    manifest.json and manifest.sig (the signed list of the files below, and its signature)"
    );
    for f in &m.files {
        let _ = writeln!(out, "    {} ({} bytes)", f.name, f.size);
    }
    let _ = writeln!(
        out,
        "    audit-proof.json (the release's entry in our audit log, with its inclusion proof)"
    );
    if total == 0 {
        let _ = writeln!(
            out,
            "  It holds no records: the provider holds no data that the order reaches."
        );
    }
    for (category, n) in &m.record_counts {
        let _ = writeln!(out, "  {}: {n} record(s)", category.replace('_', " "));
    }
    let _ = writeln!(
        out,
        "- a records certificate stating who produced the records, from which systems and when."
    );
    let _ = writeln!(out, "\nWhat was released and what was not:");
    let mut withheld = 0;
    for c in &s.categories {
        let released: Vec<&str> = c
            .fields
            .iter()
            .filter(|f| f.status.releases())
            .map(|f| f.field.as_str())
            .collect();
        let _ = writeln!(
            out,
            "- {}: {}",
            c.category.as_str().replace('_', " "),
            if released.is_empty() {
                "nothing released".to_owned()
            } else {
                format!("released {}", released.join(", "))
            }
        );
        for f in c.fields.iter().filter(|f| !f.status.releases()) {
            withheld += 1;
            let _ = write!(
                out,
                "    {}: {}, because {}",
                f.field.as_str(),
                status_words(f.status),
                f.text.trim()
            );
            if let Some(cite) = &f.citation {
                let _ = write!(out, " ({})", cite.trim());
            }
            out.push('\n');
        }
    }
    if withheld == 0 {
        let _ = writeln!(out, "Nothing the order asked for was withheld.");
    }
    if !s.narrowing.is_empty() {
        let _ = writeln!(out, "\nThe order was narrowed before release:");
        for n in &s.narrowing {
            let _ = writeln!(out, "- {}", n.trim());
        }
    }
    let _ = writeln!(
        out,
        "\nThe package and the certificate are signed with our package key {key} (Ed25519); its public key is published at /packages/public-key. Check them with `writ package verify PACKAGE.tar --key KEY.pem --certificate CERTIFICATE.txt`."
    );
    out
}

/// A staff member's download of an order's released package, with its audit proof, audited
/// as `order.package_downloaded` (the staff member as the actor); `None` when nothing is
/// released or the archive was deleted. Call it outside any transaction (see
/// [`super::approval::download`]).
pub fn download(
    conn: &mut DbConn,
    signer: &crate::audit::checkpoint::CheckpointSigner,
    actor: &Actor,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Vec<u8>, String)>, OrderError> {
    let Some((with_proof, sha)) =
        super::approval::released_with_proof(conn, signer, order_id, now)?
    else {
        return Ok(None);
    };
    write_tx(conn, |c| {
        let entry = NewEntry::new(actor.clone(), audit::Event::OrderPackageDownloaded)
            .order(order_id)
            .reference("package_sha256", sha.as_str());
        audit::append(c, &entry, now)?;
        Ok::<_, OrderError>(())
    })?;
    Ok(Some((with_proof, sha)))
}

/// The public half of the package key, or why the key cannot give it.
fn public_of(key: &crate::keystore::Key) -> Result<ed25519_dalek::VerifyingKey, OrderError> {
    key.public()
        .map_err(|e| OrderError::Conflict(format!("the package key is unavailable: {e}")))
}
