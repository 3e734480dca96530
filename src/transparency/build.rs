//! The report builder: audit leaves in, published tables out. Pure (no database, no clock, no
//! file), streaming (one pass; it keeps one small record per request of the period, never the
//! entries), and deterministic, so that `writ transparency verify` recomputes the same bytes.
//!
//! # What is counted
//!
//! - A **request** is an `order.received` entry logged within the period (its `at`), whatever
//!   its channel (API, HI-1, entered by staff). Amendments are the same request.
//! - Its **outcome** is its state at the end of the period, from the entries about it logged
//!   before then: `order.released` with at least one record: *some data produced*; with none:
//!   *no data held*; `order.refused`: *refused*; `order.withdrawn` (or a lapsed ex-post
//!   validation before any answer): *withdrawn*; nothing of these: *open at period end*.
//!   `order.narrowed` marks it *narrowed* besides its outcome.
//! - **Preservation** requests (action `preserve`) are counted apart, never in the totals;
//!   **emergency** requests apart from the others, and in the totals; requests under a
//!   configured category only in that category's banded table.
//! - **Time to respond**: from the true time of receipt to the first release or refusal; on time
//!   when that is at or before the deadline computed at receipt.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::band;
use super::{Period, Table};
use crate::audit::RefValue;
use crate::audit::entry::Leaf;
use crate::settings::TransparencySettings;

/// A request's state at the end of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Produced,
    NoneHeld,
    Refused,
    Withdrawn,
}

/// What the report keeps of one request (no target, no person: counts and codes).
#[derive(Debug, Clone)]
struct Request {
    country: Option<String>,
    kind: Option<String>,
    instrument: String,
    legal_basis: Option<String>,
    preserve: bool,
    emergency: bool,
    identifiers: Option<u64>,
    accounts: Option<u64>,
    received: Option<DateTime<Utc>>,
    month: String,
    deadline: Option<DateTime<Utc>>,
    gag: Option<bool>,
    gag_until: Option<String>,
    outcome: Outcome,
    answered: Option<DateTime<Utc>>,
    narrowed: bool,
    notified: bool,
    category: Option<usize>,
    /// Whether the entry carried the report's fields (written after they were added).
    complete: bool,
}

impl Request {
    /// Sets the outcome unless one is set already (the first closing entry decides).
    fn close(&mut self, outcome: Outcome) {
        if self.outcome == Outcome::Open {
            self.outcome = outcome;
        }
    }
}

/// Counts of one row of the per-country tables.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    requests: u64,
    accounts: u64,
    identifiers: u64,
    produced: u64,
    none_held: u64,
    refused: u64,
    narrowed: u64,
    withdrawn: u64,
    open: u64,
}

impl Counts {
    fn add(&mut self, r: &Request) {
        self.requests += 1;
        self.accounts += r.accounts.unwrap_or(0);
        self.identifiers += r.identifiers.unwrap_or(0);
        match r.outcome {
            Outcome::Produced => self.produced += 1,
            Outcome::NoneHeld => self.none_held += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Withdrawn => self.withdrawn += 1,
            Outcome::Open => self.open += 1,
        }
        if r.narrowed {
            self.narrowed += 1;
        }
    }

    fn merge(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.accounts += o.accounts;
        self.identifiers += o.identifiers;
        self.produced += o.produced;
        self.none_held += o.none_held;
        self.refused += o.refused;
        self.narrowed += o.narrowed;
        self.withdrawn += o.withdrawn;
        self.open += o.open;
    }

    fn cells(&self, rules: &TransparencySettings) -> Vec<String> {
        [
            self.requests,
            self.accounts,
            self.identifiers,
            self.produced,
            self.none_held,
            self.refused,
            self.narrowed,
            self.withdrawn,
            self.open,
        ]
        .iter()
        .map(|v| band::count(*v, rules))
        .collect()
    }
}

/// Column names of the per-country tables, after the key columns.
const COUNT_COLUMNS: [&str; 9] = [
    "requests",
    "accounts specified",
    "identifiers specified",
    "some data produced",
    "no data held",
    "refused",
    "narrowed",
    "withdrawn",
    "open at period end",
];

