//! Offline-verifiable inclusion proofs in the C2SP `tlog-proof` text format:
//! a leaf index, its RFC 9162 inclusion proof and the signed checkpoint the
//! proof leads to, optionally with unauthenticated extra data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::merkle::{Hash, VerifyError, leaf_hash, verify_inclusion};
use super::note::{
    Checkpoint, NoteError, NoteVerifier, decode_hash_b64, open_checkpoint, parse_canonical_u64,
};

/// First line of every proof (C2SP tlog-proof, "Format").
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Upper bound on proof hashes: an RFC 9162 inclusion path in a tree of at
/// most 2^64 - 1 leaves has at most 64 entries, so more is always malformed
/// (and rejecting early bounds the work done on hostile input).
const MAX_PROOF_HASHES: usize = 64;

/// Errors from parsing and verifying a [`InclusionProofDoc`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofDocError {
    /// The text does not follow the C2SP tlog-proof format.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The embedded checkpoint failed to open or parse.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] VerifyError),
}

/// A C2SP tlog-proof document (`.tlog-proof` file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProofDoc {
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// RFC 9162 inclusion path, from the leaf's sibling up to the root's child.
    pub hashes: Vec<Hash>,
    /// Optional opaque extra data. Not authenticated: applications MUST NOT
    /// trust it implicitly (C2SP tlog-proof, "Format").
    pub extra: Option<Vec<u8>>,
    /// The signed checkpoint note, verbatim (normally ends in a newline).
    pub checkpoint: String,
}

