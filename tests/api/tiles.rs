//! The audit log as C2SP tlog-tiles, read by a client written from the specifications alone
//! (c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint, c2sp.org/signed-note, RFC 6962 section 2.1),
//! using none of Writ's own code: it verifies the checkpoint's signature, fetches every tile
//! and entry bundle the checkpoint's size calls for, recomputes the root and compares.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Utc;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use writ::audit::{Actor, ActorKind, NewEntry, append};
use writ::db::write_tx;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app};

both_backends!(a_tlog_tiles_client_recomputes_the_signed_root);

type Hash = [u8; 32];

/// RFC 6962 section 2.1: leaf hash.
fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// RFC 6962 section 2.1: interior node hash.
fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 6962 section 2.1: MTH(D[n]) from the leaf hashes, splitting at the largest power of two
/// smaller than n.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// tlog-tiles: `<N>` as zero-padded 3-digit elements, all but the last prefixed by `x`.
fn tile_index(n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        parts.insert(0, format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    parts.join("/")
}

fn tile_path(level: Option<u32>, n: u64, width: u64) -> String {
    let level = level.map_or("entries".to_owned(), |l| l.to_string());
    let partial = if width < 256 {
        format!(".p/{width}")
    } else {
        String::new()
    };
    format!("/audit/tile/{level}/{}{partial}", tile_index(n))
}

/// signed-note: verifies the signature by `name` with `key`; returns the note text.
fn open_note(note: &str, name: &str, key: &VerifyingKey) -> String {
    let split = note
        .rfind("\n\n")
        .expect("a blank line before the signatures");
    let text = &note[..split + 1];
    let mut id_input = name.as_bytes().to_vec();
    id_input.push(b'\n');
    id_input.push(0x01);
    id_input.extend_from_slice(key.as_bytes());
    let key_id = &Sha256::digest(&id_input)[..4];
    let mut verified = false;
    for line in note[split + 2..].lines() {
        let rest = line.strip_prefix("\u{2014} ").expect("a signature line");
        let (signer, sig) = rest.split_once(' ').unwrap();
        let sig = B64.decode(sig).unwrap();
        if signer == name && &sig[..4] == key_id {
            let signature = Signature::from_slice(&sig[4..]).unwrap();
            key.verify_strict(text.as_bytes(), &signature)
                .expect("the log's signature verifies");
            verified = true;
        }
    }
    assert!(verified, "no signature by {name}");
    text.to_owned()
}

async fn fetch(app: &TestApp, path: &str, auditor: bool) -> reqwest::Response {
    let request = app.client.get(format!("{}{path}", app.address));
    let request = if auditor {
        request.bearer_auth(&app.db.auditor_token)
    } else {
        request
    };
    request.send().await.unwrap()
}

async fn bytes(app: &TestApp, path: &str, auditor: bool) -> Vec<u8> {
    let res = fetch(app, path, auditor).await;
    assert_eq!(res.status(), 200, "{path}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream",
        "{path}"
    );
    res.bytes().await.unwrap().to_vec()
}

fn hashes(tile: &[u8]) -> Vec<Hash> {
    assert_eq!(tile.len() % 32, 0);
    tile.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

/// `count` entries in one transaction, through Writ's own append (the log under test).
async fn fill(app: &TestApp, from: u64, count: u64) {
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        write_tx(&mut conn, |c| {
            for i in from..from + count {
                let entry = NewEntry::new(Actor::new(ActorKind::Staff, "u_1"), "test.tile")
                    .reference("n", i);
                append(c, &entry, Utc::now())?;
            }
            Ok::<_, writ::audit::AuditError>(())
        })
        .unwrap();
    })
    .await
    .unwrap();
}

async fn a_tlog_tiles_client_recomputes_the_signed_root(backend: Backend) {
    let app = spawn_app(backend).await;
    // 600 entries: level-0 tiles 000 and 001 full, 002 partial (88); level-1 tile 000 partial (2).
    fill(&app, 0, 600).await;
    let res = app.post_as_auditor("/audit/checkpoint").await;
    assert_eq!(res.status(), 200);
    // Appended after the checkpoint: no tile may show them.
    fill(&app, 600, 5).await;

    let keys: serde_json::Value = fetch(&app, "/audit/keys", false)
        .await
        .json()
        .await
        .unwrap();
    let origin = keys["origin"].as_str().unwrap().to_owned();
    let key = VerifyingKey::from_public_key_pem(keys["public_key_pem"].as_str().unwrap()).unwrap();
    let note = fetch(&app, "/audit/checkpoint", false)
        .await
        .text()
        .await
        .unwrap();
    // tlog-checkpoint: origin, decimal size, base64 root hash.
    let text = open_note(&note, &origin, &key);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], origin);
    let size: u64 = lines[1].parse().unwrap();
    let root: Hash = B64.decode(lines[2]).unwrap().try_into().unwrap();
    assert_eq!(size, 600);

    // Every tile the size calls for, level by level.
    let mut levels: Vec<Vec<Vec<Hash>>> = Vec::new();
    let mut level = 0u32;
    while 256u64.pow(level) <= size {
        let per_hash = 256u64.pow(level);
        let full = size / (per_hash * 256);
        let partial = (size / per_hash) % 256;
        let mut tiles = Vec::new();
        for n in 0..full {
            tiles.push(hashes(
                &bytes(&app, &tile_path(Some(level), n, 256), false).await,
            ));
        }
        if partial > 0 {
            let tile = hashes(&bytes(&app, &tile_path(Some(level), full, partial), false).await);
            assert_eq!(tile.len() as u64, partial);
            tiles.push(tile);
        }
        levels.push(tiles);
        level += 1;
    }
    // A hash at level l+1 is the MTH of the full tile below it.
    for l in 1..levels.len() {
        for (n, tile) in levels[l].iter().enumerate() {
            for (i, hash) in tile.iter().enumerate() {
                assert_eq!(
                    *hash,
                    mth(&levels[l - 1][n * 256 + i]),
                    "level {l} tile {n}"
                );
            }
        }
    }
    let leaves: Vec<Hash> = levels[0].iter().flatten().copied().collect();
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(mth(&leaves), root, "the tiles give the signed root");

    // Entry bundles: big-endian uint16 length-prefixed entries hashing to the level-0 tiles.
    let mut entries = Vec::new();
    for (n, tile) in levels[0].iter().enumerate() {
        let bundle = bytes(&app, &tile_path(None, n as u64, tile.len() as u64), true).await;
        let mut rest = &bundle[..];
        let mut count = 0;
        while !rest.is_empty() {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let entry = &rest[2..2 + len];
            assert_eq!(leaf_hash(entry), tile[count], "bundle {n} entry {count}");
            entries.push(entry.to_vec());
            rest = &rest[2 + len..];
            count += 1;
        }
        assert_eq!(count, tile.len());
    }
    assert_eq!(entries.len(), 600);
    let last: serde_json::Value = serde_json::from_slice(&entries[599]).unwrap();
    assert_eq!(last["refs"]["n"], 599);

    // Nothing beyond the signed size; entries only for auditors; bad paths named.
    assert_eq!(
        fetch(&app, "/audit/tile/0/002.p/93", false).await.status(),
        404
    );
    assert_eq!(fetch(&app, "/audit/tile/0/003", false).await.status(), 404);
    assert_eq!(
        fetch(&app, "/audit/tile/entries/000", false).await.status(),
        401
    );
    for bad in [
        "/audit/tile/0/2",
        "/audit/tile/00/000",
        "/audit/tile/0/000.p/256",
    ] {
        let res = fetch(&app, bad, false).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
}
