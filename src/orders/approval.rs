//! Four-eyes release. An approver prepares the package: the records are gathered once and
//! frozen as a snapshot, bound to the exact scope it was gathered for. Each approval names the
//! snapshot's hash; a second approval by another person releases: the signed archive is built
//! from exactly that snapshot, and the release, its audit entry and the order's new status
//! commit together, exactly once, however many approvers click at once. Any change of scope
//! (narrowing, an amendment) supersedes the snapshot and its approvals.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, NewEntry};
use crate::db::schema::{approvals, order_versions, orders, packages, release_queue};
use crate::db::{DbConn, write_tx};
use crate::digest::sha256_hex;
use crate::disclosure::gather;
use crate::disclosure::package::{self, PackageInput, Table};
use crate::metadata::normalize;
use crate::orders::review::{self, OrderDetail};
use crate::orders::{OrderError, OrderStatus, holds};
use crate::policy::{Decision, FieldStatus, NarrowingRequest};
use crate::staff::Staff;

/// Approvals needed to release.
pub const APPROVALS: usize = 2;

fn conflict(m: impl Into<String>) -> OrderError {
    OrderError::Conflict(m.into())
}

/// The SHA-256 of a scope as serde writes it.
pub fn scope_hash(scope: &Decision) -> Result<String, OrderError> {
    let json = serde_json::to_vec(scope).map_err(|e| conflict(e.to_string()))?;
    Ok(sha256_hex(&json))
}

/// A package snapshot as the workspace shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Package id.
    pub id: String,
    /// snapshot, released, superseded or deleted.
    pub status: String,
    /// What approvals are bound to.
    pub snapshot_sha256: String,
    /// The scope it was gathered for.
    pub scope_sha256: String,
    /// The records, exactly as they will be released.
    pub tables: Vec<Table>,
    /// Who approved it so far.
    pub approvers: Vec<String>,
    /// The signed archive's hash, once released.
    pub package_sha256: Option<String>,
    /// When gathered.
    pub created_at: DateTime<Utc>,
}

type PackageRow = (String, String, String, String, String, Option<String>, i64);

fn load_snapshot(conn: &mut DbConn, row: PackageRow) -> Result<Snapshot, OrderError> {
    let (id, status, snapshot_sha256, scope_sha256, snapshot, package_sha256, created) = row;
    let tables: Vec<Table> = serde_json::from_str(&snapshot)
        .map_err(|e| OrderError::Db(crate::db::DbError::Corrupt(format!("snapshot {id}: {e}"))))?;
    let approvers = approvals::table
        .filter(approvals::package_id.eq(&id))
        .order(approvals::approved_at)
        .select(approvals::approver)
        .load(conn)?;
    Ok(Snapshot {
        id,
        status,
        snapshot_sha256,
        scope_sha256,
        tables,
        approvers,
        package_sha256,
        created_at: normalize::from_micros(created),
    })
}

/// The current snapshot of an order (or its released package), if any.
pub fn current(conn: &mut DbConn, order_id: &str) -> Result<Option<Snapshot>, OrderError> {
    let row: Option<PackageRow> = packages::table
        .filter(packages::order_id.eq(order_id))
        .filter(packages::status.eq_any(["snapshot", "released"]))
        .order(packages::created_at.desc())
        .select((
            packages::id,
            packages::status,
            packages::snapshot_sha256,
            packages::scope_sha256,
            packages::snapshot,
            packages::package_sha256,
            packages::created_at,
        ))
        .first(conn)
        .optional()?;
    row.map(|r| load_snapshot(conn, r)).transpose()
}

