//! `writ package`: check a disclosure package offline, as the receiving authority would.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::disclosure::keys;
use crate::disclosure::package::{self, AUDIT_PROOF_FILE, MAX_PACKAGE_BYTES, SIGNATURE_FILE};

/// `writ package` actions.
#[derive(Debug, Subcommand)]
pub enum PackageAction {
    /// Verify a package offline (needs no database): the manifest's signature, every file's
    /// size and SHA-256, no unlisted file, and contents within the package's own scope.
    Verify {
        /// The package (a .tar file).
        package: PathBuf,
        /// The package signing public key (PEM, as `writ keys show --package` prints it).
        #[arg(long)]
        key: PathBuf,
    },
}

/// Runs the action.
pub fn run(action: PackageAction) -> anyhow::Result<()> {
    match action {
        PackageAction::Verify { package, key } => verify(&package, &key),
    }
}

fn verify(path: &Path, key: &Path) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the key file {}", key.display()))?;
    let public = keys::parse_public_pem(&pem)?;
    let tar = read_limited(path)?;
    let verified = match package::verify(&tar, &public) {
        Ok(v) => v,
        Err(failure) => bail!("verification FAILED: {failure}"),
    };
    let m = &verified.manifest;
    println!(
        "package: {} (SHA-256 {})",
        path.display(),
        crate::digest::sha256_hex(&tar)
    );
    println!(
        "OK: {SIGNATURE_FILE} verifies with key {} (Ed25519)",
        verified.key_id
    );
    println!(
        "order: {} version {} (reference {}, instrument {}, authority {})",
        m.order_id, m.order_version, m.reference, m.instrument, m.authority_id
    );
    println!(
        "created: {}",
        m.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    println!("approved by: {}", m.approvers.join(", "));
    println!("scope SHA-256: {}", m.scope_sha256);
    println!("files (size and SHA-256 match the signed manifest):");
    for f in &m.files {
        println!("  {:<20} {:>10} bytes  {}", f.name, f.size, f.sha256);
    }
    println!("records:");
    for (category, count) in &verified.record_counts {
        println!("  {category}: {count}");
    }
    if m.csv_formula_escape {
        println!(
            "note: CSV cells starting with = + - @ tab or CR carry an added leading ' (JSON files hold the exact values)"
        );
    }
    match &verified.audit_proof {
        Some(proof) => println!(
            "{AUDIT_PROOF_FILE}: present ({} bytes), not covered by the signature; check it against an audit-log checkpoint",
            proof.len()
        ),
        None => println!("{AUDIT_PROOF_FILE}: absent"),
    }
    println!("OK: package verified");
    Ok(())
}

/// Reads the package, refusing one larger than any package Writ makes.
fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut tar = Vec::new();
    file.take(MAX_PACKAGE_BYTES + 1)
        .read_to_end(&mut tar)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if tar.len() as u64 > MAX_PACKAGE_BYTES {
        bail!(
            "verification FAILED: {} is larger than {MAX_PACKAGE_BYTES} bytes, more than any package",
            path.display()
        );
    }
    Ok(tar)
}
