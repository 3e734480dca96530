//! Merkle tree hashing, proof generation and proof verification as specified
//! in RFC 9162 ("Certificate Transparency Version 2.0"), section 2.1.
//!
//! The tree is never materialised as a whole. The caller stores every
//! *perfect* (complete) subtree node: the node at level `L` and index `i`
//! covers leaves `[i * 2^L, (i + 1) * 2^L)`, and level 0 holds the leaf
//! hashes. Every Merkle Tree Hash that RFC 9162 needs, for any tree size, can
//! be assembled from O(log n) of those nodes because the RFC's recursive split
//! ("k is the largest power of two smaller than n") always cuts a range into
//! a perfect left part and a (possibly imperfect) right remainder.
//!
//! Nodes are looked up through [`NodeSource`], so the same code works over a
//! database table, a file export, or the in-memory [`MemoryTree`].

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// RFC 9162 section 2.1.1: the hash of an empty tree is the hash of the empty
/// string, `MTH({}) = SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 9162 section 2.1.1: `MTH({d(0)}) = SHA-256(0x00 || d(0))`.
///
/// The 0x00 prefix domain-separates leaves from interior nodes (0x01) so a
/// leaf can never be confused with an interior node (second-preimage defence).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// RFC 9162 section 2.1.1: interior node hash `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Read access to the stored perfect subtree nodes.
///
/// `node(level, index)` must return the root of the perfect subtree that
/// covers leaves `[index * 2^level, (index + 1) * 2^level)`; level 0 entries
/// are leaf hashes. Functions in this module only ask for nodes that are
/// complete at the tree size they were given, so a source only needs to hold
/// nodes for leaves it has.
pub trait NodeSource {
    /// Error returned when a node cannot be read (missing, I/O failure...).
    type Error;

    /// Returns the hash of the perfect subtree at `level` and `index`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    type Error = T::Error;

    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

/// Error of [`MemoryTree`]: the requested node has not been stored (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("merkle node at level {level}, index {index} is not stored")]
pub struct MissingNode {
    /// Level of the missing node.
    pub level: u8,
    /// Index of the missing node within its level.
    pub index: u64,
}

/// An in-memory [`NodeSource`] holding every perfect subtree node.
///
/// Used by tests and by offline verification, which rebuilds the tree from an
/// export and then recomputes roots and proofs with the same code as the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    /// `levels[L][i]` is the perfect node at level `L`, index `i`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// Creates an empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tree by appending the given leaf hashes in order.
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash>>(leaf_hashes: I) -> Self {
        let mut tree = Self::new();
        for h in leaf_hashes {
            tree.push(h);
        }
        tree
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |row| row.len() as u64)
    }

    /// Appends a leaf hash and stores every perfect node it completes.
    ///
    /// Returns the 0-based index of the new leaf. The nodes stored are exactly
    /// those reported by [`nodes_completed_by_append`]; this is written
    /// independently (infallibly, from the rows themselves) so the two can be
    /// tested against each other.
    pub fn push(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.size();
        let mut hash = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            // A node completes its parent exactly when it is a right child,
            // i.e. when its row now has an even number of entries.
            match row.as_slice() {
                [.., left, right] if row.len() & 1 == 0 => {
                    hash = node_hash(left, right);
                    level += 1;
                }
                _ => break,
            }
        }
        index
    }
}

impl NodeSource for MemoryTree {
    type Error = MissingNode;

    fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}

/// Errors from proof generation and range hashing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    /// A leaf index at or beyond the tree size was requested.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size the proof was requested for.
        size: u64,
    },
    /// A consistency proof from a larger to a smaller tree was requested.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeOrder {
        /// Size of the older tree.
        old_size: u64,
        /// Size of the newer tree.
        new_size: u64,
    },
    /// The range is reversed or not aligned as [`subtree_hash`] requires.
    #[error("leaf range [{start}, {end}) is not a valid aligned range")]
    InvalidRange {
        /// First leaf of the range.
        start: u64,
        /// One past the last leaf of the range.
        end: u64,
    },
    /// The node source failed.
    #[error("node lookup failed: {0}")]
    Source(#[source] E),
}

