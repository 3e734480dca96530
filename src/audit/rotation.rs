//! Checkpoint key rotation: which key signed which checkpoints.
//!
//! A rotation is an entry of the log itself, `audit.checkpoint_key_rotated`, naming the old and
//! the new public key. The old key signs one last checkpoint, the one that covers the rotation
//! entry (size `seq + 1`), in the same transaction as the entry: so the retiring key itself
//! vouches for its successor, and every checkpoint of a larger size must be signed by the new
//! key. A checkpoint of a larger size signed by a retired key is refused, by the signer (an
//! instance still holding the old key cannot sign) and by the verifiers.
//!
//! The key set ([`KeySet`]) is read from the log's rotation entries (which carry
//! authenticators like every entry, so a row inserted by other means is caught), and published
//! with the sizes each key may sign: `GET /audit/keys/checkpoint.txt` and `writ keys show`
//! print it as lines `<note verifier key> <first>-<last>`, the last line open-ended, which
//! `writ audit verify EXPORT --key FILE` reads.

use diesel::prelude::*;
use ed25519_dalek::VerifyingKey;

use super::AuditError;
use super::entry::{Leaf, RefValue};
use super::event::Event;
use super::note::{Checkpoint, NoteVerifier, open_checkpoint};
use crate::db::DbConn;
use crate::db::schema::audit_entries;

/// One key's period: the checkpoint sizes it may sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPeriod {
    /// The key (with the log origin as its name).
    pub verifier: NoteVerifier,
    /// The smallest checkpoint size it may sign.
    pub first_size: u64,
    /// The largest, for a retired key (its last checkpoint covers its rotation entry).
    pub last_size: Option<u64>,
    /// The rotation entry that retired it.
    pub retired_at: Option<u64>,
}

/// The checkpoint keys of one log, oldest first; the last is the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    periods: Vec<KeyPeriod>,
}

/// A rotation as the log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The rotation entry's position; the old key's last checkpoint has size `seq + 1`.
    pub seq: u64,
    /// The retired key.
    pub old: VerifyingKey,
    /// The key that signs every larger checkpoint.
    pub new: VerifyingKey,
}

fn key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

