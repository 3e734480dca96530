//! Where a signing key lives: an Ed25519 key loaded from a file into memory, or an Ed25519 key
//! pair in a PKCS#11 token (a hardware security module, or SoftHSM2 for tests), which signs
//! inside the token and never lets the private key out.
//!
//! Both produce plain RFC 8032 Ed25519 signatures (PKCS#11 3.0 `CKM_EDDSA` without parameters is
//! pure Ed25519 on an `edwards25519` key, section 2.3.14 of the current mechanisms spec), so
//! everything that verifies a file key's signatures verifies a token's unchanged.
//!
//! A token key connects on first use and again after any failure, so a token that goes away
//! and comes back needs no restart; [`Key::probe`] says why one is unusable (module, token, PIN,
//! key), which is what `/readyz` and `writ doctor` report. The PIN is never logged or shown.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// DER of the object identifier id-Ed25519 (1.3.101.112, RFC 8410 section 3): the
/// `CKA_EC_PARAMS` of an Ed25519 key pair (PKCS#11 3.0, `CKK_EC_EDWARDS`).
const ED25519_OID_DER: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// Why a key cannot sign; the text names the module, token or key (never the PIN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// A PIN, kept out of `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// Wraps a PIN (surrounding whitespace, such as a file's final newline, removed).
    pub fn new(pin: &str) -> Self {
        Self(pin.trim().to_owned())
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Which key in which token, and how to log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// The vendor's PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, as `softhsm2-util --show-slots` prints it).
    pub token_label: String,
    /// The label of the key pair in the token.
    pub key_label: String,
    /// The user PIN.
    pub pin: Pin,
}

impl TokenConfig {
    /// Names the token and key for messages.
    pub fn describe(&self) -> String {
        format!(
            "key `{}` in PKCS#11 token `{}`",
            self.key_label, self.token_label
        )
    }
}

/// A signing key, wherever it lives. Cheap to clone.
#[derive(Clone)]
pub enum Key {
    /// In memory, loaded from a file (boxed: a key in a token is a pointer).
    File(Box<SigningKey>),
    /// In a PKCS#11 token.
    Token(Arc<TokenKey>),
}

impl std::fmt::Debug for Key {
    // Hand-written so that the secret key can never end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(k) => f
                .debug_tuple("Key::File")
                .field(&hex_prefix(k.verifying_key().as_bytes()))
                .finish(),
            Self::Token(t) => f.debug_tuple("Key::Token").field(&t.config).finish(),
        }
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl From<SigningKey> for Key {
    fn from(key: SigningKey) -> Self {
        Self::File(Box::new(key))
    }
}

impl From<&SigningKey> for Key {
    fn from(key: &SigningKey) -> Self {
        Self::File(Box::new(key.clone()))
    }
}

impl From<&Key> for Key {
    fn from(key: &Key) -> Self {
        key.clone()
    }
}

impl Key {
    /// A key in a token; nothing is opened until it is used.
    pub fn token(config: TokenConfig) -> Self {
        Self::Token(Arc::new(TokenKey {
            config,
            open: Mutex::new(None),
        }))
    }

    /// The public half.
    pub fn public(&self) -> Result<VerifyingKey, KeyError> {
        match self {
            Self::File(k) => Ok(k.verifying_key()),
            Self::Token(t) => t.with_open(|open| Ok(open.public)),
        }
    }

    /// Signs `message` (Ed25519, RFC 8032 section 5.1.6).
    pub fn sign(&self, message: &[u8]) -> Result<Signature, KeyError> {
        match self {
            Self::File(k) => Ok(k.sign(message)),
            Self::Token(t) => t.with_open(|open| open.sign(message, &t.config)),
        }
    }

    /// Checks that the key can sign now: for a token, that the module loads, the token is
    /// present, the PIN is accepted and the key is there (and signs what its public key
    /// verifies).
    pub fn probe(&self) -> Result<(), KeyError> {
        match self {
            Self::File(_) => Ok(()),
            Self::Token(t) => t.with_open(|open| {
                open.session.get_session_info().map_err(|e| {
                    KeyError(format!(
                        "{}: the session was lost: {e}",
                        t.config.describe()
                    ))
                })?;
                open.check(&t.config)
            }),
        }
    }

    /// Where the key lives, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File(_) => "a key file".to_owned(),
            Self::Token(t) => t.config.describe(),
        }
    }
}