/// Errors from proof verification: each variant says which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// The old tree is claimed to be larger than the new one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeOrder {
        /// Claimed old tree size.
        old_size: u64,
        /// Claimed new tree size.
        new_size: u64,
    },
    /// The proof does not have the number of hashes RFC 9162 prescribes for
    /// these sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength {
        /// Length required by the sizes/index.
        expected: usize,
        /// Length of the supplied proof.
        got: usize,
    },
    /// The root recomputed from an inclusion proof differs from the given root.
    #[error("inclusion proof does not lead to the given root")]
    RootMismatch,
    /// The old root recomputed from a consistency proof differs from the
    /// given old root (or, for an empty old tree, is not the empty root).
    #[error("consistency proof does not match the old root")]
    OldRootMismatch,
    /// The new root recomputed from a consistency proof differs from the
    /// given new root (or, for equal sizes, the two roots differ).
    #[error("consistency proof does not match the new root")]
    NewRootMismatch,
}

/// Largest power of two strictly smaller than `n`; the split point `k` of
/// RFC 9162 section 2.1.1. Requires `n >= 2`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hashes `len` leaves from `start` out of perfect nodes, without checking
/// alignment (callers guarantee `start` is a multiple of the largest power of
/// two `<= len`; misaligned input yields a wrong hash, never a panic).
///
/// The range is cut into perfect pieces, one per set bit of `len`, largest
/// first; RFC 9162's recursion
/// `MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))` is then a
/// right-to-left fold over those pieces.
fn fold_range<S: NodeSource + ?Sized>(start: u64, len: u64, src: &S) -> Result<Hash, S::Error> {
    if len == 0 {
        return Ok(empty_root());
    }
    let mut acc: Option<Hash> = None;
    // Walk the pieces from the smallest (rightmost) to the largest (leftmost).
    for level in 0..64u32 {
        if (len >> level) & 1 == 0 {
            continue;
        }
        // Offset of this piece: all larger pieces come before it.
        let offset = len & ((u64::MAX << level) << 1);
        let index = (start + offset) >> level;
        let piece = src.node(level as u8, index)?;
        acc = Some(match acc {
            None => piece,
            Some(right) => node_hash(&piece, &right),
        });
    }
    Ok(acc.unwrap_or_else(empty_root))
}

/// The perfect nodes completed by appending leaf `index` (0-based) with hash
/// `leaf_hash`: `(level, index, hash)` for level 0 and then each parent whose
/// right child just became complete.
///
/// There are `1 + index.trailing_ones()` of them. Left siblings are read from
/// `src`, which must already hold the nodes of leaves `0..index`. Storing all
/// returned nodes keeps the [`NodeSource`] invariant for size `index + 1`.
pub fn nodes_completed_by_append<S: NodeSource + ?Sized>(
    index: u64,
    leaf_hash: Hash,
    src: &S,
) -> Result<Vec<(u8, u64, Hash)>, S::Error> {
    let mut out = Vec::with_capacity(1 + index.trailing_ones() as usize);
    out.push((0u8, index, leaf_hash));
    let mut hash = leaf_hash;
    let mut i = index;
    let mut level = 0u8;
    // Node i at some level is a right child iff i is odd; then its parent
    // (i >> 1 at level + 1) is complete.
    while i & 1 == 1 {
        let left = src.node(level, i - 1)?;
        hash = node_hash(&left, &hash);
        i >>= 1;
        level += 1;
        out.push((level, i, hash));
    }
    Ok(out)
}

/// RFC 9162 section 2.1.1 Merkle Tree Hash of the first `size` leaves.
///
/// Uses one node lookup per set bit of `size`. Size 0 gives [`empty_root`].
pub fn root<S: NodeSource + ?Sized>(size: u64, src: &S) -> Result<Hash, S::Error> {
    fold_range(0, size, src)
}

/// Merkle Tree Hash of the leaf range `D[start:end]`.
///
/// Precondition: `start <= end` and `start` is a multiple of the largest
/// power of two `<= end - start`. Every range that occurs in the RFC 9162
/// recursion (section 2.1.1) satisfies this, and it is exactly what makes the
/// range decompose into stored perfect nodes. An empty range hashes to
/// [`empty_root`]. Violations return [`ProofError::InvalidRange`].
pub fn subtree_hash<S: NodeSource + ?Sized>(
    start: u64,
    end: u64,
    src: &S,
) -> Result<Hash, ProofError<S::Error>> {
    let invalid = ProofError::InvalidRange { start, end };
    let Some(len) = end.checked_sub(start) else {
        return Err(invalid);
    };
    if len > 0 {
        let largest = 1u64 << (63 - len.leading_zeros());
        if start & (largest - 1) != 0 {
            return Err(invalid);
        }
    }
    fold_range(start, len, src).map_err(ProofError::Source)
}

