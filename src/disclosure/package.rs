//! The disclosure package: what an authority downloads once an order is approved.
//!
//! A package is a POSIX ustar archive (see [`super::tar`]) holding, in this order:
//!
//! | file | what it holds |
//! |---|---|
//! | `manifest.json` | format, order id and reference, authority, instrument, order version, `scope_sha256`, creation time, approvers, signing key id, record counts, and each signed file's name, size and SHA-256 |
//! | `manifest.sig` | base64 Ed25519 signature (RFC 8032, PureEdDSA) over the exact bytes of `manifest.json`, and a newline |
//! | `scope.json` | the decision that bounded the release, as serde writes it |
//! | `records.json` | order id and reference, the released fields per category, and every table (columns and rows) with exact values |
//! | `<category>.csv` | one per table, RFC 4180 (CRLF), header = columns, cells neutralised against spreadsheet formulas |
//! | `audit-proof.json` | optional, added by [`append_proof`] after signing: the release's audit-log inclusion proof, *not* covered by the signature; it is checked on its own against a log checkpoint |
//!
//! The same input gives the same bytes (fixed file order, mtime = `created_at`, mode 0644,
//! uid/gid 0, no user names), so the package's SHA-256 is reproducible.
//!
//! The builder is the last line of defence against releasing a field the policy does not
//! permit: every table's columns are checked against the scope decision (see [`build`]), and
//! [`verify`] repeats that check against the package's own `scope.json`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::keys::key_id;
use super::tar::{self, ReadRules, TarError};
use crate::digest::sha256_hex;
use crate::policy::{CATALOGUE, Category, Decision, FieldId, FieldStatus, Outcome};

/// The `format` every manifest names.
pub const FORMAT: &str = "writ-disclosure-package";
/// The manifest format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The signed manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's signature.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// The decision that bounded the release.
pub const SCOPE_FILE: &str = "scope.json";
/// Every table, with exact values.
pub const RECORDS_FILE: &str = "records.json";
/// The audit-log inclusion proof, outside the signed part.
pub const AUDIT_PROOF_FILE: &str = "audit-proof.json";
/// The first column of every table.
pub const TARGET_COLUMN: &str = "target";
/// The only signature algorithm, as the manifest names it.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";
/// No file of a package may be larger (the whole package is held in memory).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// No package may be larger.
pub const MAX_PACKAGE_BYTES: u64 = 1 << 30;
/// manifest, signature, scope, records, the proof and one CSV per category.
const MAX_FILES: usize = 5 + Category::ALL.len();

/// Why a package could not be built, or failed verification. Every verification failure names
/// the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The signing key is missing, unreadable or unusable.
    #[error("package signing key: {0}")]
    Key(String),
    /// A table holds something the scope decision does not release.
    #[error("refusing to release: {0}")]
    NotPermitted(String),
    /// The input is inconsistent (not a policy matter).
    #[error("invalid package input: {0}")]
    Input(String),
    /// The archive is malformed or holds something it must not.
    #[error("archive: {0}")]
    Archive(#[from] TarError),
    /// A file the package needs is not in it.
    #[error("{0} is missing from the package")]
    Missing(String),
    /// A file is in the archive but not in the signed manifest.
    #[error("{0} is in the package but not in the signed manifest")]
    Unlisted(String),
    /// The manifest's signature does not verify with the key given.
    #[error(
        "{SIGNATURE_FILE}: the signature over {MANIFEST_FILE} does not verify with key {key_id}"
    )]
    BadSignature {
        /// The id of the key tried.
        key_id: String,
    },
    /// A file differs from what the manifest says of it.
    #[error("{file}: {reason}")]
    Mismatch {
        /// The file.
        file: String,
        /// How.
        reason: String,
    },
    /// A file cannot be parsed, or its contents contradict the rest of the package.
    #[error("{file}: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// One table of released records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The category the rows answer.
    pub category: Category,
    /// `target` (the target as given in the order, e.g. `phone_number:+33612345678`), then the
    /// released field names in catalogue order.
    pub columns: Vec<String>,
    /// One row per record, as wide as `columns`.
    pub rows: Vec<Vec<String>>,
}

/// Everything a package is built from.
#[derive(Debug, Clone)]
pub struct PackageInput {
    /// Writ's order id.
    pub order_id: String,
    /// The authority's reference (must match the scope decision's).
    pub reference: String,
    /// The requesting authority's id in the registry.
    pub authority_id: String,
    /// The instrument id (must match the scope decision's).
    pub instrument: String,
    /// The order version that was approved.
    pub order_version: i32,
    /// SHA-256 (lowercase hex) of the approved scope, as recorded with the approvals.
    pub scope_sha256: String,
    /// The decision that bounds the release.
    pub scope: Decision,
    /// The records, at most one table per category.
    pub tables: Vec<Table>,
    /// When the package is made; also every file's mtime in the archive.
    pub created_at: DateTime<Utc>,
    /// Who approved the release (at least two different people).
    pub approvers: Vec<String>,
}

/// A built package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The archive.
    pub tar: Vec<u8>,
    /// SHA-256 (lowercase hex) of `tar`.
    pub sha256: String,
    /// The signed manifest.
    pub manifest: Manifest,
    /// Rows per category name.
    pub record_counts: BTreeMap<String, u64>,
}

/// One signed file, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Its name in the archive.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its contents, lowercase hex.
    pub sha256: String,
}

