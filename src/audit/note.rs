//! Signed notes (C2SP `signed-note`) carrying transparency log checkpoints
//! (C2SP `tlog-checkpoint`), with Ed25519 signatures.
//!
//! The formats match `golang.org/x/mod/sumdb/note` byte for byte, so
//! checkpoints signed here can be checked by the wider transparency-log
//! tooling (witnesses, monitors) and vice versa.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// C2SP signed-note "Signature types": identifier byte of Ed25519 signatures.
const ALG_ED25519: u8 = 0x01;

/// Maximum number of signature lines accepted by [`open`]. C2SP signed-note
/// ("Format") says verifiers SHOULD bound this and MUST accept at least 16;
/// 100 matches the Go implementation.
const MAX_SIGNATURES: usize = 100;

/// Prefix of every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Errors from building, signing, opening and parsing notes and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Key name is empty or contains Unicode whitespace or `+`
    /// (C2SP signed-note, "Format").
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// The verifier key string is not `name+hex8+base64(alg||key)`.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// The key ID in the verifier key does not match the key it carries.
    #[error("verifier key id {stated:08x} does not match computed id {computed:08x}")]
    KeyIdMismatch {
        /// Key ID written in the verifier key.
        stated: u32,
        /// Key ID computed from the name and public key.
        computed: u32,
    },
    /// The verifier key uses a signature type other than Ed25519 (0x01).
    #[error("unsupported signature type 0x{0:02x}")]
    UnsupportedAlgorithm(u8),
    /// The text to sign is not valid note text.
    #[error("invalid note text: {0}")]
    InvalidText(&'static str),
    /// The signing key cannot sign (a PKCS#11 token missing, locked, ...).
    #[error("the signing key cannot sign: {0}")]
    Key(String),
    /// The note does not follow the signed-note format.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A signature from the trusted key failed to verify. C2SP signed-note
    /// ("Signatures") says clients SHOULD then reject the whole note.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name of the failing signature line.
        name: String,
        /// Key ID of the failing signature line.
        key_id: u32,
    },
    /// No signature line from the trusted key was found.
    #[error("note has no signature from key {name}+{key_id:08x}")]
    Unverified {
        /// Name of the trusted key.
        name: String,
        /// Key ID of the trusted key.
        key_id: u32,
    },
    /// The note text is not a valid checkpoint body.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

/// C2SP signed-note "Format": key names are non-empty and contain neither
/// Unicode whitespace nor `+` (the `+` separates fields of a verifier key).
fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// C2SP signed-note "Format": notes MUST NOT contain ASCII control characters
/// other than newline. (Valid UTF-8 is guaranteed by `&str`.)
fn has_forbidden_control(s: &str) -> bool {
    s.chars().any(|c| c < '\u{20}' && c != '\n')
}

/// C2SP signed-note "Signatures" / "Ed25519 signatures":
/// `key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]`.
fn ed25519_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Parses an ASCII decimal with no leading zeroes (unless the value is 0),
/// as C2SP tlog-checkpoint requires for the tree size and C2SP tlog-proof for
/// the index. Rejects signs, spaces and overflow.
pub(crate) fn parse_canonical_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Decodes standard, padded base64 (RFC 4648 section 4) of exactly 32 bytes.
/// The engine rejects missing padding and non-zero trailing bits, so every
/// hash has a single accepted encoding.
pub(crate) fn decode_hash_b64(s: &str) -> Option<Hash> {
    B64.decode(s).ok()?.try_into().ok()
}