/// Walks the RFC 9162 section 2.1.3.1 PATH recursion for leaf `index` in a
/// tree of `size`, calling `visit(sibling_start, sibling_end)` top-down.
fn walk_path<F, E>(index: u64, size: u64, mut visit: F) -> Result<(), E>
where
    F: FnMut(u64, u64) -> Result<(), E>,
{
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split_point(end - start);
        if index - start < k {
            // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            visit(start + k, end)?;
            end = start + k;
        } else {
            // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            visit(start, start + k)?;
            start += k;
        }
    }
    Ok(())
}

/// Walks the RFC 9162 section 2.1.4.1 SUBPROOF recursion for `PROOF(m, D[n])`
/// with `0 < m <= n`, calling `visit(start, end)` top-down for every subtree
/// hash the proof contains.
fn walk_consistency<F, E>(old_size: u64, new_size: u64, mut visit: F) -> Result<(), E>
where
    F: FnMut(u64, u64) -> Result<(), E>,
{
    if old_size == 0 || old_size > new_size {
        // Outside SUBPROOF's domain; the public callers never get here.
        return Ok(());
    }
    let (mut start, mut end) = (0u64, new_size);
    let mut m = old_size;
    // `b` of SUBPROOF: true while the current subtree is still a prefix of
    // the old tree whose root the verifier already knows.
    let mut b = true;
    loop {
        let n = end - start;
        if m == n {
            // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
            if !b {
                visit(start, end)?;
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            visit(start + k, end)?;
            end = start + k;
        } else {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            visit(start, start + k)?;
            start += k;
            m -= k;
            b = false;
        }
    }
}

/// Number of hashes in `PATH(index, D[size])`; requires `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let mut n = 0usize;
    let _ = walk_path::<_, ()>(index, size, |_, _| {
        n += 1;
        Ok(())
    });
    n
}

/// Number of hashes in `PROOF(old_size, D[new_size])`; requires
/// `0 < old_size <= new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let mut n = 0usize;
    let _ = walk_consistency::<_, ()>(old_size, new_size, |_, _| {
        n += 1;
        Ok(())
    });
    n
}

/// RFC 9162 section 2.1.3.1 inclusion proof `PATH(index, D[size])` for the leaf
/// at 0-based `index`, ordered from the leaf's sibling up to the root's child.
///
/// Needs O(log size) node lookups: all siblings are perfect nodes except at
/// most one right-hand remainder, itself O(log size) nodes.
/// `index >= size` returns [`ProofError::IndexOutOfRange`].
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    index: u64,
    size: u64,
    src: &S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    walk_path(index, size, |start, end| {
        proof.push(fold_range(start, end - start, src).map_err(ProofError::Source)?);
        Ok(())
    })?;
    // The recursion appends deeper siblings first, so reverse the top-down walk.
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 section 2.1.4.1 consistency proof `PROOF(old_size, D[new_size])`.
///
/// `old_size == new_size` gives the empty proof (`SUBPROOF(m, D[m], true)`).
/// `old_size == 0` also gives the empty proof: RFC 9162 only defines the proof
/// for `0 < m`, and an empty tree is trivially a prefix of every tree, so
/// there is nothing to prove ([`verify_consistency`] then only checks that the
/// old root is the empty root). `old_size > new_size` returns
/// [`ProofError::SizeOrder`]. Uses O(log new_size) node lookups.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    old_size: u64,
    new_size: u64,
    src: &S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Ok(Vec::new());
    }
    let mut proof = Vec::new();
    walk_consistency(old_size, new_size, |start, end| {
        proof.push(fold_range(start, end - start, src).map_err(ProofError::Source)?);
        Ok(())
    })?;
    proof.reverse();
    Ok(proof)
}