/// `manifest.json`: what the signature covers, directly or through the file hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this code.
    pub format_version: u32,
    /// Writ's order id.
    pub order_id: String,
    /// The authority's reference.
    pub reference: String,
    /// The requesting authority's id.
    pub authority_id: String,
    /// The instrument id.
    pub instrument: String,
    /// The approved order version.
    pub order_version: i32,
    /// SHA-256 of the approved scope, as recorded with the approvals.
    pub scope_sha256: String,
    /// When the package was made.
    pub created_at: DateTime<Utc>,
    /// Who approved the release.
    pub approvers: Vec<String>,
    /// Always [`SIGNATURE_ALGORITHM`].
    pub signature_algorithm: String,
    /// The signing key's id ([`super::keys::key_id`]).
    pub key_id: String,
    /// Whether CSV cells starting with `=`, `+`, `-`, `@`, tab or CR carry an added leading `'`
    /// (JSON files always hold the exact values).
    pub csv_formula_escape: bool,
    /// Rows per category name.
    pub record_counts: BTreeMap<String, u64>,
    /// Every signed file, in archive order.
    pub files: Vec<ManifestFile>,
}

/// What [`verify`] found.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    /// The manifest, whose signature verified.
    pub manifest: Manifest,
    /// Rows per category name, counted in `records.json` (equal to the manifest's).
    pub record_counts: BTreeMap<String, u64>,
    /// The id of the key the signature verified with.
    pub key_id: String,
    /// SHA-256 (lowercase hex) of the exact bytes of `manifest.json`: what a records
    /// certificate names to bind itself to this package (the archive's own hash changes when
    /// the audit proof is appended; the signed manifest never does).
    pub manifest_sha256: String,
    /// `audit-proof.json`, if present: unauthenticated, to check against an audit checkpoint.
    pub audit_proof: Option<Vec<u8>>,
}

/// `records.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Records {
    order_id: String,
    reference: String,
    /// The fields the scope releases, per category it decided.
    scope: BTreeMap<Category, Vec<FieldId>>,
    tables: Vec<Table>,
}

/// The part of a decision that bounds a release. Verification reads `scope.json` into this
/// rather than into [`Decision`], so that packages stay verifiable when the decision gains
/// fields.
#[derive(Debug, Deserialize)]
struct ScopeView {
    outcome: Outcome,
    categories: Vec<CategoryView>,
}

#[derive(Debug, Deserialize)]
struct CategoryView {
    category: Category,
    fields: Vec<FieldView>,
}

#[derive(Debug, Deserialize)]
struct FieldView {
    field: FieldId,
    status: FieldStatus,
}

