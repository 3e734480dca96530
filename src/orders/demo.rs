//! A demo workspace, so that `writ serve --demo` opens on a live queue: demo authorities with
//! keys, staff users, and a spread of orders across instruments, deadlines and states, all
//! made through the same intake code as real ones. Passwords and private keys go to files
//! (mode 0600) in a folder of the operator's choosing, never to the log.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::OrderError;
use super::intake::{self, Receipt};
use crate::audit::{Actor, ActorKind};
use crate::authority::{self, KeyAlgorithm, NewAuthority};
use crate::db::{DbConn, write_tx};
use crate::policy::{Deployment, IssuerKind, PolicySet};
use crate::staff::{self, Role};

/// What the demo made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoWorkspace {
    /// The file holding the demo users' passwords.
    pub users_file: PathBuf,
    /// The folder holding the demo authorities' private keys.
    pub keys_dir: PathBuf,
    /// Orders made.
    pub orders: usize,
}

const BASE_ORDER: &str = include_str!("../../tests/fixtures/orders/epoc-prosecutor.json");

fn write_secret(path: &Path, text: &str) -> Result<(), OrderError> {
    let io = |e: std::io::Error| OrderError::Conflict(format!("{}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

fn password() -> Result<String, OrderError> {
    let mut raw = [0u8; 9];
    getrandom::fill(&mut raw).map_err(|e| OrderError::Conflict(e.to_string()))?;
    Ok(hex::encode(raw))
}

fn order(reference: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(BASE_ORDER).unwrap_or(Value::Null);
    v["reference"] = json!(reference);
    edit(&mut v);
    v.to_string()
}

/// Seeds the demo workspace into an empty one; `dir` receives the secrets. Refuses when staff
/// users exist already.
pub fn seed(
    conn: &mut DbConn,
    dir: &Path,
    policies: &PolicySet,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<DemoWorkspace, OrderError> {
    let users = staff::list(conn).map_err(|e| OrderError::Conflict(e.to_string()))?;
    if !users.is_empty() {
        return Err(OrderError::Conflict(
            "the workspace has users already; the demo only seeds an empty one".into(),
        ));
    }
    let keys_dir = dir.join("demo-keys");
    std::fs::create_dir_all(&keys_dir)
        .map_err(|e| OrderError::Conflict(format!("{}: {e}", keys_dir.display())))?;
    let actor = Actor::new(ActorKind::System, "demo");
    let reg = |e: authority::RegistryError| OrderError::Conflict(e.to_string());
    for (id, name, country, kind) in [
        (
            "fr-parquet-paris",
            "Parquet de Paris",
            "FR",
            IssuerKind::Prosecutor,
        ),
        (
            "fr-jld-paris",
            "Juge des libertés, Paris",
            "FR",
            IssuerKind::Judge,
        ),
        (
            "de-sta-berlin",
            "Staatsanwaltschaft Berlin",
            "DE",
            IssuerKind::Prosecutor,
        ),
        (
            "fr-police-lyon",
            "Police nationale, Lyon",
            "FR",
            IssuerKind::Police,
        ),
    ] {
        authority::add(
            conn,
            &actor,
            &NewAuthority {
                id: id.into(),
                name: name.into(),
                country: country.into(),
                kind,
                contacts: vec![format!("liaison@{id}.example")],
            },
        )
        .map_err(reg)?;
        let path = keys_dir.join(format!("{id}.pem"));
        let public =
            crate::audit::keys::init(&path).map_err(|e| OrderError::Conflict(e.to_string()))?;
        authority::add_key(
            conn,
            &actor,
            id,
            &format!("{id}-demo"),
            KeyAlgorithm::EdDSA,
            &crate::audit::keys::public_pem(&public),
        )
        .map_err(reg)?;
    }
    let mut lines = String::from("# Demo users of this Writ (user name, role, password)\n");
    for (username, name, role) in [
        ("rita", "Rita Reviewer", Role::LegalReviewer),
        ("alex", "Alex Approver", Role::LegalApprover),
        ("bea", "Bea Approver", Role::LegalApprover),
        ("olga", "Olga Auditor", Role::Auditor),
        ("adam", "Adam Admin", Role::Admin),
    ] {
        let pw = password()?;
        staff::add_user(conn, &actor, username, name, role, &pw)
            .map_err(|e| OrderError::Conflict(e.to_string()))?;
        lines.push_str(&format!("{username}\t{}\t{pw}\n", role.as_str()));
    }
    let users_file = dir.join("demo-users.txt");
    write_secret(&users_file, &lines)?;

    // Orders: (authority, hours since receipt, order JSON).
    let orders: Vec<(&str, i64, String)> = vec![
        (
            "fr-parquet-paris",
            230,
            order("PR-2026-0101", |v| {
                v["targets"] = json!([{"username": "user7"}]);
            }),
        ),
        (
            "fr-parquet-paris",
            120,
            order("PR-2026-0102", |v| {
                v["targets"] = json!([{"phone_number": crate::metadata::demo::phone_number(12)}]);
                v["categories"] = json!(["subscriber"]);
            }),
        ),
        (
            "fr-parquet-paris",
            3,
            order("PR-2026-0103-URG", |v| {
                v["emergency"] =
                    json!({"justification": "Imminent threat to life: a missing minor."});
                v["targets"] = json!([{"username": "user21"}]);
            }),
        ),
        (
            "fr-parquet-paris",
            30,
            order("PR-2026-0104", |v| {
                v["validator"] = json!({"kind": "judge", "person": "Mme J. Martin", "authority": "Juge des libertés, Paris", "country": "FR", "file_number": "JLD-88"});
                v["dates"]["validated_at"] = json!("2026-09-01T08:00:00Z");
                v["categories"] = json!(["subscriber", "identification", "ip_history"]);
                v["targets"] = json!([{"username": "user3"}]);
            }),
        ),
        (
            "fr-parquet-paris",
            50,
            order("PR-2026-0105-PR", |v| {
                v["instrument"] = json!("eu.epoc_pr");
                v["validator"] = json!({"kind": "judge", "person": "Mme J. Martin", "authority": "Juge des libertés, Paris", "country": "FR", "file_number": "JLD-91"});
                v["emergency"] = json!({"justification": "Data at risk of deletion."});
                v["targets"] = json!([{"username": "user42"}]);
            }),
        ),
        (
            "fr-police-lyon",
            8,
            order("LYON-2026-17", |v| {
                v["issuer"]["kind"] = json!("judge");
                v["targets"] = json!([{"username": "user9"}]);
            }),
        ),
    ];
    let mut made = 0;
    for (authority_id, hours, text) in orders {
        let raw = serde_json::value::RawValue::from_string(text)
            .map_err(|e| OrderError::Conflict(e.to_string()))?;
        let pdf = b"%PDF-1.4\n% Writ demo order document\n%%EOF\n";
        let checked = intake::check_parts(
            conn,
            &raw,
            Some(intake::Document::Raw(pdf.to_vec())),
            None,
            authority_id,
            1 << 20,
            true,
            &crate::authority::validation::Binding::strict(chrono::Utc::now().timestamp()),
        )?;
        write_tx(conn, |c| {
            intake::store(
                c,
                authority_id,
                &checked,
                policies,
                deployment,
                &Receipt {
                    received_at: now - Duration::hours(hours),
                    entered_by: None,
                    mail: None,
                    channel: "api",
                },
                now,
            )
        })?;
        made += 1;
    }
    Ok(DemoWorkspace {
        users_file,
        keys_dir,
        orders: made,
    })
}
