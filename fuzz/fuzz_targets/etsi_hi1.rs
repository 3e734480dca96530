//! The ETSI TS 103 120 HI-1 parser behind `POST /etsi/hi1`: `etsi::parse(bytes, &Limits)`.
//!
//! Beyond "no panic": a message that parses is written back by `etsi::write`, what is written
//! parses again, and writing that gives the same document (Writ answers with its own writer's
//! output). The first write may drop what the writer documents it cannot carry (a signature,
//! an `LDTaskObject`'s `DeliveryDetails`, sub-second times), so the fixed point is compared.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ::etsi::{Limits, parse, write};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(message) = parse(data, &limits) else {
        return;
    };
    let written = write(&message);
    let again = match parse(written.as_bytes(), &limits) {
        Ok(again) => again,
        Err(e) => panic!("Writ's own output does not parse: {e}\n{written}"),
    };
    let rewritten = write(&again);
    assert_eq!(
        rewritten, written,
        "writing the re-parsed message changes it"
    );
    assert_eq!(parse(rewritten.as_bytes(), &limits).ok(), Some(again));
});
