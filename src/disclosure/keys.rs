//! The package signing key: an Ed25519 key in a PKCS#8 PEM file (mode 0600), kept apart from
//! the audit checkpoint key so that either can be rotated or provisioned on its own.
//!
//! The file handling is the audit key's ([`crate::audit::keys`]): create 0600, never overwrite,
//! refuse a file other users can read. Authorities receive only the public key (SPKI PEM) and
//! its [`key_id`], which every manifest names.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::package::PackageError;
use crate::audit::{AuditError, keys as audit_keys};
use crate::settings::PackageSettings;

/// The key's id: lowercase hex of the first 8 bytes of SHA-256 of the raw 32-byte public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The public key as SubjectPublicKeyInfo PEM (what `openssl pkey -pubin` reads).
pub fn public_pem(key: &VerifyingKey) -> String {
    audit_keys::public_pem(key)
}

/// Parses a SubjectPublicKeyInfo PEM public key. Text around the PEM block (such as the
/// `key id:` line `writ keys show --package` prints) is ignored, as RFC 7468 section 2 lets
/// parsers do.
pub fn parse_public_pem(text: &str) -> Result<VerifyingKey, PackageError> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let block = text
        .find(BEGIN)
        .and_then(|start| {
            let end = start + text[start..].find(END)? + END.len();
            Some(&text[start..end])
        })
        .unwrap_or(text);
    audit_keys::parse_public_pem(block).map_err(key_error)
}

/// Creates a new key at `path` (mode 0600, parent folders created); refuses to replace an
/// existing file, since packages already signed name the old key.
pub fn init(path: &Path) -> Result<VerifyingKey, PackageError> {
    audit_keys::init(path).map_err(key_error)
}

/// Loads the key at `path`, refusing a file other users could read.
pub fn load(path: &Path) -> Result<SigningKey, PackageError> {
    audit_keys::load(path).map_err(key_error)
}

/// Loads the key named by the settings, creating it first when it is missing and
/// `create_key_if_missing` allows (the embedded default; production provisions the key).
pub fn load_or_create(settings: &PackageSettings) -> Result<SigningKey, PackageError> {
    let path = settings.signing_key_path.as_path();
    if !audit_keys::exists(path) {
        if !settings.create_key_if_missing {
            return Err(PackageError::Key(format!(
                "{}: no package signing key; provision one with `writ keys init --package`",
                path.display()
            )));
        }
        // Another instance may create it at the same moment: `init` never overwrites, so
        // losing that race leaves the winner's key, which is then loaded.
        if let Err(e) = init(path)
            && !audit_keys::exists(path)
        {
            return Err(e);
        }
    }
    load(path)
}

/// The package key as the settings place it: in a PKCS#11 token (`signing_key = "pkcs11"`;
/// nothing is opened until it signs, so a token that is missing at start-up is reported by
/// `/readyz` rather than stopping the server), else the file ([`load_or_create`]).
pub fn signing_key(settings: &PackageSettings) -> Result<crate::keystore::Key, PackageError> {
    match settings.signing_key {
        crate::settings::KeyLocation::Pkcs11 => {
            let config = settings
                .pkcs11
                .token_config()
                .map_err(|e| PackageError::Key(e.to_string()))?;
            Ok(crate::keystore::Key::token(config))
        }
        crate::settings::KeyLocation::File => load_or_create(settings).map(Into::into),
    }
}

/// Generates the package key in the PKCS#11 token the settings name (`writ keys init
/// --package --pkcs11`); it never leaves the token.
pub fn init_in_token(settings: &PackageSettings) -> Result<VerifyingKey, PackageError> {
    let config = settings
        .pkcs11
        .token_config()
        .map_err(|e| PackageError::Key(e.to_string()))?;
    crate::keystore::generate(&config).map_err(|e| PackageError::Key(e.to_string()))
}

/// Where the public halves of retired package keys are kept, beside the key itself
/// (`<signing_key_path>.retired.pem`, public, one PEM block per retired key, oldest first).
pub fn retired_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".retired.pem");
    std::path::PathBuf::from(name)
}

/// The retired public keys, oldest first (none if the file does not exist).
pub fn retired(path: &Path) -> Result<Vec<VerifyingKey>, PackageError> {
    let file = retired_path(path);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PackageError::Key(format!("{}: {e}", file.display()))),
    };
    const END: &str = "-----END PUBLIC KEY-----";
    text.split_inclusive(END)
        .filter(|block| block.contains(END))
        .map(parse_public_pem)
        .collect()
}

/// A package key rotation prepared by [`prepare_rotation`] (a key file) or
/// [`prepare_token_rotation`] (a PKCS#11 token): the new key is made beside the old one and the
/// old public key is kept among the retired ones; [`Rotation::commit`] puts the new key in
/// place.
pub struct Rotation {
    /// The key being retired.
    pub old: VerifyingKey,
    /// The key that signs from now on.
    pub new: VerifyingKey,
    staged: Staged,
}

/// Where the new key waits until the rotation is committed.
enum Staged {
    /// The new key file (`<path>.next`), renamed over `path`.
    File {
        path: std::path::PathBuf,
        staged: std::path::PathBuf,
    },
    /// The new key pair in the token (`<label>.next`); the current pair is renamed
    /// `<label>.retired-<key id>`, then the new one takes the settings' label.
    Token(Box<crate::keystore::TokenRotation>),
}