impl From<&Decision> for ScopeView {
    fn from(d: &Decision) -> Self {
        Self {
            outcome: d.outcome,
            categories: d
                .categories
                .iter()
                .map(|c| CategoryView {
                    category: c.category,
                    fields: c
                        .fields
                        .iter()
                        .map(|f| FieldView {
                            field: f.field,
                            status: f.status,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl ScopeView {
    /// As [`Decision::field_status`]: `None` when the category or field is not decided.
    fn field_status(&self, category: Category, field: FieldId) -> Option<FieldStatus> {
        self.categories
            .iter()
            .find(|c| c.category == category)?
            .fields
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.status)
    }

    /// The released fields of every decided category, in catalogue order.
    fn released(&self) -> BTreeMap<Category, Vec<FieldId>> {
        let mut out: BTreeMap<Category, BTreeSet<FieldId>> = BTreeMap::new();
        for c in &self.categories {
            let fields = out.entry(c.category).or_default();
            fields.extend(
                c.fields
                    .iter()
                    .filter(|f| f.status.releases())
                    .map(|f| f.field),
            );
        }
        out.into_iter()
            .map(|(c, fields)| {
                let mut fields: Vec<_> = fields.into_iter().collect();
                fields.sort_by_key(|f| catalogue_position(*f));
                (c, fields)
            })
            .collect()
    }
}

fn catalogue_position(field: FieldId) -> usize {
    CATALOGUE
        .iter()
        .position(|spec| spec.id == field)
        .unwrap_or(usize::MAX)
}

/// The CSV file of a category.
pub fn csv_name(category: Category) -> String {
    format!("{}.csv", category.as_str())
}

/// Neutralises a CSV cell against spreadsheet formula injection (OWASP "CSV Injection"): a
/// value starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`, which
/// spreadsheets show as text. Only CSV files are escaped; JSON keeps the exact value.
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Builds and signs a package.
///
/// Refuses ([`PackageError::NotPermitted`]) a scope whose outcome is `refused`, two tables of
/// one category, a table for a category the scope did not decide, any table whose columns are
/// not `target` followed by at least one field the scope releases for that category
/// ([`Decision::field_status`], [`FieldStatus::releases`]), in catalogue order, each once, and
/// rows not as wide as the columns. Refuses ([`PackageError::Input`]) a reference or instrument
/// other than the scope's, a `scope_sha256` that is not SHA-256 hex, fewer than two different
/// approvers, and a `created_at` before 1970.
pub fn build(
    input: &PackageInput,
    key: impl Into<crate::keystore::Key>,
) -> Result<Package, PackageError> {
    let key: crate::keystore::Key = key.into();
    check_input(input)?;
    let scope = ScopeView::from(&input.scope);
    let mut tables: Vec<&Table> = input.tables.iter().collect();
    tables.sort_by_key(|t| t.category);
    check_tables(&tables, &scope).map_err(PackageError::NotPermitted)?;

    let scope_json = serde_json::to_vec(&input.scope).map_err(|e| encode(SCOPE_FILE, e))?;
    let records = Records {
        order_id: input.order_id.clone(),
        reference: input.reference.clone(),
        scope: scope.released(),
        tables: tables.iter().map(|t| (*t).clone()).collect(),
    };
    let records_json = pretty(&records).map_err(|e| encode(RECORDS_FILE, e))?;
    let mut signed: Vec<(String, Vec<u8>)> = vec![
        (SCOPE_FILE.to_owned(), scope_json),
        (RECORDS_FILE.to_owned(), records_json),
    ];
    for table in &tables {
        let name = csv_name(table.category);
        let bytes = csv_bytes(table).map_err(|e| encode(&name, e))?;
        signed.push((name, bytes));
    }
    let record_counts = counts(&records.tables);

    let verifying = key.public().map_err(|e| PackageError::Key(e.to_string()))?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        order_id: input.order_id.clone(),
        reference: input.reference.clone(),
        authority_id: input.authority_id.clone(),
        instrument: input.instrument.clone(),
        order_version: input.order_version,
        scope_sha256: input.scope_sha256.clone(),
        created_at: input.created_at,
        approvers: input.approvers.clone(),
        signature_algorithm: SIGNATURE_ALGORITHM.to_owned(),
        key_id: key_id(&verifying),
        csv_formula_escape: true,
        record_counts: record_counts.clone(),
        files: signed
            .iter()
            .map(|(name, bytes)| ManifestFile {
                name: name.clone(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
            .collect(),
    };
    let manifest_json = pretty(&manifest).map_err(|e| encode(MANIFEST_FILE, e))?;
    // RFC 8032 Ed25519 (pure, no pre-hash) over the manifest's exact bytes.
    let signature = key
        .sign(&manifest_json)
        .map_err(|e| PackageError::Key(e.to_string()))?;
    let signature_text = format!("{}\n", B64.encode(signature.to_bytes()));

    let mut archive = tar::Builder::new(input.created_at.timestamp())?;
    archive.add(MANIFEST_FILE, &manifest_json)?;
    archive.add(SIGNATURE_FILE, signature_text.as_bytes())?;
    crate::failpoint!(crate::failpoint::PACKAGE_PARTLY_WRITTEN);
    for (name, bytes) in &signed {
        archive.add(name, bytes)?;
    }
    let tar = archive.finish();
    Ok(Package {
        sha256: sha256_hex(&tar),
        tar,
        manifest,
        record_counts,
    })
}

/// Adds `audit-proof.json` to a built package, beside the signed files: the proof is made after
/// the release is recorded in the audit log, so the signature cannot cover it. The signed files
/// are kept byte for byte; the archive's hash changes.
pub fn append_proof(tar: &[u8], proof_json: &[u8]) -> Result<Vec<u8>, PackageError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(proof_json)
        .map_err(|e| PackageError::Input(format!("the audit proof is not a JSON document: {e}")))?;
    let files = tar::read(tar, &READ_RULES)?;
    let manifest = files
        .iter()
        .find(|f| f.name == MANIFEST_FILE)
        .ok_or_else(|| PackageError::Missing(MANIFEST_FILE.to_owned()))?;
    Ok(tar::append(
        tar,
        AUDIT_PROOF_FILE,
        proof_json,
        manifest.mtime,
        &READ_RULES,
    )?)
}

/// One file of a package, as stored (no verification: call [`verify`] first where it matters).
pub fn file_of(tar: &[u8], name: &str) -> Result<Vec<u8>, PackageError> {
    tar::read(tar, &READ_RULES)?
        .into_iter()
        .find(|f| f.name == name)
        .map(|f| f.data)
        .ok_or_else(|| PackageError::Missing(name.to_owned()))
}

/// Verifies a package against the signer's public key: a strictly read archive, the manifest's
/// signature, every listed file's size and SHA-256, no file outside the manifest but
/// `audit-proof.json`, and contents that agree with the manifest and with the scope (no table
/// releases a field `scope.json` does not). The audit proof itself is not checked here.
pub fn verify(tar: &[u8], public_key: &VerifyingKey) -> Result<VerifiedPackage, PackageError> {
    if tar.len() as u64 > MAX_PACKAGE_BYTES {
        return Err(PackageError::Malformed {
            file: "package".into(),
            reason: format!("larger than {MAX_PACKAGE_BYTES} bytes"),
        });
    }
    let files = tar::read(tar, &READ_RULES)?;
    let file = |name: &str| {
        files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.data.as_slice())
            .ok_or_else(|| PackageError::Missing(name.to_owned()))
    };
    let manifest_bytes = file(MANIFEST_FILE)?;
    let expected_key = key_id(public_key);
    let signature = parse_signature(file(SIGNATURE_FILE)?)?;
    public_key
        .verify_strict(manifest_bytes, &signature)
        .map_err(|_| PackageError::BadSignature {
            key_id: expected_key.clone(),
        })?;
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| malformed(MANIFEST_FILE, e))?;
    check_manifest(&manifest, &expected_key)?;

    for listed in &manifest.files {
        let data = file(&listed.name)?;
        if data.len() as u64 != listed.size {
            return Err(PackageError::Mismatch {
                file: listed.name.clone(),
                reason: format!(
                    "{} bytes, but the manifest says {}",
                    data.len(),
                    listed.size
                ),
            });
        }
        let hash = sha256_hex(data);
        if hash != listed.sha256 {
            return Err(PackageError::Mismatch {
                file: listed.name.clone(),
                reason: format!("SHA-256 is {hash}, but the manifest says {}", listed.sha256),
            });
        }
    }
    if let Some(extra) = files.iter().find(|f| {
        ![MANIFEST_FILE, SIGNATURE_FILE, AUDIT_PROOF_FILE].contains(&f.name.as_str())
            && !manifest.files.iter().any(|l| l.name == f.name)
    }) {
        return Err(PackageError::Unlisted(extra.name.clone()));
    }

    // Every file below is now authenticated; what remains checks that they agree.
    let scope: ScopeView =
        serde_json::from_slice(file(SCOPE_FILE)?).map_err(|e| malformed(SCOPE_FILE, e))?;
    let records: Records =
        serde_json::from_slice(file(RECORDS_FILE)?).map_err(|e| malformed(RECORDS_FILE, e))?;
    check_records(&manifest, &records, &scope)?;
    for table in &records.tables {
        let name = csv_name(table.category);
        check_csv(&name, file(&name)?, table)?;
    }
    let record_counts = counts(&records.tables);
    if record_counts != manifest.record_counts {
        return Err(PackageError::Malformed {
            file: MANIFEST_FILE.into(),
            reason: format!(
                "record counts {:?} differ from {RECORDS_FILE}'s {record_counts:?}",
                manifest.record_counts
            ),
        });
    }
    Ok(VerifiedPackage {
        manifest,
        record_counts,
        key_id: expected_key,
        manifest_sha256: sha256_hex(manifest_bytes),
        audit_proof: file(AUDIT_PROOF_FILE).ok().map(<[u8]>::to_vec),
    })
}

fn check_input(input: &PackageInput) -> Result<(), PackageError> {
    let bad = |m: String| Err(PackageError::Input(m));
    if input.order_id.trim().is_empty() {
        return bad("the order id is empty".into());
    }
    if input.reference != input.scope.order_reference {
        return bad(format!(
            "the reference {:?} is not the scope decision's {:?}",
            input.reference, input.scope.order_reference
        ));
    }
    if input.instrument != input.scope.instrument {
        return bad(format!(
            "the instrument {:?} is not the scope decision's {:?}",
            input.instrument, input.scope.instrument
        ));
    }
    if !is_sha256_hex(&input.scope_sha256) {
        return bad("scope_sha256 is not 64 lowercase hex digits".into());
    }
    let approvers: BTreeSet<&str> = input
        .approvers
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .collect();
    if approvers.len() < 2 {
        return bad("a release needs the approval of two different people".into());
    }
    if input.created_at.timestamp() < 0 {
        return bad("created_at is before 1970".into());
    }
    Ok(())
}

/// Every table's columns are `target`, then fields the scope releases in that category, in
/// catalogue order, each once; rows are as wide as the columns; one table per category.
fn check_tables(tables: &[&Table], scope: &ScopeView) -> Result<(), String> {
    if scope.outcome == Outcome::Refused {
        return Err("the scope decision refuses the order: nothing may be released".into());
    }
    if scope.outcome == Outcome::ClarificationNeeded {
        return Err(
            "the scope decision awaits a clarification of the order: nothing may be released"
                .into(),
        );
    }
    let mut seen = BTreeSet::new();
    for table in tables {
        let category = table.category;
        if !seen.insert(category) {
            return Err(format!("two tables for category {category}"));
        }
        if !scope.categories.iter().any(|c| c.category == category) {
            return Err(format!("category {category} is not in the scope decision"));
        }
        match table.columns.first() {
            Some(first) if first == TARGET_COLUMN => {}
            _ => {
                return Err(format!(
                    "the first column of the {category} table must be `{TARGET_COLUMN}`"
                ));
            }
        }
        if table.columns.len() < 2 {
            return Err(format!(
                "the {category} table has no field column: nothing to release"
            ));
        }
        let mut last = None;
        for column in &table.columns[1..] {
            let Some(position) = CATALOGUE.iter().position(|s| s.id.as_str() == column) else {
                return Err(format!(
                    "column `{column}` of the {category} table is not a catalogue field"
                ));
            };
            let field = CATALOGUE[position].id;
            match scope.field_status(category, field) {
                Some(status) if status.releases() => {}
                status => {
                    let status = status.map_or_else(
                        || "not decided".to_owned(),
                        |s| serde_json::to_string(&s).unwrap_or_default(),
                    );
                    return Err(format!(
                        "the scope decision does not release {field} in {category} (status: {status})"
                    ));
                }
            }
            if last.is_some_and(|l| l >= position) {
                return Err(format!(
                    "column `{column}` of the {category} table is repeated or out of catalogue order"
                ));
            }
            last = Some(position);
        }
        if let Some((i, row)) = table
            .rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != table.columns.len())
        {
            return Err(format!(
                "row {} of the {category} table has {} cells for {} columns",
                i + 1,
                row.len(),
                table.columns.len()
            ));
        }
    }
    Ok(())
}

fn check_manifest(manifest: &Manifest, expected_key: &str) -> Result<(), PackageError> {
    let bad = |reason: String| {
        Err(PackageError::Malformed {
            file: MANIFEST_FILE.into(),
            reason,
        })
    };
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return bad(format!(
            "format {} version {} is not {FORMAT} version {FORMAT_VERSION}",
            manifest.format, manifest.format_version
        ));
    }
    if manifest.signature_algorithm != SIGNATURE_ALGORITHM {
        return bad(format!(
            "signature algorithm {:?} is not {SIGNATURE_ALGORITHM}",
            manifest.signature_algorithm
        ));
    }
    if manifest.key_id != expected_key {
        return bad(format!(
            "names key {} but verified with key {expected_key}",
            manifest.key_id
        ));
    }
    let mut names = BTreeSet::new();
    for listed in &manifest.files {
        if [MANIFEST_FILE, SIGNATURE_FILE, AUDIT_PROOF_FILE].contains(&listed.name.as_str()) {
            return bad(format!("lists {}, which it cannot cover", listed.name));
        }
        if !names.insert(listed.name.as_str()) {
            return bad(format!("lists {} twice", listed.name));
        }
    }
    for required in [SCOPE_FILE, RECORDS_FILE] {
        if !names.contains(required) {
            return bad(format!("does not list {required}"));
        }
    }
    Ok(())
}

fn check_records(
    manifest: &Manifest,
    records: &Records,
    scope: &ScopeView,
) -> Result<(), PackageError> {
    let bad = |reason: String| {
        Err(PackageError::Malformed {
            file: RECORDS_FILE.into(),
            reason,
        })
    };
    if records.order_id != manifest.order_id || records.reference != manifest.reference {
        return bad("order id or reference differs from the manifest's".into());
    }
    if records.scope != scope.released() {
        return bad(format!(
            "its scope differs from {SCOPE_FILE}'s released fields"
        ));
    }
    let tables: Vec<&Table> = records.tables.iter().collect();
    if let Err(reason) = check_tables(&tables, scope) {
        return Err(PackageError::NotPermitted(format!(
            "{RECORDS_FILE}: {reason}"
        )));
    }
    let csvs: BTreeSet<String> = records
        .tables
        .iter()
        .map(|t| csv_name(t.category))
        .collect();
    if let Some(orphan) = manifest
        .files
        .iter()
        .map(|f| &f.name)
        .find(|n| n.as_str() != SCOPE_FILE && n.as_str() != RECORDS_FILE && !csvs.contains(*n))
    {
        return bad(format!("has no table for {orphan}"));
    }
    Ok(())
}

/// The CSV holds the table's cells, escaped.
fn check_csv(name: &str, data: &[u8], table: &Table) -> Result<(), PackageError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(data);
    let expected = std::iter::once(&table.columns).chain(&table.rows);
    let mut found = reader.records();
    for (line, cells) in expected.enumerate() {
        let record = match found.next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(malformed(name, e)),
            None => {
                return Err(PackageError::Malformed {
                    file: name.into(),
                    reason: format!("ends at line {line}, before {RECORDS_FILE}'s rows do"),
                });
            }
        };
        if !record.iter().eq(cells.iter().map(|c| escape_formula(c))) {
            return Err(PackageError::Malformed {
                file: name.into(),
                reason: format!("line {} differs from {RECORDS_FILE}", line + 1),
            });
        }
    }
    if found.next().is_some() {
        return Err(PackageError::Malformed {
            file: name.into(),
            reason: format!("has more rows than {RECORDS_FILE}"),
        });
    }
    Ok(())
}

fn parse_signature(data: &[u8]) -> Result<Signature, PackageError> {
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    let bytes = B64
        .decode(text)
        .map_err(|e| malformed(SIGNATURE_FILE, format!("not base64: {e}")))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| malformed(SIGNATURE_FILE, "not a 64-byte Ed25519 signature"))?;
    Ok(Signature::from_bytes(&bytes))
}

