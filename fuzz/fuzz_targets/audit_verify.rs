//! The offline audit-export verifier behind `writ audit verify EXPORT --key KEY`:
//! `audit::verify::verify_export` on arbitrary export bytes, with the public key of the log
//! that made the seed exports (`fuzz/fixtures/audit-key.pub.pem`).
//!
//! Beyond "no panic": an export that verifies reports a range inside its checkpoint and as
//! many entries as the range holds, verifies the same when read one byte at a time, and also
//! verifies against its own checkpoint given as the auditor's saved one (a log is consistent
//! with itself).
#![no_main]

use std::io::{BufReader, Cursor};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use writ::audit::export::ExportHeader;
use writ::audit::verify::{VerifierKey, verify_export};

const PUBLIC_KEY: &str = include_str!("../fixtures/audit-key.pub.pem");

fn key() -> &'static VerifierKey {
    static KEY: OnceLock<VerifierKey> = OnceLock::new();
    KEY.get_or_init(|| VerifierKey::parse(PUBLIC_KEY).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(report) = verify_export(Cursor::new(data), key(), None) else {
        return;
    };
    assert!(
        report.start <= report.end && report.end <= report.tree_size,
        "{report:?}"
    );
    assert_eq!(report.entries, report.end - report.start);
    let slow = verify_export(BufReader::with_capacity(1, Cursor::new(data)), key(), None);
    assert_eq!(
        slow.as_ref(),
        Ok(&report),
        "verdict depends on how the export is read"
    );

    // The header line (after the CSV comment prefix, if any) carries the signed checkpoint.
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = std::str::from_utf8(first).unwrap();
    let json = first
        .strip_prefix("# writ-audit-export/v1 ")
        .unwrap_or(first);
    let header: ExportHeader = serde_json::from_str(json).unwrap();
    if let Err(e) = verify_export(Cursor::new(data), key(), Some(&header.checkpoint)) {
        assert!(
            report.start > 0,
            "an export from entry 0 fails against its own checkpoint: {e}"
        );
    }
});