/// Appends `old` to the retired public keys beside `path`, unless it is there already.
fn retire(path: &Path, old: &VerifyingKey) -> Result<(), PackageError> {
    if retired(path)?.contains(old) {
        return Ok(());
    }
    use std::io::Write;
    let file = retired_path(path);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| {
            f.write_all(public_pem(old).as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| PackageError::Key(format!("{}: {e}", file.display())))
}

/// Generates the new package key in the PKCS#11 token the settings name, as
/// `<key_label>.next` (sensitive, not extractable), and appends the current public key to the
/// retired keys beside `signing_key_path` ([`retired_path`]), so that packages signed before
/// stay verifiable. A `<key_label>.next` left by a rotation that did not finish is refused.
pub fn prepare_token_rotation(settings: &PackageSettings) -> Result<Rotation, PackageError> {
    let key_error = |e: crate::keystore::KeyError| PackageError::Key(e.to_string());
    let current = settings.pkcs11.token_config().map_err(key_error)?;
    let staged = crate::keystore::TokenRotation::prepare(&current, |old| {
        format!("{}.retired-{}", current.key_label, key_id(old))
    })
    .map_err(key_error)?;
    if let Err(e) = retire(&settings.signing_key_path, &staged.old) {
        staged.abandon();
        return Err(e);
    }
    Ok(Rotation {
        old: staged.old,
        new: staged.new,
        staged: Staged::Token(Box::new(staged)),
    })
}

/// Writes a new key beside the one at `path` (mode 0600) and appends the old public key to
/// the retired keys ([`retired_path`]), so that packages signed before stay verifiable.
pub fn prepare_rotation(path: &Path) -> Result<Rotation, PackageError> {
    let old = load(path)?.verifying_key();
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    let staged = std::path::PathBuf::from(name);
    if staged.exists() {
        return Err(PackageError::Key(format!(
            "{} exists: an earlier rotation did not finish; remove it and rotate again",
            staged.display()
        )));
    }
    let new = init(&staged)?;
    if let Err(e) = retire(path, &old) {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    Ok(Rotation {
        old,
        new,
        staged: Staged::File {
            path: path.to_path_buf(),
            staged,
        },
    })
}

impl Rotation {
    /// Puts the new key in place: renames the new key file over the old one (atomically), or,
    /// in a token, renames the current pair to `<label>.retired-<key id>` and then the new pair
    /// to the settings' label (if the second rename fails, the first is undone).
    pub fn commit(self) -> Result<(), PackageError> {
        match self.staged {
            Staged::File { path, staged } => std::fs::rename(&staged, &path)
                .map_err(|e| PackageError::Key(format!("{}: {e}", path.display()))),
            Staged::Token(staged) => staged
                .commit()
                .map_err(|e| PackageError::Key(e.to_string())),
        }
    }

    /// Removes the staged key (the rotation did not happen; the retired list keeps the old
    /// public key, which is harmless: it is still the current one).
    pub fn abandon(self) {
        match self.staged {
            Staged::File { staged, .. } => {
                let _ = std::fs::remove_file(&staged);
            }
            Staged::Token(staged) => staged.abandon(),
        }
    }
}

fn key_error(e: AuditError) -> PackageError {
    match e {
        AuditError::Key(reason) => PackageError::Key(reason),
        other => PackageError::Key(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn settings(path: &Path, create: bool) -> PackageSettings {
        PackageSettings {
            signing_key_path: path.to_path_buf(),
            create_key_if_missing: create,
            retention_days: 30,
            provider_name: "Provider".into(),
            signing_key: crate::settings::KeyLocation::File,
            pkcs11: crate::settings::Pkcs11Settings {
                module: PathBuf::new(),
                token_label: String::new(),
                key_label: String::new(),
                pin_env: String::new(),
                pin_file: PathBuf::new(),
                pin: crate::settings::SecretString::default(),
            },
        }
    }

    #[test]
    fn load_or_create_creates_only_when_allowed_and_then_reuses_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("package.key");
        let err = load_or_create(&settings(&path, false)).unwrap_err();
        assert!(
            err.to_string().contains("writ keys init --package"),
            "{err}"
        );
        assert!(!path.exists());

        let key = load_or_create(&settings(&path, true)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&settings(&path, false)).unwrap();
        assert_eq!(key.verifying_key(), again.verifying_key());
        assert!(
            init(&path)
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_or_create(&settings(&path, true)).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn key_id_is_the_first_8_bytes_of_sha256_of_the_raw_key_and_pem_round_trips() {
        let key = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        // Independently computed (Python `cryptography` and hashlib) for the seed 0x09 * 32.
        assert_eq!(
            hex::encode(key.as_bytes()),
            "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618"
        );
        assert_eq!(key_id(&key), "dbc298251c51321b");
        let pem = public_pem(&key);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(parse_public_pem(&pem).unwrap(), key);
        let shown = format!("key id: {}\n{pem}\n", key_id(&key));
        assert_eq!(parse_public_pem(&shown).unwrap(), key);
        assert!(parse_public_pem("not a key").is_err());
    }
}