fn parse_key(value: Option<&RefValue>) -> Option<VerifyingKey> {
    let RefValue::Text(text) = value? else {
        return None;
    };
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The rotation a leaf records, if it is a well-formed rotation entry.
pub fn rotation_of(leaf: &Leaf) -> Option<Rotation> {
    if leaf.event != Event::AuditCheckpointKeyRotated.as_str() {
        return None;
    }
    Some(Rotation {
        seq: leaf.seq,
        old: parse_key(leaf.refs.get("old_key"))?,
        new: parse_key(leaf.refs.get("new_key"))?,
    })
}

/// The references of a rotation entry at position `seq` (the refs [`rotation_of`] reads).
pub fn entry_refs(
    seq: u64,
    old: &VerifyingKey,
    new: &VerifyingKey,
    origin: &str,
) -> Result<Vec<(&'static str, RefValue)>, AuditError> {
    let vkey = |k: &VerifyingKey| {
        NoteVerifier::from_public_key(origin, *k)
            .map(|v| hex::encode(v.key_id()))
            .map_err(|e| AuditError::Key(e.to_string()))
    };
    Ok(vec![
        ("old_key", RefValue::Text(key_hex(old))),
        ("old_key_id", RefValue::Text(vkey(old)?)),
        ("new_key", RefValue::Text(key_hex(new))),
        ("new_key_id", RefValue::Text(vkey(new)?)),
        // The old key's last checkpoint covers this entry; the new key's first is larger.
        ("old_key_last_size", RefValue::Count(seq + 1)),
        ("new_key_first_size", RefValue::Count(seq + 2)),
    ])
}

/// The rotations recorded in the log, in order.
pub fn rotations(conn: &mut DbConn) -> Result<Vec<Rotation>, AuditError> {
    let rows: Vec<String> = audit_entries::table
        .filter(audit_entries::event.eq(Event::AuditCheckpointKeyRotated.as_str()))
        .order(audit_entries::seq.asc())
        .select(audit_entries::leaf)
        .load(conn)?;
    rows.iter()
        .map(|leaf| {
            Leaf::parse(leaf.as_bytes())
                .ok()
                .as_ref()
                .and_then(rotation_of)
                .ok_or_else(|| {
                    AuditError::Corrupt("a checkpoint key rotation entry is malformed".into())
                })
        })
        .collect()
}

impl KeySet {
    /// One key for every size (a log never rotated, or an auditor's single key).
    pub fn single(verifier: NoteVerifier) -> Self {
        Self {
            periods: vec![KeyPeriod {
                verifier,
                first_size: 1,
                last_size: None,
                retired_at: None,
            }],
        }
    }

    /// The key set the rotations make, ending with `current`. Refuses rotations that do not
    /// chain (each one's old key the previous one's new key).
    pub fn from_rotations(
        origin: &str,
        rotations: &[Rotation],
        current: VerifyingKey,
    ) -> Result<Self, AuditError> {
        let verifier = |k: VerifyingKey| {
            NoteVerifier::from_public_key(origin, k).map_err(|e| AuditError::Key(e.to_string()))
        };
        let Some(first) = rotations.first() else {
            return Ok(Self::single(verifier(current)?));
        };
        let mut periods = Vec::with_capacity(rotations.len() + 1);
        let mut key = first.old;
        let mut first_size = 1;
        for r in rotations {
            if r.old != key {
                return Err(AuditError::Inconsistent(format!(
                    "the checkpoint key rotation at entry {} retires a key that was not the current one",
                    r.seq
                )));
            }
            periods.push(KeyPeriod {
                verifier: verifier(r.old)?,
                first_size,
                last_size: Some(r.seq + 1),
                retired_at: Some(r.seq),
            });
            key = r.new;
            first_size = r.seq + 2;
        }
        periods.push(KeyPeriod {
            verifier: verifier(key)?,
            first_size,
            last_size: None,
            retired_at: None,
        });
        let set = Self { periods };
        if set.period_of(&current).is_none() {
            return Err(AuditError::Key(format!(
                "the configured checkpoint key is not one the log names: the rotation at entry {} made another key current",
                rotations.last().map_or(0, |r| r.seq)
            )));
        }
        Ok(set)
    }

    /// The periods, oldest first.
    pub fn periods(&self) -> &[KeyPeriod] {
        &self.periods
    }

    /// Whether the set holds `rotation`: a key retired at its entry (last size `seq + 1`), the
    /// old key, followed by the new key from the next size on.
    pub fn records(&self, rotation: &Rotation) -> bool {
        self.periods.windows(2).any(|pair| {
            pair[0].last_size == Some(rotation.seq + 1)
                && pair[0].verifier.public_key() == rotation.old
                && pair[1].first_size == rotation.seq + 2
                && pair[1].verifier.public_key() == rotation.new
        })
    }

    /// The key that signs from now on.
    pub fn current(&self) -> &KeyPeriod {
        // Never empty: both constructors push at least one period.
        &self.periods[self.periods.len() - 1]
    }

    /// The period of `key`, if it is one of the set's.
    pub fn period_of(&self, key: &VerifyingKey) -> Option<&KeyPeriod> {
        self.periods
            .iter()
            .find(|p| p.verifier.public_key() == *key)
    }

    /// Opens a signed checkpoint: it must verify under the key whose period holds its size.
    /// One signed by another key of the set outside that key's period is refused by name.
    pub fn open(&self, note: &str) -> Result<Checkpoint, String> {
        let mut refused = None;
        let mut last_error = None;
        for p in &self.periods {
            match open_checkpoint(note, &p.verifier) {
                Ok(c) => {
                    let within =
                        c.size >= p.first_size && p.last_size.is_none_or(|last| c.size <= last);
                    if within || c.size == 0 {
                        return Ok(c);
                    }
                    refused = Some(match (p.retired_at, p.last_size) {
                        (Some(at), Some(last)) => format!(
                            "(size {}) is signed by a retired checkpoint key (retired by the key rotation at entry {at}; its last checkpoint is of size {last}): refused",
                            c.size
                        ),
                        _ => format!(
                            "(size {}) is signed by a checkpoint key that signs only from size {}: refused",
                            c.size, p.first_size
                        ),
                    });
                }
                Err(e) => last_error = Some(format!("does not verify under the given key: {e}")),
            }
        }
        Err(refused.unwrap_or_else(|| last_error.unwrap_or_else(|| "no key".into())))
    }

    /// The published form: one line per key, `<note verifier key> <first>-<last>`, the
    /// current key's range open (`<first>-`). A set of one key is just its verifier key line.
    pub fn to_text(&self) -> String {
        if self.periods.len() == 1 {
            return format!("{}\n", self.periods[0].verifier.verifier_key());
        }
        self.periods
            .iter()
            .map(|p| {
                format!(
                    "{} {}-{}\n",
                    p.verifier.verifier_key(),
                    p.first_size,
                    p.last_size.map(|l| l.to_string()).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Parses [`KeySet::to_text`]: lines `<verifier key> <first>-[<last>]`, in order.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut periods = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (vkey, range) = line
                .split_once(' ')
                .ok_or_else(|| format!("`{line}`: expected `<verifier key> <first>-<last>`"))?;
            let verifier = NoteVerifier::new(vkey).map_err(|e| format!("`{vkey}`: {e}"))?;
            let (first, last) = range
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("`{range}`: expected `<first>-<last>`"))?;
            let first_size = first
                .parse::<u64>()
                .map_err(|_| format!("`{range}`: not a size range"))?;
            let last_size = if last.is_empty() {
                None
            } else {
                Some(
                    last.parse::<u64>()
                        .map_err(|_| format!("`{range}`: not a size range"))?,
                )
            };
            periods.push(KeyPeriod {
                verifier,
                first_size,
                retired_at: last_size.map(|l| l.saturating_sub(1)),
                last_size,
            });
        }
        if periods.is_empty() {
            return Err("no key".into());
        }
        Ok(Self { periods })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::Hash;
    use crate::audit::note::NoteSigner;

    fn note(signer: &NoteSigner, size: u64) -> String {
        signer
            .sign_checkpoint(&Checkpoint {
                origin: "example.org/audit".into(),
                size,
                root: Hash::default(),
                extensions: Vec::new(),
            })
            .unwrap()
    }

    #[test]
    fn each_key_opens_only_its_own_sizes_and_the_text_form_round_trips() {
        let old = NoteSigner::from_seed("example.org/audit", &[1; 32]).unwrap();
        let new = NoteSigner::from_seed("example.org/audit", &[2; 32]).unwrap();
        let rotation = Rotation {
            seq: 9,
            old: old.public_key(),
            new: new.public_key(),
        };
        let set =
            KeySet::from_rotations("example.org/audit", &[rotation], new.public_key()).unwrap();
        assert_eq!(set.open(&note(&old, 10)).unwrap().size, 10);
        assert_eq!(set.open(&note(&new, 11)).unwrap().size, 11);
        let err = set.open(&note(&old, 11)).unwrap_err();
        assert!(err.contains("retired"), "{err}");
        assert!(set.open(&note(&new, 10)).is_err());
        let parsed = KeySet::parse(&set.to_text()).unwrap();
        assert_eq!(parsed, set);
    }
}