/// Whether `staff` may prepare and approve the package of the order now; the error says why
/// not (the workspace shows it instead of offering the action).
pub fn ready_for_approval(d: &OrderDetail, staff: &Staff) -> Result<(), OrderError> {
    if !matches!(
        d.view.status,
        OrderStatus::UnderReview | OrderStatus::Approved
    ) {
        return Err(conflict(format!(
            "the order is {}; only an order under review can be approved",
            d.view.status.as_str()
        )));
    }
    if d.entered_by.as_deref() == Some(staff.username.as_str()) {
        return Err(conflict(
            "you entered this order by hand; someone else must approve it",
        ));
    }
    if !d.scope.refusals.is_empty() {
        return Err(conflict(
            "the decision refuses the order; nothing can be released",
        ));
    }
    if d.validation_check_needed && d.validation_checked_by.is_none() {
        return Err(conflict(
            "the claimed validation must be checked against the signed document first",
        ));
    }
    let releases = d
        .scope
        .categories
        .iter()
        .flat_map(|c| c.fields.iter())
        .any(|f| f.status.releases() || f.status == FieldStatus::PermitPendingValidationCheck);
    if !releases {
        return Err(conflict("the scope releases no field"));
    }
    Ok(())
}

/// Prepares the package of an order: gathers the records for the current scope (audited
/// lookups) and freezes them, unless a snapshot for that scope exists already. Every
/// preparation and preview is audited.
pub fn prepare(
    conn: &mut DbConn,
    staff: &Staff,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Snapshot, OrderError> {
    write_tx(conn, |c| {
        super::lock(c, order_id)?;
        let d = review::detail(c, order_id)?;
        ready_for_approval(&d, staff)?;
        let scope_sha256 = scope_hash(&d.scope)?;
        if let Some(existing) = current(c, order_id)?
            && existing.scope_sha256 == scope_sha256
            && existing.status == "snapshot"
        {
            let entry = NewEntry::new(staff.actor(), audit::Event::OrderPackagePreviewed)
                .order(order_id)
                .reference("snapshot_sha256", existing.snapshot_sha256.as_str());
            audit::append(c, &entry, now)?;
            return Ok(existing);
        }
        supersede(c, order_id)?;
        let tables = gather::gather(c, &staff.actor(), order_id, &d.scope, now)
            .map_err(|e| conflict(format!("cannot gather the records: {e}")))?;
        let snapshot = serde_json::to_string(&tables).map_err(|e| conflict(e.to_string()))?;
        let snapshot_sha256 = sha256_hex(format!("{scope_sha256}\n{snapshot}").as_bytes());
        let counts: std::collections::BTreeMap<String, usize> = tables
            .iter()
            .map(|t| (t.category.as_str().to_owned(), t.rows.len()))
            .collect();
        let fields: Vec<String> = tables
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .skip(1)
                    .map(|f| format!("{}.{f}", t.category))
            })
            .collect();
        let id = uuid::Uuid::new_v4().to_string();
        diesel::insert_into(packages::table)
            .values((
                packages::id.eq(&id),
                packages::order_id.eq(order_id),
                packages::version.eq(d.view.version),
                packages::scope_sha256.eq(&scope_sha256),
                packages::snapshot_sha256.eq(&snapshot_sha256),
                packages::snapshot.eq(&snapshot),
                packages::status.eq("snapshot"),
                packages::record_counts.eq(serde_json::to_string(&counts).unwrap_or_default()),
                packages::fields.eq(fields.join(",")),
                packages::created_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let mut entry = NewEntry::new(staff.actor(), audit::Event::OrderPackagePrepared)
            .order(order_id)
            .reference("snapshot_sha256", snapshot_sha256.as_str())
            .reference("scope_sha256", scope_sha256.as_str());
        for (category, n) in &counts {
            entry = entry.reference(format!("records_{category}"), *n);
        }
        audit::append(c, &entry, now)?;
        current(c, order_id)?.ok_or_else(|| conflict("the snapshot was not stored"))
    })
}

/// Supersedes the order's open snapshot (its approvals no longer count), inside the caller's
/// transaction.
pub fn supersede(conn: &mut DbConn, order_id: &str) -> Result<usize, OrderError> {
    Ok(diesel::update(
        packages::table
            .filter(packages::order_id.eq(order_id))
            .filter(packages::status.eq("snapshot")),
    )
    .set(packages::status.eq("superseded"))
    .execute(conn)?)
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approved {
    /// Recorded; more approvals are needed.
    Recorded {
        /// Approvals so far.
        approvals: usize,
    },
    /// The second approval: released.
    Released {
        /// SHA-256 of the signed archive.
        package_sha256: String,
    },
}

/// Approves the snapshot whose hash the approver saw. With [`APPROVALS`] different approvers,
/// releases: builds and signs the archive from the snapshot, stores it, and records the release
/// in the audit log, all in one transaction. Where the order needs human judgement
/// ([`super::judgement::points`]), `justification` must say why (refused without it); it is
/// stored and its id and hash go into the `order.approved` entry.
#[allow(clippy::too_many_arguments)]
pub fn approve(
    conn: &mut DbConn,
    staff: &Staff,
    order_id: &str,
    snapshot_sha256: &str,
    justification: &str,
    key: &crate::keystore::Key,
    mail: &crate::settings::MailSettings,
    now: DateTime<Utc>,
) -> Result<Approved, OrderError> {
    write_tx(conn, |c| {
        super::lock(c, order_id)?;
        let d = review::detail(c, order_id)?;
        ready_for_approval(&d, staff)?;
        // An e-Evidence order releases only when its lifecycle allows it (the enforcing
        // authority's window, its grounds for refusal, Form 3, withdrawal, unknown authorities).
        super::eevidence::release_gate(c, &staff.actor(), order_id, now)?;
        let Some(snap) = current(c, order_id)?.filter(|s| s.status == "snapshot") else {
            return Err(conflict("prepare and preview the package first"));
        };
        if snap.snapshot_sha256 != snapshot_sha256 {
            return Err(conflict(
                "the package changed since you previewed it; preview it again",
            ));
        }
        if snap.scope_sha256 != scope_hash(&d.scope)? {
            supersede(c, order_id)?;
            return Err(conflict("the scope changed; prepare the package again"));
        }
        if snap.approvers.contains(&staff.username) {
            return Err(conflict(
                "you have approved this package already; a second person must",
            ));
        }
        let points = super::judgement::points(&d);
        let justified = if points.is_empty() && justification.trim().is_empty() {
            None
        } else {
            let text = super::judgement::check_text("justification", justification)?;
            Some(super::judgement::record(
                c,
                order_id,
                "approval",
                None,
                &points,
                text,
                &staff.username,
                now,
            )?)
        };
        diesel::insert_into(approvals::table)
            .values((
                approvals::package_id.eq(&snap.id),
                approvals::approver.eq(&staff.username),
                approvals::approved_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let mut approvers = snap.approvers.clone();
        approvers.push(staff.username.clone());
        let mut entry = NewEntry::new(staff.actor(), audit::Event::OrderApproved)
            .order(order_id)
            .reference("snapshot_sha256", snap.snapshot_sha256.as_str())
            .reference("approvals", approvers.len());
        if let Some((jid, jsha)) = justified {
            let codes: Vec<&str> = points.iter().map(|p| p.code.as_str()).collect();
            entry = entry
                .reference("judgement_points", codes.join(","))
                .reference("justification_id", jid)
                .reference("justification_sha256", jsha);
        }
        audit::append(c, &entry, now)?;
        if approvers.len() < APPROVALS {
            diesel::update(orders::table.find(order_id))
                .set((
                    orders::status.eq(OrderStatus::Approved.as_str()),
                    orders::updated_at.eq(now.timestamp_micros()),
                ))
                .execute(c)?;
            return Ok(Approved::Recorded {
                approvals: approvers.len(),
            });
        }
        crate::failpoint!(crate::failpoint::RELEASE_BEFORE_BUILD);
        let built = package::build(
            &PackageInput {
                order_id: order_id.to_owned(),
                reference: d.view.reference.clone(),
                authority_id: d.authority_id.clone(),
                instrument: d.view.instrument.clone(),
                order_version: d.view.version,
                scope_sha256: snap.scope_sha256.clone(),
                scope: d.scope.clone(),
                tables: snap.tables.clone(),
                created_at: now,
                approvers: approvers.clone(),
            },
            key,
        )
        .map_err(|e| conflict(format!("the package cannot be built: {e}")))?;
        let mut entry = NewEntry::new(staff.actor(), audit::Event::OrderReleased)
            .order(order_id)
            .reference("package_sha256", built.sha256.as_str())
            .reference("snapshot_sha256", snap.snapshot_sha256.as_str())
            .reference("approvers", approvers.join(","));
        for (category, n) in &built.record_counts {
            entry = entry.reference(format!("records_{category}"), *n);
        }
        let appended = audit::append(c, &entry, now)?;
        diesel::update(packages::table.find(&snap.id))
            .set((
                packages::status.eq("released"),
                packages::package_sha256.eq(Some(&built.sha256)),
                packages::content.eq(Some(&built.tar)),
                packages::released_at.eq(Some(now.timestamp_micros())),
                packages::release_seq.eq(Some(i64::try_from(appended.seq).unwrap_or(i64::MAX))),
            ))
            .execute(c)?;
        diesel::update(orders::table.find(order_id))
            .set((
                orders::status.eq(OrderStatus::Released.as_str()),
                orders::updated_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        holds::release(c, order_id, now.timestamp_micros())?;
        // An e-Evidence order moves to Delivered and its `outcome` call is queued here.
        if super::eevidence::load(c, order_id)?.is_some() {
            super::eevidence::apply(
                c,
                &staff.actor(),
                order_id,
                super::eevidence::Trigger::Released,
                None,
                now,
            )?;
            let authority_id = d.authority_id.clone();
            super::eevidence::queue_call(
                c,
                order_id,
                &authority_id,
                super::eevidence::Call::Outcome,
                None,
                now,
            )?;
        }
        // The deliverers pick the release up from the queue (HI-1: etsi::deliver::take_released).
        diesel::insert_into(release_queue::table)
            .values((
                release_queue::order_id.eq(order_id),
                release_queue::released_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        // A package with no records answers "no data held", not "response ready".
        let empty = built.record_counts.values().all(|n| *n == 0);
        let notice = if empty {
            let entry = NewEntry::new(staff.actor(), audit::Event::OrderAnsweredNotHeld)
                .order(order_id)
                .reference("released_empty", true)
                .reference("package_sha256", built.sha256.as_str());
            audit::append(c, &entry, now)?;
            crate::mail::Notice::NoDataHeld {
                order_id: order_id.to_owned(),
                reference: d.view.reference.clone(),
                text: super::replies::empty_release(&d.scope),
            }
        } else {
            crate::mail::Notice::ResponseReady {
                order_id: order_id.to_owned(),
                reference: d.view.reference.clone(),
            }
        };
        crate::mail::notify(
            c,
            mail,
            crate::mail::Recipients::Authority(&d.authority_id),
            &notice,
            now,
        );
        if !empty {
            queue_user_notice(c, mail, &d, &built.record_counts, now)?;
        }
        crate::failpoint!(crate::failpoint::RELEASE_BEFORE_COMMIT);
        Ok(Approved::Released {
            package_sha256: built.sha256,
        })
    })
}

/// Queues the user notice of a release through the provider's messaging system when a rule
/// lets the provider tell the user and nothing forbids it (see [`super::tasks::notice_due`]),
/// not before the law allows, and only if the user was not told already. It names the order's
/// account targets (never an IP address) and says only what the instrument's template says.
fn queue_user_notice(
    c: &mut DbConn,
    mail: &crate::settings::MailSettings,
    d: &OrderDetail,
    record_counts: &std::collections::BTreeMap<String, u64>,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    if mail.webhooks.notice_url.is_empty() {
        return Ok(());
    }
    let Some(due) = super::tasks::notice_due(&d.scope, now) else {
        return Ok(());
    };
    let told: Option<i64> = orders::table
        .find(&d.view.id)
        .select(orders::user_notified_at)
        .first(c)?;
    if told.is_some() {
        return Ok(());
    }
    let accounts: Vec<serde_json::Value> = d
        .scope
        .targets
        .iter()
        .filter(|t| !matches!(t, crate::policy::Target::Ip(_)))
        .filter_map(|t| serde_json::to_value(t).ok())
        .collect();
    let (authority, country): (String, String) = crate::db::schema::authorities::table
        .find(&d.authority_id)
        .select((
            crate::db::schema::authorities::name,
            crate::db::schema::authorities::country,
        ))
        .first(c)?;
    let categories: Vec<String> = record_counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, _)| k.replace('_', " "))
        .collect();
    let facts = crate::mail::webhook::NoticeFacts {
        authority,
        country,
        instrument: d
            .scope
            .instrument_name
            .clone()
            .unwrap_or_else(|| d.view.instrument.clone()),
        categories: categories.join(", "),
        date: now.format("%Y-%m-%d").to_string(),
    };
    let notice = crate::mail::webhook::UserNotice {
        order_id: &d.view.id,
        instrument_id: &d.view.instrument,
        accounts,
        facts,
    };
    crate::mail::webhook::queue_user_notice(c, mail, &notice, due, now)
        .map_err(|e| conflict(format!("the user notice could not be queued: {e}")))?;
    Ok(())
}

/// Narrows the scope of an order (never widening it: the engine's decision is the ceiling);
/// any snapshot and its approvals are superseded.
pub fn narrow(
    conn: &mut DbConn,
    staff: &Staff,
    order_id: &str,
    request: &NarrowingRequest,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(conn, |c| {
        super::lock(c, order_id)?;
        let d = review::detail(c, order_id)?;
        if !matches!(
            d.view.status,
            OrderStatus::UnderReview | OrderStatus::Approved
        ) {
            return Err(conflict(format!("the order is {}", d.view.status.as_str())));
        }
        let narrowed =
            crate::policy::narrow(&d.scope, request).map_err(|e| OrderError::Invalid {
                kind: crate::orders::InvalidKind::Unprocessable,
                slug: "widening-refused",
                title: "A narrowing may only remove scope".into(),
                errors: vec![crate::orders::FieldError::new("keep", e.to_string())],
                submission_id: None,
            })?;
        let json = serde_json::to_string(&narrowed).map_err(|e| conflict(e.to_string()))?;
        diesel::update(order_versions::table.find((order_id, d.view.version)))
            .set(order_versions::scope_json.eq(Some(&json)))
            .execute(c)?;
        let superseded = supersede(c, order_id)?;
        diesel::update(orders::table.find(order_id))
            .set((
                orders::status.eq(OrderStatus::UnderReview.as_str()),
                orders::updated_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderNarrowed)
            .order(order_id)
            .reference("scope_sha256", scope_hash(&narrowed)?)
            .reference("snapshots_superseded", superseded);
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// The released archive of an order, for its authority (or a staff member), if released and
/// still served: not after its retention period, and not once the order was withdrawn (an
/// emergency order whose ex-post validation lapsed: what it released is to be deleted, so it is
/// never handed out again).
pub fn released_archive(
    conn: &mut DbConn,
    order_id: &str,
) -> Result<Option<(Vec<u8>, String, u64)>, OrderError> {
    type Row = (Option<Vec<u8>>, Option<String>, Option<i64>);
    let row: Option<Row> = packages::table
        .inner_join(orders::table.on(orders::id.eq(packages::order_id)))
        .filter(packages::order_id.eq(order_id))
        .filter(packages::status.eq("released"))
        .filter(orders::status.ne(OrderStatus::Withdrawn.as_str()))
        .select((
            packages::content,
            packages::package_sha256,
            packages::release_seq,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((Some(tar), Some(sha), Some(seq))) => {
            Some((tar, sha, u64::try_from(seq).unwrap_or(0)))
        }
        _ => None,
    })
}

/// The released package of an order with its audit-proof appended (the release entry's
/// inclusion proof in a checkpoint signed now if the log grew), and the SHA-256 of the signed
/// archive; `None` when nothing is released or the archive was deleted.
pub fn released_with_proof(
    conn: &mut DbConn,
    signer: &crate::audit::checkpoint::CheckpointSigner,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Vec<u8>, String)>, OrderError> {
    let Some((tar, sha, seq)) = released_archive(conn, order_id)? else {
        return Ok(None);
    };
    crate::audit::checkpoint::sign_if_new(conn, signer, now)?;
    let cp = crate::audit::checkpoint::latest(conn, signer.origin())?
        .ok_or(crate::audit::AuditError::NoCheckpoint)?;
    let leaf = crate::audit::log::entries(conn, seq, seq + 1)?
        .pop()
        .ok_or_else(|| crate::audit::AuditError::Corrupt(format!("entry {seq} is missing")))?;
    let proof =
        crate::audit::merkle::inclusion_proof(seq, cp.size, &crate::audit::log::DbNodes::new(conn))
            .map_err(crate::audit::AuditError::from)?;
    let doc = crate::audit::proof::InclusionProofDoc {
        index: seq,
        hashes: proof,
        extra: None,
        checkpoint: cp.note,
    };
    let proof_json = serde_json::json!({
        "format": "writ-release-proof/1",
        "leaf": leaf.leaf,
        "tlog_proof": doc.to_text(),
    });
    let with_proof = package::append_proof(&tar, proof_json.to_string().as_bytes())
        .map_err(|e| OrderError::Conflict(e.to_string()))?;
    Ok(Some((with_proof, sha)))
}

/// The authority's download of its released package, with the audit proof (see
/// [`released_with_proof`]), audited as `order.package_downloaded`; `None` when nothing is
/// released or the archive was deleted. Call it outside any transaction: signing a checkpoint
/// must not be rolled back with one.
pub fn download(
    conn: &mut DbConn,
    signer: &crate::audit::checkpoint::CheckpointSigner,
    authority_id: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Vec<u8>, String)>, OrderError> {
    let Some((with_proof, sha)) = released_with_proof(conn, signer, order_id, now)? else {
        return Ok(None);
    };
    write_tx(conn, |c| {
        let entry = NewEntry::new(
            crate::audit::Actor::new(crate::audit::ActorKind::Authority, authority_id),
            audit::Event::OrderPackageDownloaded,
        )
        .order(order_id)
        .reference("package_sha256", sha.as_str());
        audit::append(c, &entry, now)?;
        Ok::<_, OrderError>(())
    })?;
    Ok(Some((with_proof, sha)))
}

/// One row of the disclosure log: one per release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisclosureRow {
    /// Order id.
    pub order_id: String,
    /// The authority's reference.
    pub reference: String,
    /// The authority.
    pub authority_id: String,
    /// The instrument.
    pub instrument: String,
    /// The jurisdiction.
    pub jurisdiction: String,
    /// Fields released (category.field).
    pub fields: String,
    /// Records per category (JSON).
    pub record_counts: String,
    /// Who approved.
    pub approvers: String,
    /// The signed archive's hash.
    pub package_sha256: String,
    /// When released.
    pub released_at: DateTime<Utc>,
    /// The release's audit entry.
    pub release_seq: i64,
}

/// Every release, newest first.
pub fn disclosure_log(conn: &mut DbConn) -> Result<Vec<DisclosureRow>, OrderError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<i64>,
        String,
    );
    let rows: Vec<Row> = packages::table
        .inner_join(orders::table)
        .filter(packages::status.eq_any(["released", "deleted"]))
        .order(packages::released_at.desc())
        .select((
            packages::order_id,
            orders::reference,
            orders::authority_id,
            orders::instrument,
            packages::fields,
            packages::record_counts,
            packages::package_sha256,
            packages::released_at,
            packages::release_seq,
            packages::id,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (order_id, reference, authority_id, instrument, fields, record_counts, sha, at, seq, id) in
        rows
    {
        let approvers: Vec<String> = approvals::table
            .filter(approvals::package_id.eq(&id))
            .order(approvals::approved_at)
            .select(approvals::approver)
            .load(conn)?;
        out.push(DisclosureRow {
            jurisdiction: instrument.split('.').next().unwrap_or_default().to_owned(),
            order_id,
            reference,
            authority_id,
            instrument,
            fields,
            record_counts: serde_json::from_str::<std::collections::BTreeMap<String, u64>>(
                &record_counts,
            )
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or(record_counts),
            approvers: approvers.join(", "),
            package_sha256: sha.unwrap_or_default(),
            released_at: normalize::from_micros(at.unwrap_or(0)),
            release_seq: seq.unwrap_or(-1),
        });
    }
    Ok(out)
}

/// Deletes the archives of packages released more than `days` ago (the record of the release
/// stays, with its hash); one audit entry each. Returns how many.
pub fn purge_released(
    conn: &mut DbConn,
    days: u32,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    let cutoff = (now - chrono::Duration::days(i64::from(days))).timestamp_micros();
    write_tx(conn, |c| {
        let due: Vec<(String, String, Option<String>)> = packages::table
            .filter(packages::status.eq("released"))
            .filter(packages::released_at.lt(cutoff))
            .select((packages::id, packages::order_id, packages::package_sha256))
            .limit(100)
            .load(c)?;
        for (id, order_id, sha) in &due {
            delete_archive(c, id, order_id, sha.as_deref(), "retention", now)?;
        }
        Ok(due.len())
    })
}

/// Deletes the archive of an order's released package now, whatever its age: what an order
/// released is no longer to be held once its ex-post validation lapsed. Returns how many.
pub fn delete_released_of(
    conn: &mut DbConn,
    order_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    write_tx(conn, |c| {
        let due: Vec<(String, Option<String>)> = packages::table
            .filter(packages::order_id.eq(order_id))
            .filter(packages::status.eq("released"))
            .select((packages::id, packages::package_sha256))
            .load(c)?;
        let mut deleted = 0;
        for (id, sha) in &due {
            if delete_archive(c, id, order_id, sha.as_deref(), reason, now)? {
                deleted += 1;
            }
        }
        Ok(deleted)
    })
}

/// Empties one released package's archive and audits it; `false` if another instance did first.
fn delete_archive(
    c: &mut DbConn,
    id: &str,
    order_id: &str,
    sha: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, OrderError> {
    // Conditional: another instance may have deleted it since it was selected.
    let claimed = diesel::update(
        packages::table
            .find(id)
            .filter(packages::status.eq("released")),
    )
    .set((
        packages::status.eq("deleted"),
        packages::content.eq(None::<Vec<u8>>),
        packages::deleted_at.eq(Some(now.timestamp_micros())),
    ))
    .execute(c)?;
    if claimed == 0 {
        return Ok(false);
    }
    let entry = NewEntry::new(
        crate::audit::Actor::new(crate::audit::ActorKind::System, "packages"),
        audit::Event::OrderPackageDeleted,
    )
    .order(order_id)
    .reference("package_sha256", sha.unwrap_or_default())
    .reference("reason", reason);
    audit::append(c, &entry, now)?;
    Ok(true)
}