/// Right-shifts `fn_` and `sn` together until LSB(fn) is set or fn is 0
/// (RFC 9162 sections 2.1.3.2 step 4.b.ii and 2.1.4.2 step 6.b.iii).
fn shift_until_odd_or_zero(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// RFC 9162 section 2.1.3.2: verifies that `leaf_hash` is leaf `index` of the
/// tree of `size` leaves whose root is `root`, given the inclusion `proof`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    // Step 1.
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    // Checked up front only to name the failure precisely; the RFC loop
    // below would reject a wrong length anyway (via `sn`).
    let expected = inclusion_proof_len(index, size);
    let wrong_len = VerifyError::WrongProofLength {
        expected,
        got: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_len);
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(wrong_len);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                shift_until_odd_or_zero(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(wrong_len);
    }
    if r != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 section 2.1.4.2: verifies that the tree of `old_size` leaves with
/// root `old_root` is a prefix of the tree of `new_size` leaves with root
/// `new_root`, given the consistency `proof`.
///
/// Edge cases (outside the RFC's `0 < first < second`): equal sizes need an
/// empty proof and equal roots; `old_size == 0` needs an empty proof and
/// `old_root == empty_root()` (and, if `new_size == 0` too, equal roots).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), VerifyError> {
    if old_size > new_size {
        return Err(VerifyError::SizeOrder { old_size, new_size });
    }
    let expected = if old_size == 0 {
        0
    } else {
        consistency_proof_len(old_size, new_size)
    };
    let wrong_len = VerifyError::WrongProofLength {
        expected,
        got: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_len);
    }
    if old_size == 0 {
        if *old_root != empty_root() {
            return Err(VerifyError::OldRootMismatch);
        }
        if new_size == 0 && new_root != old_root {
            return Err(VerifyError::NewRootMismatch);
        }
        return Ok(());
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(VerifyError::NewRootMismatch);
        }
        return Ok(());
    }
    // Step 1: an empty path fails (cannot happen after the length check, but
    // the pattern keeps the code free of indexing).
    let Some((head, tail)) = proof.split_first() else {
        return Err(wrong_len);
    };
    // Step 2: if `first` is a power of two its root is the seed and the
    // whole proof is consumed in step 6; otherwise the seed is proof[0].
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (head, tail)
    };
    // Step 3.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (*seed, *seed);
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(wrong_len);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                shift_until_odd_or_zero(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(wrong_len);
    }
    if fr != *old_root {
        return Err(VerifyError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(VerifyError::NewRootMismatch);
    }
    Ok(())
}

/// The right edge of a tree being built left to right: the perfect subtrees that make up the
/// first `size` leaves, largest first. It holds O(log n) hashes, so an export of any length is
/// verified in flat memory, and it can start mid-log from the nodes covering `[0, start)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    /// `(level, hash)` pairs, levels strictly decreasing.
    stack: Vec<(u8, Hash)>,
    size: u64,
}

/// Why a subtree cannot be pushed onto a [`Frontier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a level-{level} subtree cannot follow {size} leaves: it must start at a multiple of its size"
)]
pub struct Misaligned {
    /// Level of the subtree offered.
    pub level: u8,
    /// Size of the frontier.
    pub size: u64,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves covered so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push_leaf(&mut self, leaf_hash: Hash) {
        // Level 0 is always aligned.
        let _aligned = self.push_subtree(0, leaf_hash);
    }

    /// Appends a perfect subtree of `2^level` leaves; it must start at a multiple of its size
    /// (RFC 9162's decomposition only ever produces such subtrees).
    pub fn push_subtree(&mut self, level: u8, hash: Hash) -> Result<(), Misaligned> {
        let width = 1u64.checked_shl(u32::from(level)).ok_or(Misaligned {
            level,
            size: self.size,
        })?;
        if level >= 64 || !self.size.is_multiple_of(width) || self.size.checked_add(width).is_none()
        {
            return Err(Misaligned {
                level,
                size: self.size,
            });
        }
        if let Some(&(top, _)) = self.stack.last()
            && top < level
        {
            return Err(Misaligned {
                level,
                size: self.size,
            });
        }
        self.size += width;
        let (mut level, mut hash) = (level, hash);
        while let Some(&(top, left)) = self.stack.last() {
            if top != level {
                break;
            }
            self.stack.pop();
            hash = node_hash(&left, &hash);
            level += 1;
        }
        self.stack.push((level, hash));
        Ok(())
    }

    /// The root of the leaves so far (RFC 9162 section 2.1.1): the subtrees folded right to left.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }

    /// The perfect subtrees, largest first, as `(level, hash)`.
    pub fn subtrees(&self) -> &[(u8, Hash)] {
        &self.stack
    }
}

/// The perfect subtrees covering `[0, size)`, largest first, as `(level, index)`: what a
/// [`Frontier`] at `size` holds.
pub fn left_decomposition(size: u64) -> Vec<(u8, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            out.push((level, start >> level));
            start += width;
        }
    }
    out
}

