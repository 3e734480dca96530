//! The log as C2SP tlog-tiles: hash tiles and entry bundles, so that tlog clients and witnesses
//! can follow it without Writ's own export format.
//!
//! - `tile/<L>/<N>[.p/<W>]`: hash tile `N` at level `L`, the Merkle Tree Hashes
//!   `MTH(D[(N*256 + i) * 256^L : (N*256 + i + 1) * 256^L])` for `i < W` (`W` = 256 for a full
//!   tile), 32 bytes each. Those are exactly the stored perfect-subtree nodes at Merkle level
//!   `8L`, index `N*256 + i`.
//! - `tile/entries/<N>[.p/<W>]`: entries `N*256 .. N*256 + W`, each its canonical leaf bytes
//!   prefixed by their length as a big-endian uint16; each hashes (RFC 9162 section 2.1.1) to the
//!   same position of level-0 tile `N`.
//!
//! `N` is written in zero-padded 3-digit path elements, all but the last prefixed by `x`
//! (`1234067` is `x001/x234/067`). Only tiles within the latest signed checkpoint are served,
//! never a hash of an entry not yet signed.

use super::AuditError;
use super::log::{self, DbNodes};
use super::merkle::{Hash, NodeSource};
use crate::db::DbConn;

/// Hashes (or entries) in a full tile.
pub const WIDTH: u64 = 256;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// `None` for an entry bundle, else the tile level `L` (0 to 63).
    pub level: Option<u8>,
    /// The tile index `N`.
    pub index: u64,
    /// How many hashes or entries: 256 for a full tile, 1 to 255 for a partial one.
    pub width: u64,
}

/// Why a tile path is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tlog-tiles path: {0}")]
pub struct BadPath(pub &'static str);

/// A decimal number with no leading zeros (or `0`).
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// The `N` path elements of `index`: `x001/x234/067`.
pub fn encode_index(index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

impl TilePath {
    /// Parses what follows `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, accepting only
    /// the canonical encoding.
    pub fn parse(path: &str) -> Result<Self, BadPath> {
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts.len() < 2 {
            return Err(BadPath("expected <L>/<N> or entries/<N>"));
        }
        let level = match parts.remove(0) {
            "entries" => None,
            l => {
                let level = decimal(l)
                    .filter(|l| *l < 64)
                    .ok_or(BadPath("the level must be 0 to 63, without leading zeros"))?;
                Some(u8::try_from(level).map_err(|_| BadPath("level"))?)
            }
        };
        let mut width = WIDTH;
        if parts.len() >= 2 && parts[parts.len() - 2].ends_with(".p") {
            let w = parts.pop().unwrap_or_default();
            width = decimal(w)
                .filter(|w| (1..WIDTH).contains(w))
                .ok_or(BadPath(
                    "a partial width must be 1 to 255, without leading zeros",
                ))?;
            let last = parts.len() - 1;
            parts[last] = parts[last].trim_end_matches(".p");
        }
        let mut index: u64 = 0;
        for (i, part) in parts.iter().enumerate() {
            let digits = if i + 1 < parts.len() {
                part.strip_prefix('x')
                    .ok_or(BadPath("all but the last index element start with x"))?
            } else {
                part
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadPath("index elements are three digits"));
            }
            let group: u64 = digits.parse().map_err(|_| BadPath("index"))?;
            index = index
                .checked_mul(1000)
                .and_then(|v| v.checked_add(group))
                .ok_or(BadPath("the index is too large"))?;
        }
        if encode_index(index) != parts.join("/") {
            return Err(BadPath("the index is not in its one canonical form"));
        }
        Ok(Self {
            level,
            index,
            width,
        })
    }

    /// `256^level` entries per hash of this tile, or `None` past `u64`.
    fn span(&self) -> Option<u64> {
        WIDTH.checked_pow(u32::from(self.level.unwrap_or(0)))
    }

    /// The first and one-past-the-last entry this tile's content covers.
    fn covers(&self) -> Option<(u64, u64)> {
        let span = self.span()?;
        let first = self.index.checked_mul(WIDTH)?;
        let start = first.checked_mul(span)?;
        let end = first.checked_add(self.width)?.checked_mul(span)?;
        Some((start, end))
    }
}

/// The tile's bytes if it lies within a tree of `size` entries (the latest signed checkpoint's);
/// `None` when it does not exist there.
pub fn read(conn: &mut DbConn, tile: &TilePath, size: u64) -> Result<Option<Vec<u8>>, AuditError> {
    let Some((start, end)) = tile.covers() else {
        return Ok(None);
    };
    if end > size {
        return Ok(None);
    }
    let first = tile.index * WIDTH;
    match tile.level {
        Some(level) => {
            let nodes = DbNodes::new(conn);
            let mut out = Vec::with_capacity(usize::try_from(tile.width).unwrap_or(0) * 32);
            for i in 0..tile.width {
                let hash: Hash = nodes.node(level * 8, first + i)?;
                out.extend_from_slice(&hash);
            }
            Ok(Some(out))
        }
        None => {
            let entries = log::entries(conn, start, end)?;
            if u64::try_from(entries.len()).ok() != Some(tile.width) {
                return Err(AuditError::Corrupt(format!(
                    "entries {start}..{end} are not all stored"
                )));
            }
            let mut out = Vec::new();
            for entry in entries {
                let bytes = entry.leaf.as_bytes();
                let len = u16::try_from(bytes.len()).map_err(|_| {
                    AuditError::Corrupt(format!(
                        "entry {} is longer than an entry bundle can carry",
                        entry.seq
                    ))
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(bytes);
            }
            Ok(Some(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_in_their_canonical_form_only() {
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(encode_index(5), "005");
        assert_eq!(
            TilePath::parse("0/x001/x234/067").unwrap(),
            TilePath {
                level: Some(0),
                index: 1_234_067,
                width: 256
            }
        );
        assert_eq!(
            TilePath::parse("entries/002.p/17").unwrap(),
            TilePath {
                level: None,
                index: 2,
                width: 17
            }
        );
        assert_eq!(TilePath::parse("1/000.p/1").unwrap().level, Some(1));
        for bad in [
            "00/000",
            "64/000",
            "0/5",
            "0/x000/005",
            "0/001/002",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/000.p",
            "0",
            "entries/x1/000",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tile_covers_its_span() {
        let t = TilePath::parse("1/000.p/2").unwrap();
        assert_eq!(t.covers(), Some((0, 512)));
        let t = TilePath::parse("0/001").unwrap();
        assert_eq!(t.covers(), Some((256, 512)));
        let t = TilePath::parse("63/000").unwrap();
        assert_eq!(t.covers(), None);
    }
}
