//! The CSV row parser of `writ import` and `POST /api/v1/ingest/*`: the `csv` reader set up as
//! `metadata::import` sets it up, then `AccountRecord::from_csv` / `IpEventRecord::from_csv`
//! and `validate`.
//!
//! Input: the first byte picks the record kind (even: accounts, odd: IP events); the rest is
//! the file, header row first.
//!
//! Beyond "no panic": a valid row re-validates to itself (normalisation is idempotent); a
//! rejection never echoes a value.
#![no_main]

mod records;

use libfuzzer_sys::fuzz_target;
use writ::metadata::records::{AccountRecord, IpEventRecord, RecordKind};

fuzz_target!(|data: &[u8]| {
    let Some((first, file)) = data.split_first() else {
        return;
    };
    let kind = if first % 2 == 0 {
        RecordKind::Accounts
    } else {
        RecordKind::IpEvents
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file);
    let Ok(headers) = reader.headers().cloned() else {
        return;
    };
    // The import refuses a header with any unknown column before reading a record.
    if headers.iter().any(|h| !kind.fields().contains(&h)) {
        return;
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let result = match kind {
                    RecordKind::Accounts => AccountRecord::from_csv(&headers, &record)
                        .validate()
                        .map(|row| records::account_is_stable(&row)),
                    RecordKind::IpEvents => IpEventRecord::from_csv(&headers, &record)
                        .validate()
                        .map(|row| records::event_is_stable(&row)),
                };
                if let Err(reason) = result {
                    let values: Vec<&str> = record.iter().collect();
                    records::no_value_in(&reason, &values);
                }
            }
            // Malformed rows are rejected by the import with fixed reasons; read on.
            Err(_) => {}
        }
    }
});