impl InclusionProofDoc {
    /// Renders the C2SP tlog-proof text: header, optional `extra <base64>`,
    /// `index <decimal>`, one base64 hash per line, a blank line, then the
    /// checkpoint verbatim.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(64 + 45 * self.hashes.len() + self.checkpoint.len());
        s.push_str(HEADER);
        s.push('\n');
        if let Some(extra) = &self.extra {
            s.push_str("extra ");
            s.push_str(&B64.encode(extra));
            s.push('\n');
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses C2SP tlog-proof text.
    ///
    /// Strict: exact header; optional `extra` line of standard base64; index
    /// in canonical decimal; each hash padded base64 of 32 bytes (at most
    /// 64); a blank line; a non-empty checkpoint, kept verbatim (it is only
    /// checked by [`InclusionProofDoc::verify`]).
    pub fn parse(text: &str) -> Result<InclusionProofDoc, ProofDocError> {
        let bad = ProofDocError::Malformed;
        let mut rest = text;
        // Pops the next newline-terminated line off `rest`.
        let mut next_line = || -> Option<&str> {
            let (line, tail) = rest.split_once('\n')?;
            rest = tail;
            Some(line)
        };
        if next_line() != Some(HEADER) {
            return Err(bad("missing c2sp.org/tlog-proof@v1 header"));
        }
        let mut line = next_line().ok_or(bad("missing index line"))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(
                B64.decode(b64)
                    .map_err(|_| bad("extra data is not standard base64"))?,
            );
            line = next_line().ok_or(bad("missing index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .ok_or(bad("missing index line"))
            .and_then(|n| parse_canonical_u64(n).ok_or(bad("index is not canonical decimal")))?;
        let mut hashes = Vec::new();
        loop {
            let line = next_line().ok_or(bad("missing blank line before checkpoint"))?;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(bad("too many proof hashes"));
            }
            hashes.push(decode_hash_b64(line).ok_or(bad("proof hash is not base64 of 32 bytes"))?);
        }
        if rest.is_empty() {
            return Err(bad("missing checkpoint"));
        }
        Ok(InclusionProofDoc {
            index,
            hashes,
            extra,
            checkpoint: rest.to_owned(),
        })
    }

    /// Verifies that `leaf` (the raw entry bytes, hashed here with the
    /// RFC 9162 leaf prefix) is included in the log, and returns the
    /// checkpoint it was proven against.
    ///
    /// Opens the checkpoint with `verifier` (C2SP signed-note), parses it
    /// (C2SP tlog-checkpoint), then checks the inclusion proof against its
    /// size and root (RFC 9162 section 2.1.3.2). The caller should still check
    /// the returned `origin` and decide what to make of `extra`.
    pub fn verify(
        &self,
        leaf: &[u8],
        verifier: &NoteVerifier,
    ) -> Result<Checkpoint, ProofDocError> {
        self.verify_leaf_hash(&leaf_hash(leaf), verifier)
    }

    /// Like [`InclusionProofDoc::verify`], for a caller that already holds
    /// the RFC 9162 leaf hash.
    pub fn verify_leaf_hash(
        &self,
        leaf_hash: &Hash,
        verifier: &NoteVerifier,
    ) -> Result<Checkpoint, ProofDocError> {
        let checkpoint = open_checkpoint(&self.checkpoint, verifier)?;
        verify_inclusion(
            leaf_hash,
            self.index,
            checkpoint.size,
            &self.hashes,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::super::merkle::{MemoryTree, inclusion_proof, root};
    use super::super::note::NoteSigner;
    use super::*;

    fn entry(i: u64) -> Vec<u8> {
        format!("{{\"event\":\"login\",\"seq\":{i}}}").into_bytes()
    }

    struct Fixture {
        signer: NoteSigner,
        tree: MemoryTree,
        size: u64,
        note: String,
    }

    fn fixture(size: u64) -> Fixture {
        let signer = NoteSigner::from_seed("example.com/audit", &[42; 32]).unwrap();
        let tree = MemoryTree::from_leaf_hashes((0..size).map(|i| leaf_hash(&entry(i))));
        let cp = Checkpoint {
            origin: "example.com/audit".into(),
            size,
            root: root(size, &tree).unwrap(),
            extensions: vec![],
        };
        let note = signer.sign_checkpoint(&cp).unwrap();
        Fixture {
            signer,
            tree,
            size,
            note,
        }
    }

    fn doc(f: &Fixture, index: u64, extra: Option<Vec<u8>>) -> InclusionProofDoc {
        InclusionProofDoc {
            index,
            hashes: inclusion_proof(index, f.size, &f.tree).unwrap(),
            extra,
            checkpoint: f.note.clone(),
        }
    }

    #[test]
    fn round_trip_and_verify() {
        let f = fixture(21);
        let v = f.signer.verifier();
        for index in 0..21 {
            for extra in [None, Some(vec![]), Some(b"context \x00\xff".to_vec())] {
                let d = doc(&f, index, extra);
                let text = d.to_text();
                assert!(text.starts_with("c2sp.org/tlog-proof@v1\n"));
                let parsed = InclusionProofDoc::parse(&text).unwrap();
                assert_eq!(parsed, d);
                assert_eq!(parsed.to_text(), text);
                let cp = parsed.verify(&entry(index), &v).unwrap();
                assert_eq!(cp.size, 21);
                assert_eq!(cp.origin, "example.com/audit");
            }
        }
    }

    #[test]
    fn single_leaf_tree_has_no_hashes() {
        let f = fixture(1);
        let d = doc(&f, 0, None);
        assert!(d.hashes.is_empty());
        let text = d.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/audit\n1\n"));
        let parsed = InclusionProofDoc::parse(&text).unwrap();
        parsed.verify(&entry(0), &f.signer.verifier()).unwrap();
    }

    #[test]
    fn tampering_fails() {
        let f = fixture(13);
        let v = f.signer.verifier();
        let d = doc(&f, 6, None);
        d.verify(&entry(6), &v).unwrap();

        assert!(matches!(
            d.verify(&entry(7), &v),
            Err(ProofDocError::Inclusion(VerifyError::RootMismatch))
        ));
        for index in [5, 7, 12, 13, 100] {
            let mut t = d.clone();
            t.index = index;
            assert!(matches!(
                t.verify(&entry(6), &v),
                Err(ProofDocError::Inclusion(_))
            ));
        }
        for i in 0..d.hashes.len() {
            let mut t = d.clone();
            t.hashes[i][3] ^= 0x20;
            assert!(t.verify(&entry(6), &v).is_err());
        }
        let mut t = d.clone();
        t.hashes.pop();
        assert!(matches!(
            t.verify(&entry(6), &v),
            Err(ProofDocError::Inclusion(
                VerifyError::WrongProofLength { .. }
            ))
        ));
        let mut t = d.clone();
        t.hashes.push([0; 32]);
        assert!(t.verify(&entry(6), &v).is_err());

        // A checkpoint for a different size fails the signature check.
        let mut t = d.clone();
        t.checkpoint = t.checkpoint.replacen("\n13\n", "\n14\n", 1);
        assert!(matches!(
            t.verify(&entry(6), &v),
            Err(ProofDocError::Checkpoint(
                NoteError::InvalidSignature { .. }
            ))
        ));
        // A checkpoint signed by someone else is unverified.
        let other = NoteSigner::from_seed("example.com/audit", &[43; 32]).unwrap();
        assert!(matches!(
            d.verify(&entry(6), &other.verifier()),
            Err(ProofDocError::Checkpoint(NoteError::Unverified { .. }))
        ));
        // Tampering with the text form is caught too.
        let text = d.to_text();
        let t = text.replacen("index 6\n", "index 7\n", 1);
        assert!(
            InclusionProofDoc::parse(&t)
                .unwrap()
                .verify(&entry(6), &v)
                .is_err()
        );
    }

    #[test]
    fn malformed_text_is_rejected() {
        let f = fixture(5);
        let good = doc(&f, 2, Some(b"x".to_vec())).to_text();
        InclusionProofDoc::parse(&good).unwrap();
        let h = B64.encode([9u8; 32]);
        let cp = &f.note;
        let bad = [
            String::new(),
            good.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
            good.replacen("extra eA==", "extra eA", 1),
            good.replacen("extra eA==", "extra !!", 1),
            good.replacen("index 2", "index 02", 1),
            good.replacen("index 2", "index -2", 1),
            good.replacen("index 2", "index  2", 1),
            good.replacen("index 2", "idx 2", 1),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}\n"),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}\n\n"),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{}\n\n{cp}", &h[..40]),
            format!(
                "c2sp.org/tlog-proof@v1\nindex 1\n{}\n\n{cp}",
                B64.encode([9u8; 33])
            ),
            format!(
                "c2sp.org/tlog-proof@v1\nindex 1\n{}\n{cp}",
                format!("{h}\n").repeat(65)
            ),
            format!("c2sp.org/tlog-proof@v1\r\nindex 1\n\n{cp}"),
            format!("c2sp.org/tlog-proof@v1\nextra eA==\nextra eA==\nindex 1\n\n{cp}"),
            format!("c2sp.org/tlog-proof@v1\nindex 1\nextra eA==\n\n{cp}"),
        ];
        for b in bad {
            assert!(
                matches!(
                    InclusionProofDoc::parse(&b),
                    Err(ProofDocError::Malformed(_))
                ),
                "accepted {b:?}"
            );
        }
    }

    #[test]
    fn c2sp_spec_example_parses_and_round_trips() {
        // The example from C2SP tlog-proof.md (signatures elided there, so it
        // only exercises the format, not verification).
        let example = "c2sp.org/tlog-proof@v1\n\
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n\
index 73894\n\
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n\
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n\
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n\
\n\
example.com/fancylog\n\
109482\n\
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\
\n\
\u{2014} example.com/fancylog hI2DJw[...]1roloI=\n\
\u{2014} witness1.example mJirIklj[...]qY9v2B/5bg==\n\
\u{2014} witness2.example TnKKVHLX[...]xwYwrSjgow==\n\
\u{2014} witness3.example S4X82uH5[...]3oEcROGLFQ==\n";
        let d = InclusionProofDoc::parse(example).unwrap();
        assert_eq!(d.index, 73894);
        assert_eq!(d.hashes.len(), 5);
        assert!(
            d.extra
                .as_deref()
                .unwrap()
                .starts_with(b"age-v1.2.1-darwin-arm64.tar.gz")
        );
        assert!(d.checkpoint.starts_with("example.com/fancylog\n109482\n"));
        assert_eq!(d.to_text(), example);
        // Its checkpoint body is well formed, and the elided signatures make
        // the note itself malformed.
        let body_end = d.checkpoint.find("\n\n").unwrap() + 1;
        let cp = Checkpoint::parse_body(&d.checkpoint[..body_end]).unwrap();
        assert_eq!(cp.size, 109482);
        let v = NoteSigner::from_seed("example.com/fancylog", &[1; 32])
            .unwrap()
            .verifier();
        assert!(matches!(
            d.verify(b"x", &v),
            Err(ProofDocError::Checkpoint(NoteError::MalformedNote(_)))
        ));
    }
}
