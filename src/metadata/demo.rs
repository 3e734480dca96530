//! `writ demo seed`: deterministic synthetic data for demos, tests and benchmarks.
//!
//! Only documentation address ranges (RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24;
//! RFC 3849: 2001:db8::/32) and numbers reserved for fiction: NANP 555-0100 to 555-0199 in
//! twenty US area codes. (Ofcom's and ARCEP's drama ranges would do too, but the numbering-plan
//! data marks them unassigned, so they fail the validation every imported number passes.)
//! The same seed gives the same data.
//!
//! What it makes, on purpose:
//! - recycled numbers: a pool of 2,000 numbers, so with more accounts each number passes from
//!   holder to holder, in intervals that never overlap;
//! - shared addresses behind "carrier-grade NAT": most IPv4 events use a few hundred addresses
//!   with different ports, so an address without a port matches many accounts;
//! - IPv6 events in 2001:db8::/32.

use chrono::Utc;

use super::MetadataError;
use super::records::{AccountRow, IdentifierRow, IpEventRow};
use super::store::{self, BatchOutcome};
use crate::audit::{self, Actor, NewEntry};
use crate::db::{Db, write_tx};

/// Start of the synthetic timeline: 2024-01-01T00:00:00Z, in microseconds.
const BASE: i64 = 1_704_067_200_000_000;
const DAY: i64 = 24 * 3600 * 1_000_000;
/// How far apart successive holders of a recycled number start.
const GENERATION: i64 = 120 * DAY;
/// Area codes whose 555-01XX numbers make the fiction pool.
const AREA_CODES: [u16; 20] = [
    202, 206, 212, 213, 303, 305, 312, 404, 415, 503, 512, 602, 615, 617, 702, 704, 713, 718, 808,
    919,
];
/// Numbers in the fiction pool.
pub const PHONE_POOL: u64 = AREA_CODES.len() as u64 * 100;

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSpec {
    /// Accounts.
    pub accounts: u64,
    /// IP events per account.
    pub events_per_account: u64,
    /// Seed: the same seed makes the same data.
    pub seed: u64,
}

/// What was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// Accounts stored (new or already there).
    pub accounts: u64,
    /// IP events newly stored.
    pub events: u64,
}

/// SplitMix64: tiny, fast and fully specified, so the data is the same on every platform and
/// every version (a general-purpose RNG crate makes no such promise across versions).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn rand(seed: u64, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed) ^ a) ^ b)
}

fn external_id(i: u64) -> String {
    format!("demo-{i:08}")
}

