//! The JSON Lines row parser of `writ import` and `POST /api/v1/ingest/*`
//! (`metadata::records`: serde into `AccountRecord` / `IpEventRecord`, `parse_rejection`,
//! `validate`), line by line as `metadata::import` reads a file.
//!
//! Input: the first byte picks the record kind (even: accounts, odd: IP events); the rest is
//! the file.
//!
//! Beyond "no panic": a valid row re-validates to itself (normalisation is idempotent); a
//! rejection never echoes a value.
#![no_main]

mod records;

use libfuzzer_sys::fuzz_target;
use writ::metadata::records::{
    AccountRecord, IpEventRecord, RecordKind, Rejection, parse_rejection,
};

/// The longest line `metadata::import` hands to the parser.
const MAX_LINE_BYTES: usize = 64 * 1024;

fn string_values(line: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(o)) => o
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn check(kind: RecordKind, line: &str) {
    let values = string_values(line);
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let parse = |e: serde_json::Error| parse_rejection(kind, &e.to_string());
    let result: Result<(), Rejection> = match kind {
        RecordKind::Accounts => serde_json::from_str::<AccountRecord>(line)
            .map_err(parse)
            .and_then(|r| r.validate())
            .map(|row| records::account_is_stable(&row)),
        RecordKind::IpEvents => serde_json::from_str::<IpEventRecord>(line)
            .map_err(parse)
            .and_then(|r| r.validate())
            .map(|row| records::event_is_stable(&row)),
    };
    if let Err(reason) = result {
        assert!(!reason.0.is_empty());
        records::no_value_in(&reason, &values);
        // A malformed line is reported without quoting it.
        if line.len() >= 4 && line.contains('~') {
            assert!(
                !reason.0.contains(line),
                "rejection quotes the line: {}",
                reason.0
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((first, file)) = data.split_first() else {
        return;
    };
    let kind = if first % 2 == 0 {
        RecordKind::Accounts
    } else {
        RecordKind::IpEvents
    };
    for line in file.split(|b| *b == b'\n') {
        if line.len() > MAX_LINE_BYTES {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            check(kind, trimmed);
        }
    }
});