/// The aligned perfect subtrees covering `[start, end)` in order, as `(level, index)`: at each
/// position the largest subtree that starts there and fits.
pub fn right_decomposition(start: u64, end: u64) -> Vec<(u8, u64)> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let mut level = if pos == 0 {
            63
        } else {
            pos.trailing_zeros().min(63) as u8
        };
        while level > 0 && (1u64 << level) > end - pos {
            level -= 1;
        }
        out.push((level, pos >> level));
        pos += 1u64 << level;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    // ---- Reference implementation written straight from RFC 9162 2.1 ----

    fn k_of(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// `MTH(D[n])`, section 2.1.1.
    fn ref_mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => Sha256::digest([]).into(),
            1 => leaf_hash(&d[0]),
            n => {
                let k = k_of(n);
                node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
            }
        }
    }

    /// `PATH(m, D[n])`, section 2.1.3.1.
    fn ref_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = k_of(n);
        if m < k {
            let mut p = ref_path(m, &d[..k]);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &d[k..]);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    /// `SUBPROOF(m, D[n], b)`, section 2.1.4.1.
    fn ref_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![ref_mth(d)] };
        }
        let k = k_of(n);
        if m <= k {
            let mut p = ref_subproof(m, &d[..k], b);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &d[k..], false);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    fn tree_of(d: &[Vec<u8>]) -> MemoryTree {
        MemoryTree::from_leaf_hashes(d.iter().map(|l| leaf_hash(l)))
    }

    // ---- Published vectors: RFC 6962 / transparency-dev/merkle ----
    // Source: github.com/transparency-dev/merkle proof/verify_test.go (also
    // testonly constants, and certificate-transparency-go merkletree tests).

    fn ct_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn known_answer_roots() {
        assert_eq!(
            empty_root(),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let d = ct_leaves();
        let t = tree_of(&d);
        assert_eq!(root(0, &t).unwrap(), empty_root());
        for (i, want) in CT_ROOTS.iter().enumerate() {
            assert_eq!(root(i as u64 + 1, &t).unwrap(), h(want), "size {}", i + 1);
            assert_eq!(ref_mth(&d[..=i]), h(want));
        }
    }

    #[test]
    fn known_answer_inclusion_proofs() {
        // (0-based index, size, proof); the Go file lists 1-based leaves.
        let vectors: [(u64, u64, Vec<&str>); 5] = [
            (
                0,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                vec![
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (0, 1, vec![]),
        ];
        let d = ct_leaves();
        let t = tree_of(&d);
        for (index, size, proof) in vectors {
            let want: Vec<Hash> = proof.iter().map(|s| h(s)).collect();
            assert_eq!(inclusion_proof(index, size, &t).unwrap(), want);
            let root_hash = h(CT_ROOTS[size as usize - 1]);
            let lh = leaf_hash(&d[index as usize]);
            verify_inclusion(&lh, index, size, &want, &root_hash).unwrap();
        }
    }

    #[test]
    fn known_answer_consistency_proofs() {
        let vectors: [(u64, u64, Vec<&str>); 5] = [
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        let t = tree_of(&ct_leaves());
        for (m, n, proof) in vectors {
            let want: Vec<Hash> = proof.iter().map(|s| h(s)).collect();
            assert_eq!(consistency_proof(m, n, &t).unwrap(), want, "{m} -> {n}");
            let r1 = h(CT_ROOTS[m as usize - 1]);
            let r2 = h(CT_ROOTS[n as usize - 1]);
            verify_consistency(m, n, &want, &r1, &r2).unwrap();
            if m < n {
                assert!(verify_consistency(m, n, &want, &r2, &r1).is_err());
            }
        }
    }

    // ---- Exhaustive checks against the reference implementation ----

    #[test]
    fn roots_match_reference_for_all_sizes() {
        let d = leaves(1025);
        let t = tree_of(&d);
        for n in (0..=70).chain([127, 128, 129, 1000, 1024, 1025]) {
            assert_eq!(root(n as u64, &t).unwrap(), ref_mth(&d[..n]), "size {n}");
        }
    }

    #[test]
    fn nodes_completed_by_append_matches_memory_tree() {
        let d = leaves(300);
        let mut t = MemoryTree::new();
        for (i, l) in d.iter().enumerate() {
            let i = i as u64;
            let lh = leaf_hash(l);
            let nodes = nodes_completed_by_append(i, lh, &t).unwrap();
            assert_eq!(nodes.len(), 1 + i.trailing_ones() as usize);
            assert_eq!(nodes[0], (0, i, lh));
            assert_eq!(t.push(lh), i);
            for (level, index, hash) in nodes {
                assert_eq!(t.node(level, index).unwrap(), hash);
                // A perfect node is the MTH of exactly the leaves it covers.
                let s = (index << level) as usize;
                let e = ((index + 1) << level) as usize;
                assert_eq!(hash, ref_mth(&d[s..e]));
            }
        }
        assert_eq!(t.size(), 300);
    }

    fn inclusion_tampers_fail(lh: &Hash, index: u64, size: u64, proof: &[Hash], root_hash: &Hash) {
        let other = leaf_hash(b"not the leaf");
        assert!(verify_inclusion(&other, index, size, proof, root_hash).is_err());
        for wrong_index in [index.wrapping_sub(1), index + 1, index ^ 2, index ^ 1] {
            if wrong_index != index {
                assert!(verify_inclusion(lh, wrong_index, size, proof, root_hash).is_err());
            }
        }
        // Not size +/- 1: an inclusion proof does not always bind the exact
        // size (PATH(0, D[5]) and PATH(0, D[6]) have the same shape), so the
        // probes are the ones Trillian uses, which change the tree height.
        for wrong_size in [size * 2, size / 2] {
            if wrong_size != size {
                assert!(verify_inclusion(lh, index, wrong_size, proof, root_hash).is_err());
            }
        }
        let mut bad_root = *root_hash;
        bad_root[0] ^= 1;
        assert!(verify_inclusion(lh, index, size, proof, &bad_root).is_err());
        for i in 0..proof.len() {
            let mut p = proof.to_vec();
            p[i][0] ^= 8;
            assert!(verify_inclusion(lh, index, size, &p, root_hash).is_err());
        }
        if !proof.is_empty() {
            assert!(
                verify_inclusion(lh, index, size, &proof[..proof.len() - 1], root_hash).is_err()
            );
        }
        let mut longer = proof.to_vec();
        longer.push(*root_hash);
        assert!(verify_inclusion(lh, index, size, &longer, root_hash).is_err());
        let mut prefixed = vec![*lh];
        prefixed.extend_from_slice(proof);
        assert!(verify_inclusion(lh, index, size, &prefixed, root_hash).is_err());
    }

    #[test]
    fn inclusion_proofs_all_leaves_small_trees() {
        let d = leaves(70);
        let t = tree_of(&d);
        for size in 1..=70usize {
            let r = root(size as u64, &t).unwrap();
            for index in 0..size {
                let p = inclusion_proof(index as u64, size as u64, &t).unwrap();
                assert_eq!(p, ref_path(index, &d[..size]), "PATH({index}, D[{size}])");
                let lh = leaf_hash(&d[index]);
                verify_inclusion(&lh, index as u64, size as u64, &p, &r).unwrap();
                inclusion_tampers_fail(&lh, index as u64, size as u64, &p, &r);
            }
        }
    }

    #[test]
    fn inclusion_proofs_large_trees() {
        let d = leaves(1025);
        let t = tree_of(&d);
        for size in [1000usize, 1024, 1025] {
            let r = root(size as u64, &t).unwrap();
            let mut picks: Vec<usize> = (0..size).step_by(37).collect();
            picks.extend([511, 512, 513, 999, size - 2, size - 1]);
            for index in picks.into_iter().filter(|&i| i < size) {
                let p = inclusion_proof(index as u64, size as u64, &t).unwrap();
                assert_eq!(p, ref_path(index, &d[..size]));
                let lh = leaf_hash(&d[index]);
                verify_inclusion(&lh, index as u64, size as u64, &p, &r).unwrap();
                inclusion_tampers_fail(&lh, index as u64, size as u64, &p, &r);
            }
        }
    }

    fn consistency_tampers_fail(m: u64, n: u64, proof: &[Hash], r1: &Hash, r2: &Hash) {
        assert!(verify_consistency(m, n, &[], r1, r2).is_err());
        assert!(verify_consistency(m - 1, n, proof, r1, r2).is_err());
        assert!(verify_consistency(m + 1, n, proof, r1, r2).is_err());
        if m ^ 2 != m {
            assert!(verify_consistency(m ^ 2, n, proof, r1, r2).is_err());
        }
        assert!(verify_consistency(m, n * 2, proof, r1, r2).is_err());
        let mut bad = *r1;
        bad[31] ^= 0x40;
        assert!(verify_consistency(m, n, proof, &bad, r2).is_err());
        let mut bad = *r2;
        bad[31] ^= 0x40;
        assert!(verify_consistency(m, n, proof, r1, &bad).is_err());
        assert!(verify_consistency(m, n, proof, r2, r1).is_err());
        for i in 0..proof.len() {
            let mut p = proof.to_vec();
            p[i][0] ^= 16;
            assert!(verify_consistency(m, n, &p, r1, r2).is_err());
        }
        assert!(verify_consistency(m, n, &proof[..proof.len() - 1], r1, r2).is_err());
        for extra in [*r1, *r2, proof[0]] {
            let mut p = proof.to_vec();
            p.push(extra);
            assert!(verify_consistency(m, n, &p, r1, r2).is_err());
            let mut p = vec![extra];
            p.extend_from_slice(proof);
            assert!(verify_consistency(m, n, &p, r1, r2).is_err());
        }
    }

    fn check_consistency(d: &[Vec<u8>], t: &MemoryTree, m: usize, n: usize) {
        let p = consistency_proof(m as u64, n as u64, t).unwrap();
        assert_eq!(p, ref_subproof(m, &d[..n], true), "PROOF({m}, D[{n}])");
        let r1 = root(m as u64, t).unwrap();
        let r2 = root(n as u64, t).unwrap();
        verify_consistency(m as u64, n as u64, &p, &r1, &r2).unwrap();
        if m < n {
            consistency_tampers_fail(m as u64, n as u64, &p, &r1, &r2);
        } else {
            assert!(p.is_empty());
            let mut bad = r2;
            bad[0] ^= 1;
            assert_eq!(
                verify_consistency(m as u64, n as u64, &p, &r1, &bad),
                Err(VerifyError::NewRootMismatch)
            );
        }
    }

    #[test]
    fn consistency_proofs_all_pairs_small() {
        let d = leaves(40);
        let t = tree_of(&d);
        for n in 1..=40 {
            for m in 1..=n {
                check_consistency(&d, &t, m, n);
            }
        }
    }

    #[test]
    fn consistency_proofs_large() {
        let d = leaves(1025);
        let t = tree_of(&d);
        for (m, n) in [
            (1, 1025),
            (2, 1000),
            (7, 1024),
            (500, 1000),
            (511, 1025),
            (512, 1025),
            (513, 1025),
            (999, 1000),
            (1000, 1025),
            (1024, 1025),
            (1025, 1025),
        ] {
            check_consistency(&d, &t, m, n);
        }
    }

    #[test]
    fn empty_old_tree() {
        let t = tree_of(&leaves(5));
        let r5 = root(5, &t).unwrap();
        let e = empty_root();
        assert_eq!(consistency_proof(0, 5, &t).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(0, 0, &t).unwrap(), Vec::<Hash>::new());
        verify_consistency(0, 5, &[], &e, &r5).unwrap();
        verify_consistency(0, 0, &[], &e, &e).unwrap();
        assert_eq!(
            verify_consistency(0, 5, &[], &r5, &r5),
            Err(VerifyError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 0, &[], &e, &r5),
            Err(VerifyError::NewRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 5, &[e], &e, &r5),
            Err(VerifyError::WrongProofLength {
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn out_of_range_arguments_are_errors() {
        let t = tree_of(&leaves(10));
        assert_eq!(
            inclusion_proof(10, 10, &t),
            Err(ProofError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        assert_eq!(
            inclusion_proof(0, 0, &t),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            consistency_proof(5, 4, &t),
            Err(ProofError::SizeOrder {
                old_size: 5,
                new_size: 4
            })
        );
        // Sizes beyond what the source holds surface the source's error.
        assert_eq!(
            root(11, &t),
            Err(MissingNode {
                level: 0,
                index: 10
            })
        );
        assert!(matches!(
            inclusion_proof(3, 12, &t),
            Err(ProofError::Source(_))
        ));
        assert!(matches!(
            consistency_proof(3, 12, &t),
            Err(ProofError::Source(_))
        ));
        assert_eq!(
            nodes_completed_by_append(11, [0; 32], &t),
            Err(MissingNode {
                level: 0,
                index: 10
            })
        );
        let r = root(10, &t).unwrap();
        assert_eq!(
            verify_inclusion(&r, 10, 10, &[], &r),
            Err(VerifyError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        assert_eq!(
            verify_inclusion(&r, 0, 0, &[], &r),
            Err(VerifyError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_consistency(6, 5, &[], &r, &r),
            Err(VerifyError::SizeOrder {
                old_size: 6,
                new_size: 5
            })
        );
        // Huge values must not overflow or panic.
        assert!(verify_inclusion(&r, u64::MAX - 1, u64::MAX, &[r; 3], &r).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &[r; 3], &r, &r).is_err());
        assert!(matches!(
            inclusion_proof(u64::MAX - 1, u64::MAX, &t),
            Err(ProofError::Source(_))
        ));
    }

    #[test]
    fn subtree_hash_ranges() {
        let d = leaves(40);
        let t = tree_of(&d);
        for start in 0..40usize {
            for end in start..=40usize {
                let len = end - start;
                let aligned = len == 0 || start % (1usize << len.ilog2()) == 0;
                let got = subtree_hash(start as u64, end as u64, &t);
                if aligned {
                    let want = if len == 0 {
                        empty_root()
                    } else {
                        ref_mth(&d[start..end])
                    };
                    assert_eq!(got.unwrap(), want, "[{start}, {end})");
                } else {
                    assert_eq!(
                        got,
                        Err(ProofError::InvalidRange {
                            start: start as u64,
                            end: end as u64
                        })
                    );
                }
            }
        }
        assert_eq!(
            subtree_hash(5, 4, &t),
            Err(ProofError::InvalidRange { start: 5, end: 4 })
        );
    }

    /// Counts lookups to check the O(log n) claim.
    struct Counting<'a>(&'a MemoryTree, std::cell::Cell<usize>);

    impl NodeSource for Counting<'_> {
        type Error = MissingNode;
        fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
            self.1.set(self.1.get() + 1);
            self.0.node(level, index)
        }
    }

    #[test]
    fn lookups_are_logarithmic() {
        let t = tree_of(&leaves(1025));
        let c = Counting(&t, std::cell::Cell::new(0));
        for size in [1000u64, 1023, 1025] {
            let log = 64 - size.leading_zeros() as usize; // ceil-ish log2
            for index in (0..size).step_by(7) {
                c.1.set(0);
                inclusion_proof(index, size, &c).unwrap();
                assert!(
                    c.1.get() <= 2 * log,
                    "inclusion {index}/{size}: {}",
                    c.1.get()
                );
            }
            for old in (1..=size).step_by(5) {
                c.1.set(0);
                consistency_proof(old, size, &c).unwrap();
                assert!(
                    c.1.get() <= 2 * log,
                    "consistency {old}/{size}: {}",
                    c.1.get()
                );
            }
            c.1.set(0);
            root(size, &c).unwrap();
            assert_eq!(c.1.get(), size.count_ones() as usize);
        }
    }

    #[test]
    fn wrong_length_is_reported_as_such() {
        let t = tree_of(&leaves(8));
        let r = root(8, &t).unwrap();
        let p = inclusion_proof(3, 8, &t).unwrap();
        let lh = t.node(0, 3).unwrap();
        assert_eq!(
            verify_inclusion(&lh, 3, 8, &p[..2], &r),
            Err(VerifyError::WrongProofLength {
                expected: 3,
                got: 2
            })
        );
        let mut bad = r;
        bad[5] ^= 1;
        assert_eq!(
            verify_inclusion(&lh, 3, 8, &p, &bad),
            Err(VerifyError::RootMismatch)
        );
    }

    #[test]
    fn frontier_matches_the_reference_root_at_every_size() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, h) in leaves.iter().enumerate() {
            frontier.push_leaf(*h);
            let size = i as u64 + 1;
            assert_eq!(frontier.root(), root(size, &tree).unwrap(), "size {size}");
            let from_nodes: Vec<(u8, u64)> = frontier
                .subtrees()
                .iter()
                .map(|(l, _)| *l)
                .zip(left_decomposition(size).iter().map(|(_, i)| *i))
                .collect();
            assert_eq!(from_nodes, left_decomposition(size));
        }
    }

    #[test]
    fn a_range_rebuilds_the_root_from_its_left_and_right_nodes() {
        let leaves: Vec<Hash> = (0..200u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
        for (start, end, size) in [
            (0, 200, 200),
            (5, 9, 200),
            (64, 128, 130),
            (17, 18, 199),
            (0, 1, 1),
            (100, 100, 150),
            (3, 150, 150),
        ] {
            let mut f = Frontier::new();
            for (level, index) in left_decomposition(start) {
                f.push_subtree(level, tree.node(level, index).unwrap())
                    .unwrap();
            }
            for h in &leaves[start as usize..end as usize] {
                f.push_leaf(*h);
            }
            for (level, index) in right_decomposition(end, size) {
                f.push_subtree(level, tree.node(level, index).unwrap())
                    .unwrap();
            }
            assert_eq!(f.size(), size);
            assert_eq!(
                f.root(),
                root(size, &tree).unwrap(),
                "range {start}..{end} of {size}"
            );
        }
    }

    #[test]
    fn misaligned_subtrees_are_refused() {
        let mut f = Frontier::new();
        f.push_leaf(leaf_hash(b"a"));
        assert!(f.push_subtree(1, leaf_hash(b"b")).is_err());
        assert!(f.push_subtree(64, leaf_hash(b"b")).is_err());
        assert_eq!(f.size(), 1);
    }
}