/// The fictional number in pool slot `slot`.
pub fn phone_number(slot: u64) -> String {
    let slot = slot % PHONE_POOL;
    let area = AREA_CODES[usize::try_from(slot / 100).unwrap_or(0) % AREA_CODES.len()];
    format!("+1{area}5550{:03}", 100 + slot % 100)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Account `i`'s creation time: one generation per pass through the number pool, so the next
/// holder of the same number always starts after the previous one.
fn created_at(seed: u64, i: u64) -> i64 {
    BASE + to_i64(i / PHONE_POOL) * GENERATION
        + to_i64(rand(seed, i, 1) % 30) * DAY
        + to_i64(rand(seed, i, 2) % 86_400) * 1_000_000
}

fn ipv4(seed: u64, a: u64, b: u64) -> String {
    const NETS: [&str; 3] = ["192.0.2", "198.51.100", "203.0.113"];
    let r = rand(seed, a, b);
    format!("{}.{}", NETS[(r % 3) as usize], 1 + (r >> 8) % 254)
}

fn account(seed: u64, i: u64, total: u64) -> AccountRow {
    let created = created_at(seed, i);
    let next_holder = i + PHONE_POOL;
    let phone_to = (next_holder < total).then(|| created_at(seed, next_holder));
    let status = match rand(seed, i, 3) % 50 {
        0 => "suspended",
        1 => "deleted",
        _ => "active",
    };
    AccountRow {
        external_id: external_id(i),
        status: status.to_owned(),
        created_at: created,
        registration_ip: Some(ipv4(seed, i, 4)),
        identifiers: vec![
            IdentifierRow {
                kind: "phone",
                value: phone_number(i % PHONE_POOL),
                valid_from: created,
                valid_to: phone_to,
            },
            IdentifierRow {
                kind: "username",
                value: format!("user{i}"),
                valid_from: created,
                valid_to: None,
            },
        ],
    }
}

fn events(seed: u64, i: u64, per_account: u64) -> impl Iterator<Item = IpEventRow> {
    let created = created_at(seed, i);
    (0..per_account).map(move |k| {
        let r = rand(seed, i, 1000 + k);
        let at = if k == 0 {
            created
        } else {
            created + to_i64(r % (365 * 86_400)) * 1_000_000
        };
        let ip = if r.is_multiple_of(5) {
            format!(
                "2001:db8:{:x}:{:x}::{:x}",
                (i >> 16) & 0xffff,
                i & 0xffff,
                1 + (r >> 20) % 0xfffe
            )
        } else {
            ipv4(seed, i % 97, k % 7) // few addresses, many accounts: carrier-grade NAT
        };
        let port = if r.is_multiple_of(11) {
            0
        } else {
            1024 + to_i64((r >> 32) % 64_000) as i32
        };
        let kind = match k {
            0 => "registration",
            _ if r.is_multiple_of(3) => "session_start",
            _ => "login",
        };
        IpEventRow {
            external_id: external_id(i),
            at,
            ip,
            port,
            kind: kind.to_owned(),
        }
    })
}

/// Seeds the store; `progress` gets the accounts done so far. Re-running with the same spec
/// adds nothing.
pub fn seed(db: &Db, spec: DemoSpec, progress: &dyn Fn(u64)) -> Result<DemoSummary, MetadataError> {
    const ACCOUNTS_PER_BATCH: u64 = 500;
    let actor = Actor::system();
    let mut summary = DemoSummary::default();
    let mut conn = db.conn()?;
    let mut start = 0;
    while start < spec.accounts {
        let end = (start + ACCOUNTS_PER_BATCH).min(spec.accounts);
        let accounts: Vec<(u64, AccountRow)> = (start..end)
            .map(|i| (i, account(spec.seed, i, spec.accounts)))
            .collect();
        let events: Vec<(u64, IpEventRow)> = (start..end)
            .flat_map(|i| events(spec.seed, i, spec.events_per_account).map(move |e| (i, e)))
            .collect();
        let (a, e) = write_tx(
            &mut conn,
            |c| -> Result<(BatchOutcome, BatchOutcome), MetadataError> {
                let a = store::store_accounts(c, &accounts)?;
                let e = store::store_ip_events(c, &events, &mut store::AccountIds::default())?;
                let entry = NewEntry::new(actor.clone(), audit::Event::MetadataDemoSeeded)
                    .reference("seed", spec.seed)
                    .reference("first_account", start)
                    .reference("accounts", end - start)
                    .reference("events_new", e.new);
                audit::append(c, &entry, Utc::now())?;
                Ok((a, e))
            },
        )?;
        if let Some((_, reason)) = a.rejected.first().or(e.rejected.first()) {
            return Err(MetadataError::Invalid(format!(
                "demo data was refused: {reason}"
            )));
        }
        summary.accounts += a.new + a.changed + a.unchanged;
        summary.events += e.new;
        start = end;
        progress(start);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::normalize;

    #[test]
    fn fiction_numbers_are_valid_and_distinct() {
        for slot in 0..PHONE_POOL {
            let n = phone_number(slot);
            assert_eq!(normalize::phone(&n).unwrap(), n, "slot {slot}");
        }
        let all: std::collections::BTreeSet<String> = (0..PHONE_POOL).map(phone_number).collect();
        assert_eq!(all.len() as u64, PHONE_POOL);
    }

    #[test]
    fn generation_is_deterministic_and_recycled_numbers_do_not_overlap() {
        let a = account(7, 3, 30_000);
        assert_eq!(a, account(7, 3, 30_000));
        assert_ne!(a, account(8, 3, 30_000));
        let next = account(7, 3 + PHONE_POOL, 30_000);
        assert_eq!(
            a.identifiers[0].value, next.identifiers[0].value,
            "the number is recycled"
        );
        assert_eq!(
            a.identifiers[0].valid_to,
            Some(next.identifiers[0].valid_from)
        );
        let ev: Vec<IpEventRow> = events(7, 3, 50).collect();
        assert_eq!(ev.len(), 50);
        assert_eq!(ev[0].kind, "registration");
        for e in &ev {
            let ip = normalize::ip(&e.ip).unwrap();
            let doc = match ip {
                std::net::IpAddr::V4(v4) => ["192.0.2.", "198.51.100.", "203.0.113."]
                    .iter()
                    .any(|p| v4.to_string().starts_with(p)),
                std::net::IpAddr::V6(v6) => {
                    v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0db8
                }
            };
            assert!(doc, "{ip} is a documentation address");
        }
    }
}
