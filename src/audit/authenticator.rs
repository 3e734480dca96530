//! Entry authenticators: proof that an audit entry was appended by the Writ process.
//!
//! The Merkle tree and the signed checkpoints prove that nothing *already signed* changes. They
//! cannot tell an entry Writ appended from a well-formed row someone inserted straight into the
//! database before the next checkpoint: the signer would commit to both. So every entry carries
//! an authenticator made when it is appended, with a key that lives in the Writ process and in
//! a key file (`audit.entry_key_path`), or in a PKCS#11 token (`audit.entry_key = "pkcs11"`,
//! signing with `CKM_EDDSA`, the same RFC 8032 signature), never in the database:
//!
//! ```text
//! authenticator = Ed25519-Sign(entry key, "writ-audit-entry/v1\n" || leaf hash)   (RFC 8032)
//! ```
//!
//! The leaf hash is `SHA-256(0x00 || leaf)` (RFC 9162 section 2.1.1), and the leaf holds the
//! entry's `seq`, so an authenticator is bound to one entry at one position. A signature rather
//! than a MAC: an auditor holding only the public half (`GET /audit/keys`) can check every
//! entry of an export offline, and cannot make authenticators.
//!
//! Before signing a checkpoint Writ checks every entry since the last one (see
//! [`super::checkpoint`]). Checkpoints signed that way are cosigned with the entry key (a second
//! signature line of the C2SP signed note, under the key name `<origin>/entries`, which other
//! verifiers ignore). After a cosigned checkpoint every entry must carry a valid authenticator.
//! Before it, an entry may lack one only if it was appended before the upgrade that introduced
//! authenticators: the migration records how many there were (`writ_meta`,
//! `audit.unauthenticated_before`).

use ed25519_dalek::{Signature, VerifyingKey};

use super::merkle::Hash;
use super::note::{NoteSigner, NoteVerifier};
use crate::keystore::{Key, KeyError};

/// Domain separation: these signatures can never be taken for another message of Writ's.
const CONTEXT: &[u8] = b"writ-audit-entry/v1\n";

/// `writ_meta` key: entries below this position may lack an authenticator (appended before
/// authenticators existed), until the first cosigned checkpoint.
pub const UNAUTHENTICATED_BEFORE: &str = "audit.unauthenticated_before";

/// Length of an authenticator (an Ed25519 signature).
pub const LEN: usize = 64;

fn message(leaf_hash: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + leaf_hash.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(leaf_hash);
    m
}

/// The authenticator of the entry whose Merkle leaf hash is `leaf_hash`; fails only for a key
/// in a token that cannot sign now.
pub fn make(key: &Key, leaf_hash: &Hash) -> Result<[u8; LEN], KeyError> {
    Ok(key.sign(&message(leaf_hash))?.to_bytes())
}

/// Whether `authenticator` is the entry key's signature over `leaf_hash`.
pub fn check(key: &VerifyingKey, leaf_hash: &Hash, authenticator: &[u8]) -> bool {
    let Ok(bytes) = <[u8; LEN]>::try_from(authenticator) else {
        return false;
    };
    key.verify_strict(&message(leaf_hash), &Signature::from_bytes(&bytes))
        .is_ok()
}

/// The key name of the entry key's cosignatures on checkpoints of log `origin`.
pub fn cosigner_name(origin: &str) -> String {
    format!("{origin}/entries")
}

/// The note signer that cosigns checkpoints with the entry key.
pub fn cosigner(origin: &str, key: impl Into<Key>) -> Result<NoteSigner, super::note::NoteError> {
    NoteSigner::new(cosigner_name(origin), key)
}

/// The note verifier of the entry key's cosignatures.
pub fn cosign_verifier(
    origin: &str,
    key: VerifyingKey,
) -> Result<NoteVerifier, super::note::NoteError> {
    NoteVerifier::from_public_key(&cosigner_name(origin), key)
}

/// Adds a signature line by `cosigner` to the signed note `note` (C2SP signed-note: a note may
/// carry several signatures, one per line after the blank line).
pub fn cosign(note: &str, cosigner: &NoteSigner) -> Result<String, super::note::NoteError> {
    let split = note
        .rfind("\n\n")
        .ok_or(super::note::NoteError::MalformedNote(
            "no blank line before signatures",
        ))?;
    let text = &note[..split + 1];
    let own = cosigner.sign(text)?;
    // `own` is `text \n <signature line>`; keep the existing lines and add ours.
    let line = &own[text.len() + 1..];
    Ok(format!("{note}{line}"))
}

/// Whether `note` carries a signature line under the entry key's name for `origin`.
pub fn claims_cosignature(note: &str, origin: &str) -> bool {
    let prefix = format!("\u{2014} {} ", cosigner_name(origin));
    note.rfind("\n\n")
        .is_some_and(|split| note[split + 2..].lines().any(|l| l.starts_with(&prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::note::{Checkpoint, open, open_checkpoint};
    use ed25519_dalek::SigningKey;

    #[test]
    fn an_authenticator_verifies_for_its_leaf_only() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let leaf = crate::audit::merkle::leaf_hash(b"{\"seq\":0}");
        let auth = make(&Key::from(&key), &leaf).unwrap();
        assert!(check(&key.verifying_key(), &leaf, &auth));
        let moved = crate::audit::merkle::leaf_hash(b"{\"seq\":1}");
        assert!(!check(&key.verifying_key(), &moved, &auth));
        assert!(!check(&other.verifying_key(), &leaf, &auth));
        assert!(!check(&key.verifying_key(), &leaf, &auth[..63]));
    }

    #[test]
    fn a_cosigned_checkpoint_opens_under_both_keys() {
        let origin = "writ.example.org/audit";
        let main = NoteSigner::from_seed(origin, &[3; 32]).unwrap();
        let entry_key = SigningKey::from_bytes(&[4; 32]);
        let cp = Checkpoint {
            origin: origin.into(),
            size: 3,
            root: [9; 32],
            extensions: Vec::new(),
        };
        let note = main.sign_checkpoint(&cp).unwrap();
        assert!(!claims_cosignature(&note, origin));
        let both = cosign(&note, &cosigner(origin, entry_key.clone()).unwrap()).unwrap();
        assert!(claims_cosignature(&both, origin));
        assert_eq!(open_checkpoint(&both, &main.verifier()).unwrap(), cp);
        let v = cosign_verifier(origin, entry_key.verifying_key()).unwrap();
        assert_eq!(open(&both, &v).unwrap(), cp.to_body());
        assert!(open(&note, &v).is_err());
    }
}
