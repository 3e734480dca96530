//! Shared by the two import targets: the record checks that hold whatever the format.

use writ::metadata::normalize::from_micros;
use writ::metadata::records::{
    AccountRecord, AccountRow, IpEventRecord, IpEventRow, Rejection, Scalar,
};

fn text(s: &str) -> Option<Scalar> {
    Some(Scalar::Text(s.to_owned()))
}

fn time(micros: i64) -> Option<Scalar> {
    text(&from_micros(micros).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A validated account row, fed back as a record, validates to the same row: normalisation is
/// idempotent, so a re-import of an export finds the row unchanged.
pub fn account_is_stable(row: &AccountRow) {
    let mut record = AccountRecord {
        external_id: text(&row.external_id),
        status: text(&row.status),
        created_at: time(row.created_at),
        registration_ip: row.registration_ip.as_deref().and_then(text),
        phone_number: None,
        username: None,
        valid_from: None,
        valid_to: None,
    };
    for id in &row.identifiers {
        match id.kind {
            "phone" => record.phone_number = text(&id.value),
            "username" => record.username = text(&id.value),
            other => panic!("unknown identifier kind {other}"),
        }
        record.valid_from = time(id.valid_from);
        record.valid_to = id.valid_to.and_then(time);
    }
    match record.validate() {
        Ok(again) => assert_eq!(&again, row, "normalising twice changed the row"),
        Err(e) => panic!("a validated row is refused when fed back: {e}: {row:?}"),
    }
}

/// The same for an IP event row.
pub fn event_is_stable(row: &IpEventRow) {
    let record = IpEventRecord {
        external_id: text(&row.external_id),
        ip: text(&row.ip),
        port: (row.port != 0).then(|| Scalar::Int(i64::from(row.port))),
        at: time(row.at),
        kind: text(&row.kind),
    };
    match record.validate() {
        Ok(again) => assert_eq!(&again, row, "normalising twice changed the row"),
        Err(e) => panic!("a validated row is refused when fed back: {e}: {row:?}"),
    }
}

/// A rejection never carries a value. Values marked with `~` (which no fixed message contains)
/// must not appear in it.
pub fn no_value_in(reason: &Rejection, values: &[&str]) {
    for v in values {
        if v.len() >= 4 && v.contains('~') {
            assert!(
                !reason.0.contains(v),
                "rejection echoes a value: {:?} in {:?}",
                v,
                reason.0
            );
        }
    }
}