/// A key pair in a PKCS#11 token and, once used, the session that reaches it.
pub struct TokenKey {
    config: TokenConfig,
    open: Mutex<Option<Open>>,
}

struct Open {
    session: Session,
    private: ObjectHandle,
    public: VerifyingKey,
}

impl Open {
    fn sign(&self, message: &[u8], config: &TokenConfig) -> Result<Signature, KeyError> {
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let bytes = self
            .session
            .sign(&mechanism, self.private, message)
            .map_err(|e| KeyError(format!("{}: signing failed: {e}", config.describe())))?;
        Signature::from_slice(&bytes).map_err(|_| {
            KeyError(format!(
                "{}: the token returned a signature of {} bytes, not an Ed25519 signature",
                config.describe(),
                bytes.len()
            ))
        })
    }

    /// Signs a fixed message and verifies it with the public key: the labels name one pair.
    fn check(&self, config: &TokenConfig) -> Result<(), KeyError> {
        const PROBE: &[u8] = b"writ keystore probe";
        let signature = self.sign(PROBE, config)?;
        self.public.verify(PROBE, &signature).map_err(|_| {
            KeyError(format!(
                "{}: the private key does not match the public key of the same label",
                config.describe()
            ))
        })
    }
}

impl TokenKey {
    /// Runs `f` on the open session, opening it first if needed; a failure closes it, and
    /// `f` is tried once more on a fresh session (a token removed and put back).
    fn with_open<T>(&self, f: impl Fn(&Open) -> Result<T, KeyError>) -> Result<T, KeyError> {
        let mut slot = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = slot.as_ref() {
            match f(open) {
                Ok(v) => return Ok(v),
                Err(_) => *slot = None,
            }
        }
        let open = open_key(&self.config)?;
        let result = f(&open);
        if result.is_ok() {
            *slot = Some(open);
        }
        result
    }
}

/// One context per module for the whole process: a module is initialised once
/// (`C_Initialize` may not be called twice) and never finalised, so that keys sharing it
/// cannot pull it from under each other.
fn context(module: &Path) -> Result<Pkcs11, KeyError> {
    static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ctx)) = modules.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    if !module.exists() {
        return Err(KeyError(format!(
            "the PKCS#11 module {} does not exist",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        KeyError(format!(
            "the PKCS#11 module {} cannot be loaded: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyError(format!(
                "the PKCS#11 module {} failed to initialise: {e}",
                module.display()
            )));
        }
    }
    modules.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, config: &TokenConfig) -> Result<Slot, KeyError> {
    let slots = ctx.get_slots_with_initialized_token().map_err(|e| {
        KeyError(format!(
            "the PKCS#11 module {} cannot list its tokens: {e}",
            config.module.display()
        ))
    })?;
    for slot in slots {
        if let Ok(info) = ctx.get_token_info(slot)
            && info.label().trim_end() == config.token_label
        {
            return Ok(slot);
        }
    }
    Err(KeyError(format!(
        "no PKCS#11 token labelled `{}` in module {} (missing or not initialised)",
        config.token_label,
        config.module.display()
    )))
}

fn login(ctx: &Pkcs11, config: &TokenConfig, rw: bool) -> Result<Session, KeyError> {
    let slot = find_slot(ctx, config)?;
    let token = &config.token_label;
    let opened = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    };
    let session = opened.map_err(|e| {
        KeyError(format!(
            "cannot open a session on PKCS#11 token `{token}`: {e}"
        ))
    })?;
    if config.pin.is_empty() {
        return Err(KeyError(format!(
            "no PIN for PKCS#11 token `{token}`: set the environment variable named by pkcs11.pin_env, or pkcs11.pin_file"
        )));
    }
    let pin = AuthPin::from(config.pin.0.clone());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(KeyError(format!(
            "PKCS#11 token `{token}` refused the PIN (wrong PIN)"
        ))),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(KeyError(format!(
            "PKCS#11 token `{token}` is locked: its user PIN is blocked after failed logins"
        ))),
        Err(CkError::Pkcs11(rv, _)) => Err(KeyError(format!(
            "PKCS#11 token `{token}` refused the login: {rv:?}"
        ))),
        Err(e) => Err(KeyError(format!(
            "PKCS#11 token `{token}` refused the login: {e}"
        ))),
    }
}