fn csv_bytes(table: &Table) -> Result<Vec<u8>, String> {
    // RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break.
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for record in std::iter::once(&table.columns).chain(&table.rows) {
        writer
            .write_record(record.iter().map(|c| escape_formula(c).into_owned()))
            .map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}

fn counts(tables: &[Table]) -> BTreeMap<String, u64> {
    tables
        .iter()
        .map(|t| (t.category.as_str().to_owned(), t.rows.len() as u64))
        .collect()
}

fn pretty<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The names a package may hold.
fn package_name(name: &str) -> bool {
    [
        MANIFEST_FILE,
        SIGNATURE_FILE,
        SCOPE_FILE,
        RECORDS_FILE,
        AUDIT_PROOF_FILE,
    ]
    .contains(&name)
        || Category::ALL.iter().any(|c| csv_name(*c) == name)
}

/// How packages are read: only their own file names, within the size limits.
const READ_RULES: ReadRules<'static> = ReadRules {
    max_files: MAX_FILES,
    max_file_size: MAX_FILE_BYTES,
    allowed: &package_name,
};

fn encode(file: &str, e: impl std::fmt::Display) -> PackageError {
    PackageError::Input(format!("cannot write {file}: {e}"))
}

fn malformed(file: &str, e: impl std::fmt::Display) -> PackageError {
    PackageError::Malformed {
        file: file.into(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::tar::BLOCK as BLOCK_SIZE;
    use super::*;
    use crate::policy::{
        Deployment, IssuerKind, KeepCategory, NarrowingRequest, Order, PolicySet, RegistryFacts,
    };
    use ed25519_dalek::{Signer as _, SigningKey};

    const ORDER: &str = include_str!("../../tests/fixtures/orders/epoc-prosecutor.json");

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The policy engine's decision on the EPOC fixture from a registered French prosecutor:
    /// subscriber and identification data are released.
    fn decision_with(facts: RegistryFacts) -> Decision {
        let order = Order::from_json(ORDER).unwrap();
        let deployment = Deployment {
            establishment: "IE".into(),
            legal_representative_in: vec![],
            dsa_intermediary: false,
            service_class: None,
            offers_service_in: vec![],
        };
        crate::policy::decide(
            &order,
            &facts,
            at("2026-09-01T08:00:00Z"),
            &[],
            &PolicySet::builtin().unwrap(),
            &deployment,
            at("2026-09-01T09:00:00Z"),
        )
    }

    fn decision() -> Decision {
        let d = decision_with(RegistryFacts {
            issuer_kind: Some(IssuerKind::Prosecutor),
            validator_kind: None,
            issuer_country: Some("FR".into()),
            validation_signed_by_validator: false,
            earlier_preservations: 0,
        });
        assert_eq!(d.outcome, Outcome::AcceptableForReview, "{d:#?}");
        d
    }

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    fn subscriber() -> Table {
        Table {
            category: Category::Subscriber,
            columns: strings(&[
                "target",
                "user_id",
                "username",
                "phone_number",
                "account_status",
            ]),
            rows: vec![
                strings(&["username:alice", "u-1", "alice", "+33612345678", "active"]),
                strings(&[
                    "username:alice",
                    "u-2",
                    "=HYPERLINK(\"http://x\",\"click\")",
                    "-1, \"quoted\"",
                    "@SUM(A1)",
                ]),
            ],
        }
    }

    fn identification() -> Table {
        Table {
            category: Category::Identification,
            columns: strings(&["target", "access_ip", "access_port", "access_time"]),
            rows: vec![strings(&[
                "ip:203.0.113.7:51234",
                "203.0.113.7",
                "51234",
                "2026-08-30T08:14:03Z",
            ])],
        }
    }

    fn input() -> PackageInput {
        let scope = decision();
        PackageInput {
            order_id: "0191d5a0-order".into(),
            reference: "PR-2026-0042".into(),
            authority_id: "fr-parquet-paris".into(),
            instrument: "eu.epoc".into(),
            order_version: 1,
            scope_sha256: sha256_hex(&serde_json::to_vec(&scope).unwrap()),
            scope,
            // Out of category order on purpose: the package sorts them.
            tables: vec![identification(), subscriber()],
            created_at: at("2026-09-02T10:00:00Z"),
            approvers: strings(&["legal.one", "legal.two"]),
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn files_of(tar: &[u8]) -> Vec<tar::TarFile> {
        tar::read(tar, &READ_RULES).unwrap()
    }

    fn file(tar: &[u8], name: &str) -> Vec<u8> {
        files_of(tar)
            .into_iter()
            .find(|f| f.name == name)
            .unwrap()
            .data
    }

    /// Re-packs files (as an attacker or a buggy signer would).
    fn repack(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(0).unwrap();
        for (name, data) in files {
            b.add(name, data).unwrap();
        }
        b.finish()
    }

    fn named(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        files_of(tar)
            .into_iter()
            .map(|f| (f.name, f.data))
            .collect()
    }

    /// Re-signs a package's manifest after its files changed, with the right hashes: what only
    /// the key holder can do, used to test the checks behind the signature.
    fn resign(mut files: Vec<(String, Vec<u8>)>, key: &SigningKey) -> Vec<u8> {
        let mut manifest: Manifest = serde_json::from_slice(&files[0].1).unwrap();
        for listed in &mut manifest.files {
            let data = &files.iter().find(|(n, _)| *n == listed.name).unwrap().1;
            listed.size = data.len() as u64;
            listed.sha256 = sha256_hex(data);
        }
        let bytes = pretty(&manifest).unwrap();
        files[1].1 = format!("{}\n", B64.encode(key.sign(&bytes).to_bytes())).into_bytes();
        files[0].1 = bytes;
        repack(&files)
    }

    #[test]
    fn a_package_holds_the_signed_files_in_a_fixed_order_and_verifies() {
        let package = build(&input(), key()).unwrap();
        let names: Vec<_> = files_of(&package.tar).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "manifest.json",
                "manifest.sig",
                "scope.json",
                "records.json",
                "subscriber.csv",
                "identification.csv"
            ]
        );
        assert_eq!(package.sha256, sha256_hex(&package.tar));
        let m = &package.manifest;
        assert_eq!(
            (m.format.as_str(), m.format_version, m.order_id.as_str()),
            (FORMAT, 1, "0191d5a0-order")
        );
        assert_eq!(m.key_id, key_id(&key().verifying_key()));
        assert!(m.csv_formula_escape);
        assert_eq!(m.files.len(), 4);
        let counts: BTreeMap<String, u64> =
            [("identification".into(), 1), ("subscriber".into(), 2)].into();
        assert_eq!(package.record_counts, counts);
        assert_eq!(
            serde_json::from_slice::<Manifest>(&file(&package.tar, MANIFEST_FILE)).unwrap(),
            package.manifest
        );
        // scope.json is the decision as serde writes it: what the scope hash is taken over.
        assert_eq!(
            sha256_hex(&file(&package.tar, SCOPE_FILE)),
            input().scope_sha256
        );
        let records: serde_json::Value =
            serde_json::from_slice(&file(&package.tar, RECORDS_FILE)).unwrap();
        assert_eq!(records["reference"], "PR-2026-0042");
        assert_eq!(
            records["scope"]["identification"],
            serde_json::json!(["access_ip", "access_port", "access_time"])
        );
        assert_eq!(records["tables"][0]["category"], "subscriber");

        let verified = verify(&package.tar, &key().verifying_key()).unwrap();
        assert_eq!(verified.manifest, package.manifest);
        assert_eq!(verified.record_counts, counts);
        assert!(verified.audit_proof.is_none());
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let a = build(&input(), key()).unwrap();
        let b = build(&input(), key()).unwrap();
        assert_eq!(a.tar, b.tar);
        assert_eq!(a.sha256, b.sha256);
        let mut tables_in_order = input();
        tables_in_order.tables.reverse();
        assert_eq!(build(&tables_in_order, key()).unwrap().tar, a.tar);
        for f in files_of(&a.tar) {
            assert_eq!(f.mtime, 1_788_343_200, "mtime is created_at");
        }
        let mut later = input();
        later.created_at = at("2026-09-02T10:00:01Z");
        assert_ne!(build(&later, key()).unwrap().sha256, a.sha256);
    }

    #[test]
    fn csv_cells_are_neutralised_against_formulas_but_json_keeps_exact_values() {
        for (cell, escaped) in [
            ("=1+1", "'=1+1"),
            ("+33612345678", "'+33612345678"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("a=b", "a=b"),
            ("", ""),
            ("'already", "'already"),
        ] {
            assert_eq!(escape_formula(cell), escaped);
        }
        let package = build(&input(), key()).unwrap();
        let csv = String::from_utf8(file(&package.tar, "subscriber.csv")).unwrap();
        assert_eq!(
            csv,
            "target,user_id,username,phone_number,account_status\r\n\
             username:alice,u-1,alice,'+33612345678,active\r\n\
             username:alice,u-2,\"'=HYPERLINK(\"\"http://x\"\",\"\"click\"\")\",\"'-1, \"\"quoted\"\"\",'@SUM(A1)\r\n"
        );
        let records: Records = serde_json::from_slice(&file(&package.tar, RECORDS_FILE)).unwrap();
        assert_eq!(records.tables[0], subscriber(), "exact values in JSON");
    }

    #[test]
    fn verify_detects_a_flipped_byte_anywhere_that_changes_the_contents_and_names_the_file() {
        let package = build(&input(), key()).unwrap();
        let public = key().verifying_key();
        let original = named(&package.tar);
        for i in 0..package.tar.len() {
            let mut bad = package.tar.clone();
            bad[i] ^= 0x20;
            // Either refused, or the flip only swapped a NUL terminator of a header number for
            // a space (both are POSIX): what the package says is unchanged.
            if verify(&bad, &public).is_ok() {
                assert_eq!(
                    named(&bad),
                    original,
                    "flipped byte {i} changed the contents"
                );
                assert!(matches!(bad[i], b' ' | 0), "byte {i}");
            }
        }
        // A flip in a file's data names that file.
        let mut offset = 0;
        for f in files_of(&package.tar) {
            offset += BLOCK_SIZE;
            let mut bad = package.tar.clone();
            bad[offset + f.data.len() / 2] ^= 0x01;
            let err = verify(&bad, &public).unwrap_err().to_string();
            assert!(err.contains(&f.name), "{}: {err}", f.name);
            offset += f.data.len().next_multiple_of(BLOCK_SIZE);
        }
    }

    #[test]
    fn verify_refuses_a_wrong_key_and_a_replaced_manifest() {
        let package = build(&input(), key()).unwrap();
        let other_key = SigningKey::from_bytes(&[8u8; 32]);
        let err = verify(&package.tar, &other_key.verifying_key()).unwrap_err();
        assert!(
            matches!(&err, PackageError::BadSignature { key_id: k } if *k == key_id(&other_key.verifying_key())),
            "{err}"
        );

        // Another order's manifest, with or without its own signature.
        let mut other = input();
        other.order_id = "another-order".into();
        let other = build(&other, key()).unwrap();
        let mut files = named(&package.tar);
        files[0].1 = file(&other.tar, MANIFEST_FILE);
        let err = verify(&repack(&files), &key().verifying_key()).unwrap_err();
        assert!(matches!(err, PackageError::BadSignature { .. }), "{err}");
        files[1].1 = file(&other.tar, SIGNATURE_FILE);
        let err = verify(&repack(&files), &key().verifying_key()).unwrap_err();
        assert!(
            matches!(&err, PackageError::Mismatch { file, .. } if file == RECORDS_FILE),
            "{err}"
        );

        // A manifest signed by another key and naming it.
        let forged = build(&input(), &other_key).unwrap();
        assert!(matches!(
            verify(&forged.tar, &key().verifying_key()),
            Err(PackageError::BadSignature { .. })
        ));
    }

    #[test]
    fn verify_refuses_extra_missing_and_duplicate_files() {
        let package = build(&input(), key()).unwrap();
        let public = key().verifying_key();
        let mut files = named(&package.tar);
        files.push(("ip_history.csv".into(), b"target\r\n".to_vec()));
        assert!(matches!(
            verify(&repack(&files), &public),
            Err(PackageError::Unlisted(n)) if n == "ip_history.csv"
        ));
        files.pop();
        files.push(("notes.txt".into(), b"hi".to_vec()));
        assert!(matches!(
            verify(&repack(&files), &public),
            Err(PackageError::Archive(TarError::Unexpected(_)))
        ));
        files.pop();
        let csv = files.pop().unwrap();
        assert!(matches!(
            verify(&repack(&files), &public),
            Err(PackageError::Missing(n)) if n == "identification.csv"
        ));
        files.push(csv.clone());
        let mut dup = repack(&files);
        // Append a second copy by hand (the builder refuses duplicates).
        dup.truncate(dup.len() - 2 * BLOCK_SIZE);
        let mut one = tar::Builder::new(0).unwrap();
        one.add(&csv.0, &csv.1).unwrap();
        dup.extend_from_slice(&one.finish());
        assert!(matches!(
            verify(&dup, &public),
            Err(PackageError::Archive(TarError::Duplicate(_)))
        ));
        files.remove(1);
        assert!(matches!(
            verify(&repack(&files), &public),
            Err(PackageError::Missing(n)) if n == SIGNATURE_FILE
        ));
    }

    #[test]
    fn verify_rechecks_the_contents_behind_a_valid_signature() {
        let package = build(&input(), key()).unwrap();
        let public = key().verifying_key();
        // A buggy signer packing a field its own scope.json does not release.
        let mut narrowed = crate::policy::narrow(
            &input().scope,
            &NarrowingRequest {
                keep: vec![
                    KeepCategory {
                        category: Category::Subscriber,
                        fields: vec![FieldId::UserId, FieldId::Username, FieldId::AccountStatus],
                    },
                    KeepCategory {
                        category: Category::Identification,
                        fields: vec![FieldId::AccessIp, FieldId::AccessPort, FieldId::AccessTime],
                    },
                ],
                keep_targets: None,
                time_window: None,
                reason: "only what the case needs".into(),
            },
        )
        .unwrap();
        let mut files = named(&package.tar);
        files[2].1 = serde_json::to_vec(&narrowed).unwrap();
        let err = verify(&resign(files.clone(), &key()), &public).unwrap_err();
        assert!(
            matches!(&err, PackageError::Malformed { file, .. } if file == RECORDS_FILE),
            "the records' scope differs: {err}"
        );
        let mut records: Records = serde_json::from_slice(&files[3].1).unwrap();
        records.scope = ScopeView::from(&narrowed).released();
        files[3].1 = pretty(&records).unwrap();
        let err = verify(&resign(files.clone(), &key()), &public).unwrap_err();
        assert!(
            matches!(&err, PackageError::NotPermitted(m) if m.contains("phone_number")),
            "{err}"
        );
        // A CSV that says something other than records.json.
        let mut files = named(&package.tar);
        files[4].1 = b"target,user_id\r\nusername:bob,u-9\r\n".to_vec();
        let err = verify(&resign(files, &key()), &public).unwrap_err();
        assert!(
            matches!(&err, PackageError::Malformed { file, .. } if file == "subscriber.csv"),
            "{err}"
        );
        narrowed.outcome = Outcome::Refused;
        let mut files = named(&package.tar);
        files[2].1 = serde_json::to_vec(&narrowed).unwrap();
        assert!(verify(&resign(files, &key()), &public).is_err());
    }

    #[test]
    fn the_audit_proof_sits_outside_the_signed_part() {
        let package = build(&input(), key()).unwrap();
        let proof = br#"{"index":41,"proof":"c2sp.org/tlog-proof@v1\n..."}"#;
        let with_proof = append_proof(&package.tar, proof).unwrap();
        let verified = verify(&with_proof, &key().verifying_key()).unwrap();
        assert_eq!(verified.audit_proof.as_deref(), Some(&proof[..]));
        assert_eq!(verified.manifest, package.manifest);
        let files = files_of(&with_proof);
        assert_eq!(files.last().unwrap().name, AUDIT_PROOF_FILE);
        assert_eq!(files.last().unwrap().mtime, files[0].mtime);
        assert_eq!(files_of(&package.tar)[..], files[..files.len() - 1]);
        assert!(matches!(
            append_proof(&with_proof, proof),
            Err(PackageError::Archive(TarError::Duplicate(_)))
        ));
        assert!(matches!(
            append_proof(&package.tar, b"not json"),
            Err(PackageError::Input(_))
        ));
    }

    fn refused(input: &PackageInput) -> String {
        match build(input, key()) {
            Err(PackageError::NotPermitted(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// An order awaiting clarification (e-Evidence Art 10(6)) releases nothing, whatever its
    /// tables say.
    #[test]
    fn the_builder_refuses_an_order_awaiting_clarification() {
        let mut pending = input();
        pending.scope.outcome = Outcome::ClarificationNeeded;
        assert!(refused(&pending).contains("clarification"));
    }

    #[test]
    fn the_builder_refuses_a_column_the_scope_does_not_release() {
        // The reviewer removed phone numbers and registration IPs.
        let mut narrowed = input();
        narrowed.scope = crate::policy::narrow(
            &narrowed.scope,
            &NarrowingRequest {
                keep: vec![KeepCategory {
                    category: Category::Subscriber,
                    fields: vec![FieldId::UserId, FieldId::Username, FieldId::AccountStatus],
                }],
                keep_targets: None,
                time_window: None,
                reason: "only what the case needs".into(),
            },
        )
        .unwrap();
        assert_eq!(
            narrowed
                .scope
                .field_status(Category::Subscriber, FieldId::PhoneNumber)
                .map(FieldStatus::releases),
            Some(false)
        );
        narrowed.tables = vec![subscriber()];
        let m = refused(&narrowed);
        assert!(
            m.contains("does not release phone_number in subscriber"),
            "{m}"
        );
        // Identification was narrowed away entirely.
        narrowed.tables = vec![identification()];
        assert!(refused(&narrowed).contains("access_ip"));
        // Without the removed column, the same scope builds.
        let mut table = subscriber();
        table.columns.remove(3);
        for row in &mut table.rows {
            row.remove(3);
        }
        narrowed.tables = vec![table];
        build(&narrowed, key()).unwrap();
    }

    #[test]
    fn the_builder_refuses_malformed_tables_and_refused_scopes() {
        let with = |change: &dyn Fn(&mut Table)| {
            let mut i = input();
            let mut t = subscriber();
            change(&mut t);
            i.tables = vec![t];
            refused(&i)
        };
        assert!(with(&|t| t.columns[0] = "user".into()).contains("`target`"));
        assert!(with(&|t| t.columns.truncate(1)).contains("no field column"));
        assert!(with(&|t| t.columns[1] = "password".into()).contains("not a catalogue field"));
        assert!(with(&|t| t.columns[1] = "access_ip".into()).contains("access_ip in subscriber"));
        assert!(with(&|t| t.columns.swap(1, 2)).contains("catalogue order"));
        assert!(with(&|t| t.columns[2] = "user_id".into()).contains("repeated"));
        assert!(with(&|t| t.rows[1].pop().map(drop).unwrap_or(())).contains("row 2"));
        assert!(
            with(&|t| t.category = Category::IpHistory).contains("ip_history is not in the scope")
        );

        let mut twice = input();
        twice.tables.push(subscriber());
        assert!(refused(&twice).contains("two tables"));

        // No registry facts: the engine refuses the order, and so does the builder.
        let mut unregistered = input();
        unregistered.scope = decision_with(RegistryFacts {
            issuer_kind: None,
            validator_kind: None,
            issuer_country: None,
            validation_signed_by_validator: false,
            earlier_preservations: 0,
        });
        assert_eq!(unregistered.scope.outcome, Outcome::Refused);
        assert!(refused(&unregistered).contains("refuses the order"));
    }

    /// A change to a valid input, and a word the refusal must contain.
    type Case = (&'static str, fn(&mut PackageInput));

    #[test]
    fn the_builder_refuses_inconsistent_input() {
        let cases: [Case; 5] = [
            ("reference", |i| i.reference = "OTHER".into()),
            ("instrument", |i| i.instrument = "us.sca_2703d".into()),
            ("scope_sha256", |i| i.scope_sha256 = "ABC".into()),
            ("two different people", |i| {
                i.approvers = strings(&["legal.one", " legal.one"]);
            }),
            ("order id", |i| i.order_id = " ".into()),
        ];
        for (what, change) in cases {
            let mut i = input();
            change(&mut i);
            match build(&i, key()) {
                Err(PackageError::Input(m)) => assert!(m.contains(what), "{what}: {m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