/// The `refs` of an `order.received` entry that the report reads (besides the entry's time and
/// order): `legal_basis`, `action` and `deadline_at` are absent when the instrument is unknown
/// or sets no deadline, the rest are always written (`orders::intake`).
pub const RECEIVED_FIELDS: [&str; 11] = [
    "instrument",
    "emergency",
    "issuer_country",
    "issuer_kind",
    "identifiers",
    "accounts",
    "received_at",
    "gag",
    "legal_basis",
    "action",
    "deadline_at",
];

/// Published in place of a field the log did not carry when the request was logged.
pub const NOT_RECORDED: &str = "not recorded";
/// The row countries below the minimum are merged into.
pub const OTHER: &str = "other";

/// Builds a report from leaves pushed in log order.
#[derive(Debug)]
pub struct Builder {
    period: Period,
    start: String,
    end: String,
    rules: TransparencySettings,
    generated_at: DateTime<Utc>,
    requests: HashMap<String, Request>,
    /// Instrument id -> category index.
    categories: HashMap<String, usize>,
    entries: u64,
}

fn text<'a>(leaf: &'a Leaf, key: &str) -> Option<&'a str> {
    match leaf.refs.get(key) {
        Some(RefValue::Text(t)) => Some(t.as_str()),
        _ => None,
    }
}

fn number(leaf: &Leaf, key: &str) -> Option<u64> {
    match leaf.refs.get(key) {
        Some(RefValue::Count(n)) => Some(*n),
        _ => None,
    }
}