/// A transparency log checkpoint (C2SP tlog-checkpoint, "Note text").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique identifier of the log, e.g. `example.com/log42`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 9162 Merkle Tree Hash of the first `size` leaves.
    pub root: Hash,
    /// Optional opaque extension lines (without their trailing newline).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Renders the note text: `origin\nsize\nbase64(root)\n` followed by each
    /// extension line and a newline.
    ///
    /// Does not validate; [`Checkpoint::validate`] (called by
    /// [`NoteSigner::sign_checkpoint`]) checks that the result parses back.
    pub fn to_body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for ext in &self.extensions {
            s.push_str(ext);
            s.push('\n');
        }
        s
    }

    /// Checks that [`Checkpoint::to_body`] yields a valid checkpoint: a
    /// non-empty origin and non-empty extension lines, none containing a
    /// newline or another control character.
    pub fn validate(&self) -> Result<(), NoteError> {
        let line_ok = |l: &str| !l.is_empty() && !l.contains('\n') && !has_forbidden_control(l);
        if !line_ok(&self.origin) {
            return Err(NoteError::MalformedCheckpoint("invalid origin line"));
        }
        if !self.extensions.iter().all(|e| line_ok(e)) {
            return Err(NoteError::MalformedCheckpoint("invalid extension line"));
        }
        Ok(())
    }

    /// Parses note text as a checkpoint (C2SP tlog-checkpoint, "Note text").
    ///
    /// Strict: at least three newline-terminated, non-empty lines; the size
    /// is canonical decimal; the root is padded standard base64 of exactly
    /// 32 bytes. Anything after the third line is kept as extension lines.
    pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let bad = NoteError::MalformedCheckpoint;
        if has_forbidden_control(body) {
            return Err(bad("control character"));
        }
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad("text does not end in a newline"));
        };
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(bad("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        let size = parse_canonical_u64(size).ok_or(bad("tree size is not canonical decimal"))?;
        let root = decode_hash_b64(root).ok_or(bad("root is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// An Ed25519 note signer: a key name plus a signing key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: crate::keystore::Key,
    public: VerifyingKey,
    key_id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    // Hand-written so the secret key can never end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field(
                "key_id",
                &format_args!("{:08x}", u32::from_be_bytes(self.key_id)),
            )
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Creates a signer; fails if `name` is not a valid key name
    /// (C2SP signed-note, "Format").
    pub fn new(
        name: impl Into<String>,
        key: impl Into<crate::keystore::Key>,
    ) -> Result<Self, NoteError> {
        let name = name.into();
        let key = key.into();
        if !is_valid_key_name(&name) {
            return Err(NoteError::InvalidKeyName(name));
        }
        let public = key.public().map_err(|e| NoteError::Key(e.to_string()))?;
        let key_id = ed25519_key_id(&name, public.as_bytes());
        Ok(Self {
            name,
            key,
            public,
            key_id,
        })
    }

    /// Creates a signer from a 32-byte Ed25519 seed (RFC 8032 private key),
    /// so keys can be stored and derived without a random number generator.
    pub fn from_seed(name: impl Into<String>, seed: &[u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, SigningKey::from_bytes(seed))
    }

    /// The signing key (to check that it can still sign: [`crate::keystore::Key::probe`]).
    pub fn key(&self) -> &crate::keystore::Key {
        &self.key
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.public
    }

    /// The key name that appears in signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`
    /// (C2SP signed-note, "Ed25519 signatures").
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Verifier key in the `golang.org/x/mod/sumdb/note` text form:
    /// `name+<8 lowercase hex key ID>+base64(0x01 || public key)`.
    pub fn verifier_key(&self) -> String {
        let mut typed = [0u8; 33];
        typed[0] = ALG_ED25519;
        typed[1..].copy_from_slice(self.public.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            u32::from_be_bytes(self.key_id),
            B64.encode(typed)
        )
    }

    /// The matching verifier, for checking notes this signer produced.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.public,
        }
    }

    /// Signs `text` and returns the complete signed note:
    /// `text || "\n" || "— " || name || " " || base64(key ID || signature) || "\n"`.
    ///
    /// `text` must end in a newline and contain no control characters other
    /// than newline (C2SP signed-note, "Format"). Ed25519 (RFC 8032) signs the
    /// exact text bytes, including the final newline.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::InvalidText("text does not end in a newline"));
        }
        if has_forbidden_control(text) {
            return Err(NoteError::InvalidText("control character"));
        }
        let sig: Signature = self
            .key
            .sign(text.as_bytes())
            .map_err(|e| NoteError::Key(e.to_string()))?;
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }

    /// Validates `checkpoint` and returns it as a signed note.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<String, NoteError> {
        checkpoint.validate()?;
        self.sign(&checkpoint.to_body())
    }
}

