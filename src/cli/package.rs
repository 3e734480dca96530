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
    /// size and SHA-256, no unlisted file, and contents within the package's own scope; with
    /// `--certificate`, also the records certificate's signature and that it names this
    /// package (the SHA-256 of its manifest and its order).
    Verify {
        /// The package (a .tar file).
        package: PathBuf,
        /// The package signing public key (PEM, as `writ keys show --package` prints it).
        #[arg(long)]
        key: PathBuf,
        /// The records certificate handed over with the package (the workspace's
        /// `certificate.txt`).
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// The key the certificate is signed with, when the package key was rotated between
        /// the release and the certificate (default: `--key`).
        #[arg(long, requires = "certificate")]
        certificate_key: Option<PathBuf>,
    },
}

/// Runs the action.
pub fn run(action: PackageAction) -> anyhow::Result<()> {
    match action {
        PackageAction::Verify {
            package,
            key,
            certificate,
            certificate_key,
        } => {
            let verified = verify(&package, &key)?;
            if let Some(cert) = certificate {
                verify_certificate(&cert, certificate_key.as_deref().unwrap_or(&key), &verified)?;
            }
            Ok(())
        }
    }
}

fn read_key(key: &Path) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let pem = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the key file {}", key.display()))?;
    Ok(keys::parse_public_pem(&pem)?)
}

/// Checks a records certificate: its signature, then that it names the verified package.
fn verify_certificate(
    path: &Path,
    key: &Path,
    package: &package::VerifiedPackage,
) -> anyhow::Result<()> {
    use crate::disclosure::certificate::{self, MAX_CERTIFICATE_BYTES};
    let public = read_key(key)?;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .take(MAX_CERTIFICATE_BYTES as u64 + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let cert = match certificate::verify(&text, &public) {
        Ok(c) => c,
        Err(failure) => bail!("certificate verification FAILED: {failure}"),
    };
    if let Err(failure) = certificate::matches_package(&cert, package) {
        bail!("certificate verification FAILED: {failure}");
    }
    println!(
        "OK: certificate {} verifies with key {} (Ed25519) and names this package (manifest SHA-256 {})",
        path.display(),
        cert.key_id,
        package.manifest_sha256
    );
    for (name, value) in &cert.lines {
        if ["produced-by", "system", "gathered-at", "released-at"].contains(&name.as_str()) {
            println!("  {name}: {value}");
        }
    }
    println!("OK: certificate verified");
    Ok(())
}

fn verify(path: &Path, key: &Path) -> anyhow::Result<package::VerifiedPackage> {
    let public = read_key(key)?;
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
    Ok(verified)
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