fn find_key(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Vec<ObjectHandle>, CkError> {
    session.find_objects(&[
        Attribute::Class(class),
        Attribute::KeyType(KeyType::EC_EDWARDS),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
}

/// The raw 32-byte key from `CKA_EC_POINT`: a DER OCTET STRING (PKCS#11 3.0; SoftHSM2) or the
/// bare 32 bytes (some modules).
fn public_from_point(point: &[u8]) -> Option<VerifyingKey> {
    let raw = match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        bytes if bytes.len() == 32 => bytes,
        _ => return None,
    };
    VerifyingKey::from_bytes(raw.try_into().ok()?).ok()
}

fn read_public(session: &Session, config: &TokenConfig) -> Result<Option<VerifyingKey>, KeyError> {
    let fail = |e: CkError| KeyError(format!("{}: {e}", config.describe()));
    let Some(handle) = find_key(session, ObjectClass::PUBLIC_KEY, &config.key_label)
        .map_err(fail)?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let attributes = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(fail)?;
    let point = attributes.into_iter().find_map(|a| match a {
        Attribute::EcPoint(p) => Some(p),
        _ => None,
    });
    point
        .as_deref()
        .and_then(public_from_point)
        .map(Some)
        .ok_or_else(|| {
            KeyError(format!(
                "{}: the public key is not an Ed25519 point",
                config.describe()
            ))
        })
}

fn open_key(config: &TokenConfig) -> Result<Open, KeyError> {
    let ctx = context(&config.module)?;
    let session = login(&ctx, config, false)?;
    let missing = || {
        KeyError(format!(
            "no Ed25519 key labelled `{}` in PKCS#11 token `{}`: generate it with `writ keys init --pkcs11` (the checkpoint key), `--entry --pkcs11` (the audit entry key) or `--package --pkcs11`",
            config.key_label, config.token_label
        ))
    };
    let private = find_key(&session, ObjectClass::PRIVATE_KEY, &config.key_label)
        .map_err(|e| KeyError(format!("{}: {e}", config.describe())))?;
    let private = match private.as_slice() {
        [] => return Err(missing()),
        [one] => *one,
        _ => {
            return Err(KeyError(format!(
                "{}: more than one private key has this label",
                config.describe()
            )));
        }
    };
    let public = read_public(&session, config)?.ok_or_else(missing)?;
    let open = Open {
        session,
        private,
        public,
    };
    open.check(config)?;
    Ok(open)
}

/// Generates an Ed25519 key pair in the token (`CKM_EC_EDWARDS_KEY_PAIR_GEN`): the private key
/// is sensitive and not extractable, so it never leaves the token. Refuses when a key with the
/// label exists: replacing it would orphan what it signed.
pub fn generate(config: &TokenConfig) -> Result<VerifyingKey, KeyError> {
    let ctx = context(&config.module)?;
    let session = login(&ctx, config, true)?;
    let fail = |e: CkError| KeyError(format!("{}: {e}", config.describe()));
    let taken = !find_key(&session, ObjectClass::PRIVATE_KEY, &config.key_label)
        .map_err(fail)?
        .is_empty()
        || read_public(&session, config)?.is_some();
    if taken {
        return Err(KeyError(format!(
            "{}: a key with this label already exists; refusing to replace it",
            config.describe()
        )));
    }
    let label = config.key_label.as_bytes().to_vec();
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| KeyError(format!("no randomness: {e}")))?;
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_OID_DER.to_vec()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.to_vec()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
        Attribute::Id(id.to_vec()),
    ];
    session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(|e| {
            KeyError(format!(
                "{}: the token cannot generate an Ed25519 key pair: {e}",
                config.describe()
            ))
        })?;
    drop(session);
    let open = open_key(config)?;
    Ok(open.public)
}

/// A rotation of the key `current` names, staged in its token: the new key pair generated there
/// as `<key_label>.next` (sensitive, not extractable). [`TokenRotation::commit`] renames the
/// current pair `retired_label` and the new one `<key_label>`, so the settings keep naming the
/// same label; [`TokenRotation::abandon`] deletes the new pair. A `<key_label>.next` left by a
/// rotation that did not finish is refused.
#[derive(Debug)]
pub struct TokenRotation {
    current: TokenConfig,
    next: TokenConfig,
    retired_label: String,
    /// The public half of the key being retired.
    pub old: VerifyingKey,
    /// The public half of the new key.
    pub new: VerifyingKey,
}

