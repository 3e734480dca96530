//! The checkpoint signing key: provisioned once (`writ keys init`) as a PKCS#8 PEM file with
//! mode 0600, shared by every instance. Only its public half is ever published.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use super::AuditError;

fn key_error(path: &Path, reason: impl std::fmt::Display) -> AuditError {
    AuditError::Key(format!("{}: {reason}", path.display()))
}

/// Creates a new Ed25519 key at `path` (mode 0600, parent folders created). Refuses to
/// overwrite an existing file: replacing the key would orphan every checkpoint signed so far.
pub fn init(path: &Path) -> Result<VerifyingKey, AuditError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| key_error(dir, e))?;
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| key_error(path, format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_error(path, e))?;
    // Written whole to a temporary file, then linked into place: an instance starting at the
    // same moment never reads a half-written key, and of two racing creators exactly one wins
    // (the link fails if the key exists); the loser loads the winner's key.
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let temporary = std::path::PathBuf::from(name);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(pem.as_bytes())?;
            file.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    linked.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            key_error(path, "a signing key already exists; refusing to replace it")
        } else {
            key_error(path, e)
        }
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        // The link itself is durable once the folder is synced.
        let _ = d.sync_all();
    }
    Ok(key.verifying_key())
}

/// Loads the signing key, refusing a file that other users could read.
pub fn load(path: &Path) -> Result<SigningKey, AuditError> {
    let meta = std::fs::metadata(path).map_err(|e| key_error(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(key_error(
            path,
            "signing key is readable by other users; chmod 600 it",
        ));
    }
    let pem = std::fs::read_to_string(path).map_err(|e| key_error(path, e))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| key_error(path, format!("not an Ed25519 PKCS#8 PEM key: {e}")))
}

/// Whether a key file exists at `path`.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The public key as SubjectPublicKeyInfo PEM (what `openssl pkey -pubin` reads).
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// Parses a SubjectPublicKeyInfo PEM public key.
pub fn parse_public_pem(pem: &str) -> Result<VerifyingKey, AuditError> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| AuditError::Key(format!("not an Ed25519 public key PEM: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_a_private_file_and_never_overwrites_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("audit.key");
        let public = init(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap().verifying_key(), public);
        let err = init(&path).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(
            load(&path).unwrap().verifying_key(),
            public,
            "the key is unchanged"
        );
        assert_eq!(parse_public_pem(&public_pem(&public)).unwrap(), public);
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        init(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("chmod 600"));
    }
}