fn flag(leaf: &Leaf, key: &str) -> Option<bool> {
    match leaf.refs.get(key) {
        Some(RefValue::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Builder {
    /// A builder for `period` under `rules`; `generated_at` decides which delayed categories
    /// may be published (it is part of the report, so a reader recomputes the same).
    pub fn new(period: Period, rules: TransparencySettings, generated_at: DateTime<Utc>) -> Self {
        let categories = rules
            .categories
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.instruments.iter().map(move |inst| (inst.clone(), i)))
            .collect();
        Self {
            start: crate::audit::entry::format_time(period.start()),
            end: crate::audit::entry::format_time(period.end()),
            period,
            rules,
            generated_at,
            requests: HashMap::new(),
            categories,
            entries: 0,
        }
    }

    /// Takes the next entry of the log (in `seq` order).
    pub fn push(&mut self, leaf: &Leaf) {
        self.entries += 1;
        // Times in leaves have one fixed format (entry.rs), so text order is time order.
        if leaf.at < self.start || leaf.at >= self.end {
            return;
        }
        let Some(order) = &leaf.order else {
            return;
        };
        if leaf.event == crate::audit::Event::OrderReceived.as_str() {
            self.received(order, leaf);
            return;
        }
        let Some(r) = self.requests.get_mut(order) else {
            return;
        };
        let at = || time(&leaf.at);
        match leaf.event.as_str() {
            e if e == crate::audit::Event::OrderReleased.as_str() => {
                let records: u64 = leaf
                    .refs
                    .iter()
                    .filter(|(k, _)| k.starts_with("records_"))
                    .filter_map(|(_, v)| match v {
                        RefValue::Count(n) => Some(*n),
                        _ => None,
                    })
                    .sum();
                if r.outcome == Outcome::Open {
                    r.outcome = if records > 0 {
                        Outcome::Produced
                    } else {
                        Outcome::NoneHeld
                    };
                }
                r.answered = r.answered.or_else(at);
            }
            e if e == crate::audit::Event::OrderRefused.as_str() => {
                if r.outcome == Outcome::Open {
                    r.outcome = Outcome::Refused;
                }
                r.answered = r.answered.or_else(at);
            }
            e if e == crate::audit::Event::OrderWithdrawn.as_str() => {
                r.close(Outcome::Withdrawn);
            }
            e if e == crate::audit::Event::OrderExPostValidation.as_str() => {
                // A lapsed validation withdraws an order not yet answered.
                let lapsed = text(leaf, "outcome") == Some("lapsed");
                r.close(if lapsed {
                    Outcome::Withdrawn
                } else {
                    Outcome::Open
                });
            }
            e if e == crate::audit::Event::OrderNarrowed.as_str() => r.narrowed = true,
            e if e == crate::audit::Event::OrderUserNotified.as_str() => r.notified = true,
            _ => {}
        }
    }

    fn received(&mut self, order: &str, leaf: &Leaf) {
        let instrument = text(leaf, "instrument").unwrap_or(NOT_RECORDED).to_owned();
        let category = self.categories.get(&instrument).copied();
        let received = text(leaf, "received_at")
            .and_then(time)
            .or_else(|| time(&leaf.at));
        let r = Request {
            country: text(leaf, "issuer_country").map(str::to_owned),
            kind: text(leaf, "issuer_kind").map(str::to_owned),
            legal_basis: text(leaf, "legal_basis").map(str::to_owned),
            preserve: text(leaf, "action") == Some("preserve"),
            emergency: flag(leaf, "emergency").unwrap_or(false),
            identifiers: number(leaf, "identifiers"),
            accounts: number(leaf, "accounts"),
            month: leaf.at.get(..7).unwrap_or_default().to_owned(),
            received,
            deadline: text(leaf, "deadline_at").and_then(time),
            gag: flag(leaf, "gag"),
            gag_until: text(leaf, "gag_until").map(str::to_owned),
            outcome: Outcome::Open,
            answered: None,
            narrowed: false,
            notified: false,
            category,
            complete: text(leaf, "issuer_country").is_some(),
            instrument,
        };
        self.requests.insert(order.to_owned(), r);
    }

    /// Entries pushed so far (in the range, whatever their date).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The published tables and the limitations to state beside them.
    pub fn finish(self) -> (Vec<Table>, Vec<String>) {
        let rules = &self.rules;
        let mut limitations = Vec::new();
        let incomplete = self.requests.values().filter(|r| !r.complete).count() as u64;
        if incomplete > 0 {
            limitations.push(format!(
                "{} request(s) of the period were logged before audit entries carried what this \
                 report counts: their issuing country, authority kind and legal basis are shown \
                 as \"{NOT_RECORDED}\"; their accounts, identifiers, deadline and non-disclosure \
                 order are not recorded, so they are left out of those numbers and of the time \
                 to respond; whether they asked to preserve rather than produce is not recorded, \
                 so they are counted as requests to produce.",
                band::count(incomplete, rules)
            ));
        }

        let mut main: BTreeMap<(String, String), Counts> = BTreeMap::new();
        let mut emergency: BTreeMap<String, Counts> = BTreeMap::new();
        let mut preservation: BTreeMap<String, Counts> = BTreeMap::new();
        let mut instruments: BTreeMap<(String, String), Counts> = BTreeMap::new();
        let mut months: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut category_counts = vec![Counts::default(); rules.categories.len()];
        let mut totals = Counts::default();
        let mut emergency_total = Counts::default();
        let mut preservation_total = Counts::default();
        let mut durations_all: Vec<i64> = Vec::new();
        let mut durations_emergency: Vec<i64> = Vec::new();
        let (mut with_deadline, mut on_time, mut without_deadline) = (0u64, 0u64, 0u64);
        let (mut e_with_deadline, mut e_on_time, mut e_without_deadline) = (0u64, 0u64, 0u64);
        let (mut gags, mut gags_in_force, mut notified) = (0u64, 0u64, 0u64);
        let end_text = crate::audit::entry::format_time(self.period.end());
        for m in self.period.months() {
            months.insert(m, (0, 0));
        }

        for r in self.requests.values() {
            if let Some(c) = r.category {
                category_counts[c].add(r);
                continue;
            }
            let country = r.country.clone().unwrap_or_else(|| NOT_RECORDED.into());
            let kind = r.kind.clone().unwrap_or_else(|| NOT_RECORDED.into());
            let basis = r.legal_basis.clone().unwrap_or_else(|| NOT_RECORDED.into());
            instruments
                .entry((r.instrument.clone(), basis))
                .or_default()
                .add(r);
            if r.gag == Some(true) {
                gags += 1;
                let in_force = match r.gag_until.as_deref() {
                    Some("open_ended") | None => true,
                    Some(until) => until >= end_text.as_str(),
                };
                if in_force {
                    gags_in_force += 1;
                }
            }
            if r.notified {
                notified += 1;
            }
            let month = months.entry(r.month.clone()).or_default();
            if r.preserve {
                preservation.entry(country).or_default().add(r);
                preservation_total.add(r);
                month.1 += 1;
                continue;
            }
            month.0 += 1;
            totals.add(r);
            if r.emergency {
                emergency.entry(country).or_default().add(r);
                emergency_total.add(r);
            } else {
                main.entry((country, kind)).or_default().add(r);
            }
            if !r.complete {
                continue;
            }
            if let (Some(received), Some(answered)) = (r.received, r.answered) {
                let secs = (answered - received).num_seconds();
                durations_all.push(secs);
                if r.emergency {
                    durations_emergency.push(secs);
                }
                match r.deadline {
                    Some(d) => {
                        with_deadline += 1;
                        if r.emergency {
                            e_with_deadline += 1;
                        }
                        if answered <= d {
                            on_time += 1;
                            if r.emergency {
                                e_on_time += 1;
                            }
                        }
                    }
                    None => {
                        without_deadline += 1;
                        if r.emergency {
                            e_without_deadline += 1;
                        }
                    }
                }
            }
        }

        let mut tables = Vec::new();
        let mut summary_rows = vec![
            ("requests received (preservation apart)", totals.requests),
            ("of which emergency", emergency_total.requests),
            ("accounts specified", totals.accounts),
            ("identifiers specified", totals.identifiers),
            ("some data produced", totals.produced),
            ("no data held", totals.none_held),
            ("refused", totals.refused),
            ("narrowed", totals.narrowed),
            ("withdrawn", totals.withdrawn),
            ("open at period end", totals.open),
            (
                "preservation requests (not in the totals)",
                preservation_total.requests,
            ),
        ]
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), band::count(v, rules)])
        .collect::<Vec<_>>();
        summary_rows.push(vec![
            "user notices given".into(),
            band::count(notified, rules),
        ]);
        tables.push(Table::new(
            "summary",
            "Summary",
            &["measure", "value"],
            summary_rows,
        ));

        let merged = merge_countries(
            main,
            rules.country_minimum,
            |(c, _)| c.clone(),
            |(_, k), c| (c, k.clone()),
        );
        let mut cols = vec!["country", "issuing authority kind"];
        cols.extend(COUNT_COLUMNS);
        tables.push(Table::new(
            "by_country",
            "Requests by country and issuing authority (emergency and preservation apart)",
            &cols,
            sorted_rows(merged, |(c, k)| vec![c.clone(), k.clone()], rules),
        ));

        let mut cols = vec!["country"];
        cols.extend(COUNT_COLUMNS);
        let merged = merge_countries(emergency, rules.country_minimum, String::clone, |_, c| c);
        tables.push(Table::new(
            "emergency",
            "Emergency requests by country",
            &cols,
            sorted_rows(merged, |c| vec![c.clone()], rules),
        ));
        let merged = merge_countries(preservation, rules.country_minimum, String::clone, |_, c| c);
        tables.push(Table::new(
            "preservation",
            "Preservation requests by country (not in the totals)",
            &cols,
            sorted_rows(merged, |c| vec![c.clone()], rules),
        ));

        let mut cols = vec!["instrument", "legal basis"];
        cols.extend(COUNT_COLUMNS);
        tables.push(Table::new(
            "by_instrument",
            "Requests by instrument and legal basis (preservation and emergency included)",
            &cols,
            instruments
                .iter()
                .map(|((i, b), c)| {
                    let mut row = vec![i.clone(), b.clone()];
                    row.extend(c.cells(rules));
                    row
                })
                .collect(),
        ));

        durations_all.sort_unstable();
        durations_emergency.sort_unstable();
        let time_row = |name: &str, d: &[i64], with: u64, on: u64, without: u64| {
            vec![
                name.to_owned(),
                band::count(d.len() as u64, rules),
                band::hours_percentile(d, 50, rules),
                band::hours_percentile(d, 90, rules),
                band::share(on, with, rules),
                band::count(without, rules),
            ]
        };
        tables.push(Table::new(
            "response_time",
            "Time to respond (requests to produce answered by the end of the period)",
            &[
                "requests",
                "answered",
                "median hours to respond",
                "90th percentile hours",
                "answered by the deadline",
                "answered, no deadline applied",
            ],
            vec![
                time_row(
                    "all requests to produce",
                    &durations_all,
                    with_deadline,
                    on_time,
                    without_deadline,
                ),
                time_row(
                    "emergency requests",
                    &durations_emergency,
                    e_with_deadline,
                    e_on_time,
                    e_without_deadline,
                ),
            ],
        ));

        tables.push(Table::new(
            "notices",
            "User notices and non-disclosure orders",
            &["measure", "value"],
            vec![
                vec![
                    "requests with a non-disclosure order".into(),
                    band::count(gags, rules),
                ],
                vec![
                    "non-disclosure orders still in force at period end".into(),
                    band::count(gags_in_force, rules),
                ],
                vec!["users notified".into(), band::count(notified, rules)],
            ],
        ));

        tables.push(Table::new(
            "over_time",
            "Requests by month",
            &["month", "requests", "preservation requests"],
            months
                .into_iter()
                .map(|(m, (n, p))| vec![m, band::count(n, rules), band::count(p, rules)])
                .collect(),
        ));

        for (i, c) in rules.categories.iter().enumerate() {
            let counts = category_counts[i];
            let publish_at = self.period.end() + chrono::Duration::days(i64::from(c.delay_days));
            let rows = if self.generated_at < publish_at {
                let when = publish_at.format("%Y-%m-%d").to_string();
                ["requests", "accounts specified", "identifiers specified"]
                    .iter()
                    .map(|m| vec![(*m).to_owned(), format!("withheld until {when}")])
                    .collect()
            } else {
                [
                    ("requests", counts.requests),
                    ("accounts specified", counts.accounts),
                    ("identifiers specified", counts.identifiers),
                ]
                .iter()
                .map(|(m, v)| vec![(*m).to_owned(), band::banded(*v, c.band, rules)])
                .collect()
            };
            tables.push(Table::new(
                &format!("category_{}", c.name),
                &format!("Requests reported apart: {}", c.name),
                &["measure", "value"],
                rows,
            ));
        }
        (tables, limitations)
    }
}