impl TokenRotation {
    /// Generates the new key pair; `retired_label` is what the current pair will be called.
    pub fn prepare(
        current: &TokenConfig,
        retired_label: impl FnOnce(&VerifyingKey) -> String,
    ) -> Result<Self, KeyError> {
        let old = Key::token(current.clone()).public()?;
        let mut next = current.clone();
        next.key_label = format!("{}.next", current.key_label);
        let new = generate(&next).map_err(|e| {
            KeyError(format!(
                "{e} (an earlier rotation did not finish? delete that key from the token and rotate again)"
            ))
        })?;
        Ok(Self {
            retired_label: retired_label(&old),
            current: current.clone(),
            next,
            old,
            new,
        })
    }

    /// Puts the new key in place: the current pair renamed to the retired label, then the new
    /// pair to the settings' label (if that fails, the first rename is undone).
    pub fn commit(&self) -> Result<(), KeyError> {
        let label = &self.current.key_label;
        relabel(&self.current, label, &self.retired_label)?;
        if let Err(e) = relabel(&self.current, &self.next.key_label, label) {
            let _ = relabel(&self.current, &self.retired_label, label);
            return Err(e);
        }
        Ok(())
    }

    /// Deletes the new pair (the rotation did not happen).
    pub fn abandon(&self) {
        let _ = destroy(&self.next);
    }
}

/// Renames the key pair labelled `from` in the token to `to` (`CKA_LABEL` of both halves): a
/// package key rotation retires the current pair and puts the new one in its place this way,
/// so the settings keep naming the same label. Refuses when no key has the label `from`, or
/// one already has `to`.
pub fn relabel(config: &TokenConfig, from: &str, to: &str) -> Result<(), KeyError> {
    let ctx = context(&config.module)?;
    let session = login(&ctx, config, true)?;
    let token = &config.token_label;
    let fail = |e: CkError| KeyError(format!("PKCS#11 token `{token}`: {e}"));
    let pair = |label: &str| -> Result<Vec<ObjectHandle>, KeyError> {
        let mut handles = find_key(&session, ObjectClass::PRIVATE_KEY, label).map_err(fail)?;
        handles.extend(find_key(&session, ObjectClass::PUBLIC_KEY, label).map_err(fail)?);
        Ok(handles)
    };
    if !pair(to)?.is_empty() {
        return Err(KeyError(format!(
            "PKCS#11 token `{token}` already holds a key labelled `{to}`"
        )));
    }
    let handles = pair(from)?;
    if handles.is_empty() {
        return Err(KeyError(format!(
            "PKCS#11 token `{token}` holds no key labelled `{from}`"
        )));
    }
    for handle in handles {
        session
            .update_attributes(handle, &[Attribute::Label(to.as_bytes().to_vec())])
            .map_err(|e| {
                KeyError(format!(
                    "PKCS#11 token `{token}` cannot rename key `{from}` to `{to}`: {e}"
                ))
            })?;
    }
    Ok(())
}

/// Deletes the key pair labelled `config.key_label` from the token (a staged rotation key that
/// was never put in place; never a key that signed anything).
pub fn destroy(config: &TokenConfig) -> Result<(), KeyError> {
    let ctx = context(&config.module)?;
    let session = login(&ctx, config, true)?;
    let fail = |e: CkError| KeyError(format!("{}: {e}", config.describe()));
    let mut handles =
        find_key(&session, ObjectClass::PRIVATE_KEY, &config.key_label).map_err(fail)?;
    handles.extend(find_key(&session, ObjectClass::PUBLIC_KEY, &config.key_label).map_err(fail)?);
    for handle in handles {
        session.destroy_object(handle).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_read_from_a_der_octet_string_or_bare_bytes() {
        let key = SigningKey::from_bytes(&[5; 32]).verifying_key();
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(key.as_bytes());
        assert_eq!(public_from_point(&der), Some(key));
        assert_eq!(public_from_point(key.as_bytes()), Some(key));
        assert_eq!(public_from_point(&der[..20]), None);
    }

    #[test]
    fn a_pin_never_shows_in_debug_output() {
        let config = TokenConfig {
            module: "/nonexistent/module.so".into(),
            token_label: "t".into(),
            key_label: "k".into(),
            pin: Pin::new("123456\n"),
        };
        assert!(!format!("{config:?}").contains("123456"));
        let key = Key::token(config);
        assert!(!format!("{key:?}").contains("123456"));
        let err = key.probe().unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
