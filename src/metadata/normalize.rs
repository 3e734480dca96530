//! Parsing and normalising the values the store keeps: one canonical form each, so that equal
//! things compare equal in lookups. Error messages name the rule broken, never the value (the
//! values are personal data and must not reach reject files or logs).

use std::net::IpAddr;

use chrono::{DateTime, Datelike, Utc};

/// A phone number in E.164 (`+33612345678`), validated against the numbering plan.
pub fn phone(input: &str) -> Result<String, &'static str> {
    let input = input.trim();
    if !input.starts_with('+') {
        return Err("must be in international format, starting with + and the country code");
    }
    let number = phonenumber::parse(None, input).map_err(|_| "is not a phone number")?;
    if !phonenumber::is_valid(&number) {
        return Err("is not a valid number in its country's numbering plan");
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// An IP address in canonical text form: IPv4 dotted quad, IPv6 as RFC 5952 (compressed,
/// lower case); an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) becomes the IPv4 address.
pub fn ip(input: &str) -> Result<IpAddr, &'static str> {
    let parsed: IpAddr = input
        .trim()
        .parse()
        .map_err(|_| "is not an IPv4 or IPv6 address")?;
    Ok(match parsed {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

/// A source port, 1 to 65535 (0 is reserved, and the store uses it for "not recorded").
pub fn port(input: &str) -> Result<u16, &'static str> {
    match input.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err("must be a port number from 1 to 65535"),
        Ok(p) => Ok(p),
    }
}

/// A username: trimmed and lower-cased (usernames are case-insensitive at the provider), 1 to
/// 64 characters, no spaces or control characters.
pub fn username(input: &str) -> Result<String, &'static str> {
    let name = input.trim().to_lowercase();
    if name.is_empty() || name.chars().count() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    Ok(name)
}

/// An RFC 3339 time with an explicit offset, as UTC microseconds since the epoch.
pub fn time(input: &str) -> Result<i64, &'static str> {
    let t = DateTime::parse_from_rfc3339(input.trim())
        .map_err(|_| "must be an RFC 3339 time with a time zone, e.g. 2026-03-03T10:14:03Z")?
        .with_timezone(&Utc);
    // Writ writes every time it keeps back as RFC 3339 in UTC (exports, packages, re-imports):
    // an offset must not carry 0000-01-01 or 9999-12-31 out of the years that format can hold.
    if !(0..=9999).contains(&t.year()) {
        return Err("must fall within the years 0000 to 9999 in UTC");
    }
    Ok(t.timestamp_micros())
}

/// UTC microseconds as a time.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_become_e164() {
        assert_eq!(phone("+33 6 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(phone("+44 7911 123456").unwrap(), "+447911123456");
        assert_eq!(phone("+1 (202) 555-0123").unwrap(), "+12025550123");
        assert_eq!(phone(" +49 (0)30 901820 ").unwrap(), "+4930901820");
        assert!(
            phone("06 12 34 56 78").is_err(),
            "national format is ambiguous"
        );
        assert!(phone("+33 6 12").is_err());
        assert!(phone("+999 1234").is_err());
        assert!(phone("call me").is_err());
    }

    #[test]
    fn ip_addresses_become_canonical() {
        assert_eq!(ip("192.0.2.7").unwrap().to_string(), "192.0.2.7");
        assert_eq!(ip("::ffff:192.0.2.7").unwrap().to_string(), "192.0.2.7");
        assert_eq!(
            ip("2001:DB8:0:0:0:0:0:1").unwrap().to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            ip(" 2001:db8::a:0:0:1 ").unwrap().to_string(),
            "2001:db8::a:0:0:1"
        );
        assert!(ip("192.0.2.256").is_err());
        assert!(ip("192.0.2.7:443").is_err());
        assert!(ip("").is_err());
    }

    /// Found by the fuzz target import_jsonl's round-trip check: `0000-01-01T00:30:00+01:00` was
    /// kept as a time in the year -1, which no RFC 3339 output can carry, so the exported row
    /// could not be imported again.
    #[test]
    fn times_outside_rfc3339_years_in_utc_are_refused() {
        for input in ["0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"] {
            assert_eq!(
                time(input),
                Err("must fall within the years 0000 to 9999 in UTC"),
                "{input}"
            );
        }
        for input in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let micros = time(input).unwrap();
            let written = from_micros(micros).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            assert_eq!(time(&written), Ok(micros), "{input} -> {written}");
        }
    }

    #[test]
    fn ports_times_and_usernames() {
        assert_eq!(port("51234").unwrap(), 51234);
        assert!(port("0").is_err() && port("65536").is_err() && port("-1").is_err());
        assert_eq!(
            time("2026-03-03T11:14:03.5+01:00").unwrap(),
            time("2026-03-03T10:14:03.500Z").unwrap()
        );
        assert!(time("2026-03-03 10:14:03").is_err(), "no zone: ambiguous");
        assert_eq!(
            from_micros(time("2026-03-03T10:14:03Z").unwrap()).to_rfc3339(),
            "2026-03-03T10:14:03+00:00"
        );
        assert_eq!(username("  Alice_01 ").unwrap(), "alice_01");
        assert!(
            username("a b").is_err() && username("").is_err() && username(&"x".repeat(65)).is_err()
        );
    }
}