/// Moves every country with fewer requests than `minimum` (summed over its rows) into `other`.
fn merge_countries<K: Ord + Clone>(
    rows: BTreeMap<K, Counts>,
    minimum: u64,
    country: impl Fn(&K) -> String,
    rekey: impl Fn(&K, String) -> K,
) -> BTreeMap<K, Counts> {
    let mut per_country: BTreeMap<String, u64> = BTreeMap::new();
    for (k, c) in &rows {
        *per_country.entry(country(k)).or_default() += c.requests;
    }
    let mut out: BTreeMap<K, Counts> = BTreeMap::new();
    for (k, c) in rows {
        let name = country(&k);
        let small = per_country.get(&name).copied().unwrap_or(0) < minimum;
        let key = if small && name != NOT_RECORDED {
            rekey(&k, OTHER.to_owned())
        } else {
            k
        };
        out.entry(key).or_default().merge(&c);
    }
    out
}

/// Rows in key order, with `other` and `not recorded` last.
fn sorted_rows<K: Ord>(
    rows: BTreeMap<K, Counts>,
    keys: impl Fn(&K) -> Vec<String>,
    rules: &TransparencySettings,
) -> Vec<Vec<String>> {
    let mut out: Vec<(u8, Vec<String>)> = rows
        .iter()
        .map(|(k, c)| {
            let mut row = keys(k);
            let rank = match row.first().map(String::as_str) {
                Some(OTHER) => 1,
                Some(NOT_RECORDED) => 2,
                _ => 0,
            };
            row.extend(c.cells(rules));
            (rank, row)
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, r)| r).collect()
}