/// An Ed25519 note verifier: key name, key ID and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// The Ed25519 public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key
    }

    /// The verifier key string, `name+<8 hex key ID>+base64(0x01 || public key)`.
    pub fn verifier_key(&self) -> String {
        let mut typed = [0u8; 33];
        typed[0] = ALG_ED25519;
        typed[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            u32::from_be_bytes(self.key_id),
            B64.encode(typed)
        )
    }

    /// Parses a verifier key `name+hex8+base64(0x01 || public key)`, as
    /// produced by [`NoteSigner::verifier_key`] and Go's `note.NewVerifier`.
    ///
    /// Rejects bad names, a key ID that is not 8 hex digits or does not match
    /// the key, signature types other than Ed25519, wrong key lengths and
    /// public keys that are not valid curve points.
    /// A verifier for `key` under the key name `name` (for auditors holding the PEM public key
    /// rather than the verifier-key string).
    pub fn from_public_key(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: ed25519_key_id(name, key.as_bytes()),
            key,
        })
    }

    pub fn new(vkey: &str) -> Result<Self, NoteError> {
        let bad = NoteError::MalformedVerifierKey;
        // The base64 part may itself contain '+', so split at most twice.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+keyid+key"));
        };
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName(name.to_owned()));
        }
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("key id is not 8 hex digits"));
        }
        let stated = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id is not hex"))?;
        let raw = B64
            .decode(key_b64)
            .map_err(|_| bad("key is not standard base64"))?;
        let Some((&alg, key)) = raw.split_first() else {
            return Err(bad("empty key"));
        };
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm(alg));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let key_id = ed25519_key_id(name, &key);
        let computed = u32::from_be_bytes(key_id);
        if computed != stated {
            return Err(NoteError::KeyIdMismatch { stated, computed });
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("invalid Ed25519 public key"))?;
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// The key name this verifier matches in signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID this verifier matches in signatures.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    fn unverified(&self) -> NoteError {
        NoteError::Unverified {
            name: self.name.clone(),
            key_id: u32::from_be_bytes(self.key_id),
        }
    }
}

/// Opens a signed note (C2SP signed-note) and returns its text once a
/// signature by `verifier` has been checked.
///
/// The text is everything up to and including the newline before the last
/// blank line; the rest must be one or more well-formed signature lines.
/// Lines whose (name, key ID) pair is not the verifier's are ignored, as the
/// spec requires ("Signatures"); every line that does match must verify
/// (a bad one rejects the whole note), and at least one must be present.
pub fn open(note: &str, verifier: &NoteVerifier) -> Result<String, NoteError> {
    let bad = NoteError::MalformedNote;
    if has_forbidden_control(note) {
        return Err(bad("control character"));
    }
    // "the text is separated from the signatures by the last empty line".
    let Some(split) = note.rfind("\n\n") else {
        return Err(bad("no blank line before signatures"));
    };
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(bad("signature block missing or not newline-terminated"));
    }
    let mut verified = false;
    for (count, line) in sigs.split_terminator('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(bad("too many signatures"));
        }
        let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
            return Err(bad("signature line does not start with an em dash"));
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            return Err(bad("signature line has no signature"));
        };
        if !is_valid_key_name(name) {
            return Err(bad("invalid key name in signature line"));
        }
        let blob = B64
            .decode(b64)
            .map_err(|_| bad("signature is not standard base64"))?;
        // 4-byte key ID plus at least one byte of signature.
        let Some((id, sig)) = blob.split_first_chunk::<4>().filter(|(_, s)| !s.is_empty()) else {
            return Err(bad("signature too short"));
        };
        if name != verifier.name || *id != verifier.key_id {
            // Unknown key (possibly a witness cosignature): ignored per spec.
            continue;
        }
        let invalid = || NoteError::InvalidSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
        };
        let sig: [u8; 64] = sig.try_into().map_err(|_| invalid())?;
        // verify_strict also rejects small-order keys and non-canonical
        // encodings, which honest RFC 8032 signers never produce.
        verifier
            .key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| invalid())?;
        verified = true;
    }
    if !verified {
        return Err(verifier.unverified());
    }
    Ok(text.to_owned())
}

