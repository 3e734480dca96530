//! Gathering the records of a release from the metadata store: for each target of the scope,
//! the matched accounts (audited lookups, under the order), and for each category only the
//! fields the scope releases, inside the order's window.

use chrono::{DateTime, Duration, Utc};

use super::package::Table;
use crate::audit::Actor;
use crate::db::DbConn;
use crate::metadata::MetadataError;
use crate::metadata::lookup::{self, AccountMatch, LookupContext, Window};
use crate::metadata::normalize;
use crate::policy::{CATALOGUE, Category, Decision, FieldId, Target};

/// Seconds either side of an IP target's moment that count as "that access".
pub const IP_TOLERANCE_SECS: u32 = 1;

fn time(micros: i64) -> String {
    normalize::from_micros(micros).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The period lookups cover: the scope's window, or without one the ten years up to `now`.
fn window_of(scope: &Decision, now: DateTime<Utc>) -> Result<Window, MetadataError> {
    match scope.time_window {
        Some(w) => Window::new(w.from.timestamp_micros(), w.to.timestamp_micros()),
        None => Window::new(
            (now - Duration::days(3650)).timestamp_micros(),
            now.timestamp_micros() + 1,
        ),
    }
}

/// The fields `scope` releases in `category`, in catalogue order.
pub fn released(scope: &Decision, category: Category) -> Vec<FieldId> {
    CATALOGUE
        .iter()
        .map(|f| f.id)
        .filter(|f| {
            scope
                .field_status(category, *f)
                .is_some_and(crate::policy::FieldStatus::releases)
        })
        .collect()
}

fn describe(target: &Target) -> String {
    match target {
        Target::UserId(v) => format!("user_id:{v}"),
        Target::Username(v) => format!("username:{v}"),
        Target::PhoneNumber(v) => format!("phone_number:{v}"),
        Target::Ip(ip) => match ip.port {
            Some(p) => format!("ip:{}:{p}@{}", ip.address, ip.timestamp.to_rfc3339()),
            None => format!("ip:{}@{}", ip.address, ip.timestamp.to_rfc3339()),
        },
    }
}

fn subscriber_value(account: &AccountMatch, field: FieldId) -> String {
    let identifiers = |kind: &str| {
        account
            .identifiers
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| i.value.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    match field {
        FieldId::UserId => account.external_id.clone(),
        FieldId::Username => identifiers("username"),
        FieldId::PhoneNumber => identifiers("phone"),
        FieldId::AccountCreatedAt => time(account.created_at),
        FieldId::AccountStatus => account.status.clone(),
        FieldId::RegistrationIp => account.registration_ip.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The records for `scope`, looked up now under `order_id` by `actor`.
pub fn gather(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    scope: &Decision,
    now: DateTime<Utc>,
) -> Result<Vec<Table>, MetadataError> {
    let ctx = LookupContext {
        actor: actor.clone(),
        order_id: order_id.to_owned(),
    };
    let window = window_of(scope, now)?;
    let wanted: Vec<Category> = [
        Category::Subscriber,
        Category::Identification,
        Category::IpHistory,
    ]
    .into_iter()
    .filter(|c| !released(scope, *c).is_empty())
    .collect();
    let mut tables: Vec<Table> = wanted
        .iter()
        .map(|c| Table {
            category: *c,
            columns: std::iter::once("target".to_owned())
                .chain(released(scope, *c).iter().map(|f| f.as_str().to_owned()))
                .collect(),
            rows: Vec::new(),
        })
        .collect();
    for target in &scope.targets {
        let kind = target.kind();
        // A grant may cover only some kinds of target (`FieldDecision::target_kinds`): a target
        // no released field covers is not looked up at all.
        let covered =
            |category: Category, field: &FieldId| scope.releases_for(category, *field, kind);
        if !wanted
            .iter()
            .any(|c| released(scope, *c).iter().any(|f| covered(*c, f)))
        {
            continue;
        }
        let label = describe(target);
        // Accounts matched by the target, and for an IP target the accesses themselves.
        let (accounts, accesses): (Vec<AccountMatch>, Vec<lookup::IpEvent>) = match target {
            Target::UserId(id) => (
                lookup::by_user_id(conn, &ctx, id, window)?
                    .into_iter()
                    .collect(),
                Vec::new(),
            ),
            Target::Username(u) => (lookup::by_username(conn, &ctx, u, window)?, Vec::new()),
            Target::PhoneNumber(p) => (lookup::by_phone(conn, &ctx, p, window)?, Vec::new()),
            Target::Ip(ip) => {
                let found = lookup::by_ip(
                    conn,
                    &ctx,
                    &ip.address.to_string(),
                    ip.port,
                    ip.timestamp.timestamp_micros(),
                    IP_TOLERANCE_SECS,
                )?;
                let mut accounts = Vec::new();
                let mut events = Vec::new();
                for (account, evs) in found.accounts {
                    accounts.push(account);
                    events.extend(evs);
                }
                (accounts, events)
            }
        };
        for table in &mut tables {
            let fields = released(scope, table.category);
            // Cells of fields whose grant does not cover this kind of target stay empty; a table
            // with no such field gets no rows from this target.
            let fields: Vec<Option<FieldId>> = fields
                .iter()
                .map(|f| covered(table.category, f).then_some(*f))
                .collect();
            if fields.iter().all(Option::is_none) {
                continue;
            }
            match table.category {
                Category::Subscriber => {
                    for a in &accounts {
                        let mut row = vec![label.clone()];
                        row.extend(
                            fields
                                .iter()
                                .map(|f| f.map(|f| subscriber_value(a, f)).unwrap_or_default()),
                        );
                        table.rows.push(row);
                    }
                }
                Category::Identification => {
                    for e in &accesses {
                        let mut row = vec![label.clone()];
                        row.extend(fields.iter().map(|f| match f {
                            Some(FieldId::AccessIp) => e.ip.clone(),
                            Some(FieldId::AccessPort) if e.port > 0 => e.port.to_string(),
                            Some(FieldId::AccessTime) => time(e.at),
                            _ => String::new(),
                        }));
                        table.rows.push(row);
                    }
                }
                Category::IpHistory => {
                    for a in &accounts {
                        let history = lookup::ip_history(conn, &ctx, a.account_id, window)?;
                        for e in history.events {
                            let mut row = vec![label.clone()];
                            row.extend(fields.iter().map(|f| match f {
                                Some(FieldId::IpEventIp) => e.ip.clone(),
                                Some(FieldId::IpEventPort) if e.port > 0 => e.port.to_string(),
                                Some(FieldId::IpEventTime) => time(e.at),
                                Some(FieldId::IpEventKind) => e.kind.clone(),
                                _ => String::new(),
                            }));
                            table.rows.push(row);
                        }
                    }
                }
                Category::Content => {}
            }
        }
    }
    Ok(tables)
}

/// The accounts one target matches, as the order page shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetMatches {
    /// The target as given.
    pub target: String,
    /// The provider user ids matched.
    pub accounts: Vec<String>,
    /// Why a person must decide which match is meant (an ambiguous reverse-IP lookup).
    pub ambiguity: Option<String>,
}

/// The accounts each target of `scope` matches inside its window (audited lookups, under the
/// order), with ambiguous reverse-IP matches flagged.
pub fn matches(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    scope: &Decision,
    now: DateTime<Utc>,
) -> Result<Vec<TargetMatches>, MetadataError> {
    let ctx = LookupContext {
        actor: actor.clone(),
        order_id: order_id.to_owned(),
    };
    let window = window_of(scope, now)?;
    let mut out = Vec::new();
    for target in &scope.targets {
        let ids = |v: Vec<AccountMatch>| v.into_iter().map(|a| a.external_id).collect::<Vec<_>>();
        let (accounts, ambiguity) = match target {
            Target::UserId(id) => (
                ids(lookup::by_user_id(conn, &ctx, id, window)?
                    .into_iter()
                    .collect()),
                None,
            ),
            Target::Username(u) => (ids(lookup::by_username(conn, &ctx, u, window)?), None),
            Target::PhoneNumber(p) => (ids(lookup::by_phone(conn, &ctx, p, window)?), None),
            Target::Ip(ip) => {
                let found = lookup::by_ip(
                    conn,
                    &ctx,
                    &ip.address.to_string(),
                    ip.port,
                    ip.timestamp.timestamp_micros(),
                    IP_TOLERANCE_SECS,
                )?;
                let mut why = Vec::new();
                if found.multiple_accounts {
                    why.push("several accounts used this address at that moment");
                }
                if found.ipv4_without_port {
                    why.push("an IPv4 address without a port can be shared behind NAT");
                }
                if found.truncated {
                    why.push("too many events: narrow the window");
                }
                let accounts: Vec<String> = found
                    .accounts
                    .into_iter()
                    .map(|(a, _)| a.external_id)
                    .collect();
                // With no match there is nothing to choose between: no ambiguity to resolve.
                let ambiguous = !why.is_empty() && !accounts.is_empty();
                (accounts, ambiguous.then(|| why.join("; ")))
            }
        };
        out.push(TargetMatches {
            target: describe(target),
            accounts,
            ambiguity,
        });
    }
    Ok(out)
}