/// Opens a signed checkpoint: [`open`] followed by [`Checkpoint::parse_body`].
///
/// Callers should also compare `origin` with the log they expect, since a
/// key could in principle sign for more than one origin.
pub fn open_checkpoint(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse_body(&open(note, verifier)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer data from golang.org/x/mod/sumdb/note (note.go package
    // docs and note_test.go: TestNewVerifier, TestSign, TestOpen).
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter_signer() -> NoteSigner {
        // Go's private key encoding: PRIVATE+KEY+name+id+base64(0x01 || seed).
        let b64 = PETER_SKEY.splitn(5, '+').nth(4).unwrap();
        let raw = B64.decode(b64).unwrap();
        assert_eq!(raw[0], ALG_ED25519);
        let seed: [u8; 32] = raw[1..].try_into().unwrap();
        NoteSigner::from_seed("PeterNeumann", &seed).unwrap()
    }

    fn test_signer(name: &str, byte: u8) -> NoteSigner {
        NoteSigner::from_seed(name, &[byte; 32]).unwrap()
    }

    fn sample_checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/audit".into(),
            size: 12345,
            root: [7u8; 32],
            extensions: vec![],
        }
    }

    #[test]
    fn go_example_key_id_and_vkey() {
        let s = peter_signer();
        assert_eq!(s.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(s.verifier_key(), PETER_VKEY);
        let v = NoteVerifier::new(PETER_VKEY).unwrap();
        assert_eq!(v, s.verifier());
        assert_eq!(v.name(), "PeterNeumann");
        NoteVerifier::new(ENOCH_VKEY).unwrap();
    }

    #[test]
    fn go_example_sign_is_byte_identical() {
        // Ed25519 is deterministic, so the Go output must be reproduced exactly.
        let note = peter_signer().sign(TEXT).unwrap();
        assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
    }

    #[test]
    fn go_example_open() {
        let peter = NoteVerifier::new(PETER_VKEY).unwrap();
        let enoch = NoteVerifier::new(ENOCH_VKEY).unwrap();
        let note = format!("{TEXT}\n{PETER_SIG}");
        assert_eq!(open(&note, &peter).unwrap(), TEXT);
        // Two signatures: each key verifies its own, ignores the other's.
        let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        assert_eq!(open(&both, &peter).unwrap(), TEXT);
        assert_eq!(open(&both, &enoch).unwrap(), TEXT);
        // Only a foreign signature: unverified.
        let only_enoch = format!("{TEXT}\n{ENOCH_SIG}");
        assert!(matches!(
            open(&only_enoch, &peter),
            Err(NoteError::Unverified { .. })
        ));
        // Go's corrupted signature (bytes inserted into the base64).
        let corrupt = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(matches!(
            open(&corrupt, &peter),
            Err(NoteError::InvalidSignature { .. })
        ));
        // Tampered text.
        let tampered = note.replace("cryptography", "cryptographY");
        assert!(matches!(
            open(&tampered, &peter),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn go_malformed_notes_are_rejected() {
        let peter = NoteVerifier::new(PETER_VKEY).unwrap();
        let bad = [
            TEXT.to_string(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\u{1}{TEXT}\n{PETER_SIG}"),
            format!(
                "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
            format!("{TEXT}\n\u{2014} PeterNeumann\n"),
            format!("{TEXT}\n\u{2014} PeterNeumann AAAA\n"),
            format!(
                "{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{TEXT}\r\n{PETER_SIG}"),
        ];
        for msg in bad {
            assert!(
                matches!(open(&msg, &peter), Err(NoteError::MalformedNote(_))),
                "accepted {msg:?}"
            );
        }
    }

    #[test]
    fn c2sp_spec_examples_parse_and_ignore_unknown_keys() {
        // C2SP signed-note.md opening example (key not published): the note
        // is well formed, so opening with another key reports "unverified",
        // not "malformed".
        let peter = NoteVerifier::new(PETER_VKEY).unwrap();
        let poem = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
        assert!(matches!(
            open(poem, &peter),
            Err(NoteError::Unverified { .. })
        ));
        // C2SP tlog-checkpoint.md example.
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let cp = Checkpoint::parse_body(body).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_body(), body);
        let note = format!(
            "{body}\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
        );
        assert!(matches!(
            open(&note, &peter),
            Err(NoteError::Unverified { .. })
        ));
    }

    #[test]
    fn bad_verifier_keys_are_rejected() {
        // Every proper substring of the key, as in Go's TestNewVerifier.
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i == 0 && j == b.len() {
                    continue;
                }
                let k = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(NoteVerifier::new(k).is_err(), "accepted {k:?}");
            }
        }
        // Every single-byte increment (still ASCII here).
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            let k = String::from_utf8(m).unwrap();
            assert!(NoteVerifier::new(&k).is_err(), "accepted {k:?}");
        }
        // Go: wrong length key and unknown algorithm, with adjusted key ids.
        assert!(
            NoteVerifier::new(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            )
            .is_err()
        );
        assert!(
            NoteVerifier::new("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                .is_err()
        );
    }

    #[test]
    fn key_names_are_validated() {
        for name in [
            "",
            "a b",
            "a+b",
            "tab\there",
            "nbsp\u{a0}x",
            "ideo\u{3000}x",
        ] {
            assert!(matches!(
                NoteSigner::from_seed(name, &[1; 32]),
                Err(NoteError::InvalidKeyName(_))
            ));
        }
        NoteSigner::from_seed("example.com/log-1", &[1; 32]).unwrap();
    }

    #[test]
    fn sign_rejects_invalid_text() {
        let s = test_signer("example.com/audit", 3);
        assert!(matches!(s.sign("abc"), Err(NoteError::InvalidText(_))));
        assert!(matches!(s.sign(""), Err(NoteError::InvalidText(_))));
        assert!(matches!(s.sign("a\tb\n"), Err(NoteError::InvalidText(_))));
        assert!(matches!(s.sign("a\r\n"), Err(NoteError::InvalidText(_))));
    }

    #[test]
    fn texts_with_blank_lines_round_trip() {
        let s = test_signer("example.com/audit", 3);
        let v = s.verifier();
        for text in ["\n", "a\n\nb\n", "a\n\n", "\u{2014} x y\n\n\u{2014} z\n"] {
            let note = s.sign(text).unwrap();
            assert_eq!(open(&note, &v).unwrap(), text);
        }
    }

    #[test]
    fn checkpoint_round_trip() {
        let s = test_signer("example.com/audit", 9);
        let v = s.verifier();
        let mut cp = sample_checkpoint();
        let note = s.sign_checkpoint(&cp).unwrap();
        assert_eq!(open_checkpoint(&note, &v).unwrap(), cp);
        cp.extensions = vec!["ext one".into(), "\u{2014} two".into()];
        cp.size = 0;
        let note = s.sign_checkpoint(&cp).unwrap();
        assert_eq!(open_checkpoint(&note, &v).unwrap(), cp);
    }

    #[test]
    fn tampered_checkpoints_fail() {
        let s = test_signer("example.com/audit", 9);
        let v = s.verifier();
        let cp = sample_checkpoint();
        let note = s.sign_checkpoint(&cp).unwrap();
        let root_b64 = B64.encode(cp.root);
        let mut other_root = cp.root;
        other_root[0] ^= 1;
        let tampered = [
            note.replace("12345", "12346"),
            note.replace("example.com/audit\n", "example.com/audiT\n"),
            note.replacen(&root_b64, &B64.encode(other_root), 1),
            note.replacen("12345\n", "12345\nextra\n", 1),
        ];
        for t in tampered {
            assert_ne!(t, note);
            assert!(matches!(
                open_checkpoint(&t, &v),
                Err(NoteError::InvalidSignature { .. })
            ));
        }
        // Flip one bit of the signature itself.
        let (head, sig_line) = note.split_at(note.rfind('\u{2014}').unwrap());
        let b64 = sig_line.trim_end().rsplit(' ').next().unwrap();
        let mut raw = B64.decode(b64).unwrap();
        raw[10] ^= 1;
        let forged = format!("{head}\u{2014} example.com/audit {}\n", B64.encode(raw));
        assert!(matches!(
            open_checkpoint(&forged, &v),
            Err(NoteError::InvalidSignature { .. })
        ));
        // Truncated signature with the right key id.
        let mut raw = B64.decode(b64).unwrap();
        raw.truncate(40);
        let short = format!("{head}\u{2014} example.com/audit {}\n", B64.encode(raw));
        assert!(matches!(
            open_checkpoint(&short, &v),
            Err(NoteError::InvalidSignature { .. })
        ));
        // A different key with the same name is "unknown", so unverified.
        let other = test_signer("example.com/audit", 10).verifier();
        assert!(matches!(
            open_checkpoint(&note, &other),
            Err(NoteError::Unverified { .. })
        ));
        // A valid extra signature by an unknown key does not matter...
        let witness = test_signer("witness.example", 11);
        let witnessed = format!(
            "{note}{}",
            witness
                .sign(&cp.to_body())
                .unwrap()
                .rsplit('\n')
                .nth(1)
                .unwrap()
        ) + "\n";
        assert_eq!(open_checkpoint(&witnessed, &v).unwrap(), cp);
        // ...but a second, bad signature by the trusted key rejects the note.
        let doubled = format!("{note}{}", forged.rsplit('\n').nth(1).unwrap()) + "\n";
        assert!(matches!(
            open_checkpoint(&doubled, &v),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn checkpoint_parsing_is_strict() {
        let r = B64.encode([1u8; 32]);
        let good = format!("o\n5\n{r}\n");
        Checkpoint::parse_body(&good).unwrap();
        let unpadded = r.trim_end_matches('=').to_string();
        let short = B64.encode([1u8; 31]);
        let long = B64.encode([1u8; 33]);
        let bad = [
            format!("o\n5\n{r}"),
            format!("\n5\n{r}\n"),
            format!("o\n05\n{r}\n"),
            format!("o\n+5\n{r}\n"),
            format!("o\n 5\n{r}\n"),
            format!("o\n\n{r}\n"),
            format!("o\n18446744073709551616\n{r}\n"),
            format!("o\n5\n{unpadded}\n"),
            format!("o\n5\n{short}\n"),
            format!("o\n5\n{long}\n"),
            format!("o\n5\n{r}\n\n"),
            format!("o\n5\n{r}\next\n\n"),
            "o\n5\n".to_string(),
            format!("o\t\n5\n{r}\n"),
        ];
        for b in bad {
            assert!(
                matches!(
                    Checkpoint::parse_body(&b),
                    Err(NoteError::MalformedCheckpoint(_))
                ),
                "accepted {b:?}"
            );
        }
        let cp = Checkpoint::parse_body(&format!("o\n0\n{r}\n")).unwrap();
        assert_eq!(cp.size, 0);
        let cp = Checkpoint::parse_body(&format!("o\n18446744073709551615\n{r}\na\nb\n")).unwrap();
        assert_eq!(cp.size, u64::MAX);
        assert_eq!(cp.extensions, vec!["a", "b"]);
    }

    #[test]
    fn invalid_checkpoints_are_not_signed() {
        let s = test_signer("example.com/audit", 9);
        let mut cp = sample_checkpoint();
        cp.origin = String::new();
        assert!(s.sign_checkpoint(&cp).is_err());
        cp.origin = "a\nb".into();
        assert!(s.sign_checkpoint(&cp).is_err());
        let mut cp = sample_checkpoint();
        cp.extensions = vec![String::new()];
        assert!(s.sign_checkpoint(&cp).is_err());
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let s = peter_signer();
        let d = format!("{s:?}");
        assert!(d.contains("c74f20a3"), "{d}");
        assert!(!d.to_lowercase().contains("secret"), "{d}");
    }
}
