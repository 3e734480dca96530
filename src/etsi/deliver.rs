//! Outbound `DELIVER`: a released HI-1 disclosure task's package goes back to the authority as
//! a `DeliveryObject`.
//!
//! Approval puts a released order on the release queue; [`take_released`] picks it up and
//! queues its delivery ([`queue`]) in the transaction that takes it off the queue. The sender
//! picks up on every run, and an HI-1 message picks up first, so its answer lists every
//! delivery of an order released before it. When the authority has a
//! registered destination, a background sender ([`run`]) POSTs the DELIVER message there,
//! signed with the same kind of body-bound token authorities use towards Writ (EdDSA with the
//! package signing key, whose public half is at `/packages/public-key`), and retries with
//! doubling backoff until the destination answers with a `DELIVERResponse` naming the
//! delivery. Without a destination, or in any case, the authority can GET the delivery object.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::model::{
    Action, ActionRequest, BinaryData, Delivery, DictionaryEntry, Message, Object, ObjectBase,
    Outcome, Payload,
};
use super::service::{header, writ_endpoint, writ_version};
use super::{Limits, parse, write};
use crate::audit::{self, Actor, ActorKind, NewEntry};
use crate::db::schema::{authority_etsi, etsi_deliveries, etsi_objects, release_queue};
use crate::db::{Db, DbConn, DbError, write_tx};
use crate::orders::OrderError;
use crate::settings::EtsiSettings;

/// Largest answer read from a destination.
const ANSWER_LIMIT: usize = 1 << 20;

/// Writ's `ManifestSpecification` value (in its own dictionary) for its package format.
pub const MANIFEST_SPECIFICATION: &str = "WritPackageV1";

/// Takes released orders off the release queue and queues the delivery of each that came as an
/// HI-1 disclosure task, in one transaction: of several instances picking up at once, each
/// release is taken (and delivered) once. Returns how many releases were taken.
pub fn take_released(c: &mut DbConn, now: DateTime<Utc>) -> Result<usize, OrderError> {
    write_tx(c, |c| {
        let waiting: Vec<String> = release_queue::table
            .order((release_queue::released_at, release_queue::order_id))
            .select(release_queue::order_id)
            .limit(100)
            .load(c)?;
        let mut taken = 0;
        for order_id in waiting {
            // A conditional delete claims it: another instance may have taken it meanwhile.
            if diesel::delete(release_queue::table.find(&order_id)).execute(c)? == 1 {
                queue(c, &order_id, now)?;
                taken += 1;
            }
        }
        Ok(taken)
    })
}

/// Queues the delivery of an order's released package if the order came as an HI-1
/// disclosure task (inside the caller's transaction). Returns the delivery id.
pub fn queue(
    c: &mut DbConn,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, OrderError> {
    let task: Option<(String, String)> = etsi_objects::table
        .filter(etsi_objects::order_id.eq(order_id))
        .filter(etsi_objects::object_type.eq("LDTask"))
        .select((etsi_objects::authority_id, etsi_objects::object_id))
        .first(c)
        .optional()?;
    let Some((authority_id, task_id)) = task else {
        return Ok(None);
    };
    // An e-Evidence order's package goes out as its `outcome` call (queued at release).
    if crate::orders::eevidence::load(c, order_id)?.is_some() {
        return Ok(None);
    }
    let url: Option<Option<String>> = authority_etsi::table
        .find(&authority_id)
        .select(authority_etsi::delivery_url)
        .first(c)
        .optional()?;
    let url = url.flatten();
    let id = uuid::Uuid::new_v4().to_string();
    let status = if url.is_some() {
        "queued"
    } else {
        "on_request"
    };
    diesel::insert_into(etsi_deliveries::table)
        .values((
            etsi_deliveries::id.eq(&id),
            etsi_deliveries::authority_id.eq(&authority_id),
            etsi_deliveries::order_id.eq(order_id),
            etsi_deliveries::task_id.eq(&task_id),
            etsi_deliveries::url.eq(&url),
            etsi_deliveries::status.eq(status),
            etsi_deliveries::attempts.eq(0),
            etsi_deliveries::next_attempt_at.eq(now.timestamp_micros()),
            etsi_deliveries::created_at.eq(now.timestamp_micros()),
        ))
        .execute(c)?;
    let entry = NewEntry::new(
        Actor::new(ActorKind::System, "etsi"),
        audit::Event::EtsiDeliveryQueued,
    )
    .order(order_id)
    .reference("delivery", id.as_str())
    .reference("authority", authority_id.as_str())
    .reference("mode", status);
    audit::append(c, &entry, now)?;
    Ok(Some(id))
}

/// A delivery's state as an ETSI `DeliveryStatus` value.
pub fn delivery_status(status: &str) -> &'static str {
    match status {
        "acknowledged" => "Acknowledged",
        "failed" => "Error",
        _ => "Available",
    }
}

type DeliveryRow = (String, String, String, String, Option<String>, String);

fn delivery_row(
    c: &mut DbConn,
    authority_id: Option<&str>,
    id: &str,
) -> Result<Option<DeliveryRow>, OrderError> {
    let mut q = etsi_deliveries::table
        .filter(etsi_deliveries::id.eq(id))
        .select((
            etsi_deliveries::id,
            etsi_deliveries::authority_id,
            etsi_deliveries::order_id,
            etsi_deliveries::task_id,
            etsi_deliveries::url,
            etsi_deliveries::status,
        ))
        .into_boxed();
    if let Some(a) = authority_id {
        q = q.filter(etsi_deliveries::authority_id.eq(a.to_owned()));
    }
    Ok(q.first(c).optional()?)
}

/// The `DeliveryObject` of delivery `id` for `authority_id` (`None` when there is no such
/// delivery of theirs), carrying the package. With `signer`, the package carries the release's
/// audit proof in a checkpoint signed now if the log grew; that must never happen inside
/// another transaction (the checkpoint's outside copy would run ahead of a rollback), so an
/// answer given inside a message's transaction passes `None` and carries the signed package
/// alone.
pub fn delivery_object(
    c: &mut DbConn,
    authority_id: &str,
    id: &str,
    settings: &EtsiSettings,
    signer: Option<&crate::audit::checkpoint::CheckpointSigner>,
    now: DateTime<Utc>,
) -> Result<Option<Delivery>, OrderError> {
    let Some((id, _, order_id, task_id, _, status)) = delivery_row(c, Some(authority_id), id)?
    else {
        return Ok(None);
    };
    let reference: Option<String> = crate::db::schema::orders::table
        .find(&order_id)
        .select(crate::db::schema::orders::reference)
        .first(c)
        .optional()?;
    let package = match signer {
        Some(signer) => crate::orders::approval::released_with_proof(c, signer, &order_id, now)?,
        None => {
            crate::orders::approval::released_archive(c, &order_id)?.map(|(tar, sha, _)| (tar, sha))
        }
    };
    let writ = writ_endpoint(settings);
    let status_value = delivery_status(&status);
    // A package deleted after its retention period leaves the delivery record, expired.
    let expired = package.is_none();
    let binary = package.map(|(tar, sha)| BinaryData {
        checksum: Some(crate::digest::sha256_hex(&tar)),
        checksum_type: Some("SHA-256".into()),
        content_type: Some("application/x-tar".into()),
        original_filename: Some(format!("writ-package-{}.tar", &sha[..12.min(sha.len())])),
        content_length: u64::try_from(tar.len()).ok(),
        data: tar,
    });
    Ok(Some(Delivery {
        base: ObjectBase {
            identifier: id.clone(),
            country: Some(writ.country.clone()),
            owner: Some(writ.id.clone()),
            generation: Some(1),
            associated: vec![task_id],
            ..ObjectBase::default()
        },
        ldid: reference,
        delivery_id: Some(id),
        sequence_number: Some(1),
        last_sequence: Some(true),
        manifest_specification: Some(DictionaryEntry {
            owner: writ.id,
            name: "ManifestSpecification".into(),
            value: MANIFEST_SPECIFICATION.into(),
        }),
        binary,
        url: None,
        status: Some(DictionaryEntry::etsi(
            "DeliveryStatus",
            if expired { "Expired" } else { status_value },
        )),
    }))
}

/// What the background sender needs.
#[derive(Clone)]
pub struct Sender {
    /// `[etsi]` settings.
    pub settings: EtsiSettings,
    /// The package signing key (signs the request tokens).
    pub key: crate::keystore::Key,
    /// The audit signer (for the packages' inclusion proofs).
    pub signer: std::sync::Arc<crate::audit::service::SignerCell>,
    /// The HTTP client ([`client`]).
    pub client: reqwest::Client,
    /// How often to look for due deliveries.
    pub interval: Duration,
}

/// The HTTP client for Writ's outbound HI-1 and e-Evidence messages: the ONE place it is built.
/// Mutual TLS as `[etsi.outbound_tls]` configures it (`pki::outbound_client`: the trusted CA,
/// Writ's client certificate), the delivery timeout, and no redirects (a redirect would send
/// the signed message somewhere the token was not bound to).
pub fn client(settings: &EtsiSettings) -> anyhow::Result<reqwest::Client> {
    crate::pki::outbound_client(
        &settings.outbound_tls,
        Duration::from_secs(settings.delivery_timeout_secs),
    )
}

/// Sends due deliveries until the task is aborted.
pub async fn run(db: Db, sender: Sender) {
    let mut tick = tokio::time::interval(sender.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match send_due(&db, &sender, &sender.client).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "HI-1 deliveries attempted"),
            Err(e) => tracing::warn!(error = %e, "HI-1 delivery run failed; retrying later"),
        }
    }
}

/// Leases the due deliveries (queued, or sending with an expired lease) and attempts each.
/// Returns how many were attempted.
pub async fn send_due(
    db: &Db,
    sender: &Sender,
    client: &reqwest::Client,
) -> Result<usize, OrderError> {
    let lease = crate::db::lease::duration(sender.settings.delivery_timeout_secs);
    db.run(|conn| take_released(conn, Utc::now())).await?;
    let signer = sender.signer.get(db).await?;
    let mut attempted = 0;
    // One delivery at a time: a lease covers one send, so it cannot expire while the send
    // waits behind others; the lease end is the token a settlement must match.
    while attempted < 10 {
        let leased = db
            .run(move |conn| {
                let now = Utc::now().timestamp_micros();
                crate::db::lease::take(conn, crate::db::lease::Queue::EtsiDeliveries, lease, now)
            })
            .await?;
        let Some((id, lease_end)) = leased else {
            break;
        };
        attempted += 1;
        let settings = sender.settings.clone();
        let signer = signer.clone();
        let delivery_id = id.clone();
        let prepared = db
            .run(move |conn| prepare(conn, &delivery_id, &settings, &signer, Utc::now()))
            .await;
        let outcome = match prepared {
            Ok(Some((url, xml))) => post(client, sender, &url, xml, &id).await,
            Ok(None) => Err("the delivery, its destination or its package is gone".to_owned()),
            Err(e) => Err(format!("cannot build the message: {e}")),
        };
        let settings = sender.settings.clone();
        db.run(move |conn| settle(conn, &id, lease_end, outcome, &settings, Utc::now()))
            .await?;
    }
    Ok(attempted)
}

/// The destination and the DELIVER message of a leased delivery.
fn prepare(
    c: &mut DbConn,
    id: &str,
    settings: &EtsiSettings,
    signer: &crate::audit::checkpoint::CheckpointSigner,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, OrderError> {
    let Some((_, authority_id, _, _, Some(_), _)) = delivery_row(c, None, id)? else {
        return Ok(None);
    };
    // The destination as registered now (an admin may have changed or removed it since the
    // release), and only to an authority that is still active.
    let active: i64 = crate::db::schema::authorities::table
        .filter(crate::db::schema::authorities::id.eq(&authority_id))
        .filter(crate::db::schema::authorities::status.eq("active"))
        .count()
        .get_result(c)?;
    let Some(peer) = crate::authority::etsi_of(c, &authority_id)
        .map_err(|e| OrderError::Conflict(e.to_string()))?
        .filter(|_| active == 1)
    else {
        return Ok(None);
    };
    let Some(url) = peer.delivery_url.clone() else {
        return Ok(None);
    };
    let Some(object) = delivery_object(c, &authority_id, id, settings, Some(signer), now)? else {
        return Ok(None);
    };
    if object.binary.is_none() {
        return Ok(None);
    }
    let message = Message {
        header: header(
            settings,
            super::model::EndpointId {
                country: peer.country_code,
                id: peer.unique_identifier,
            },
            // One transaction per delivery: a retry is the same transaction.
            id.to_owned(),
            writ_version(),
            now,
        ),
        payload: Payload::Requests(vec![ActionRequest {
            id: 0,
            action: Action::Deliver {
                identifier: id.to_owned(),
                object: Object::Delivery(object),
            },
        }]),
        signed: false,
    };
    Ok(Some((url, write(&message))))
}

/// Posts a DELIVER message and reads the acknowledgement.
async fn post(
    client: &reqwest::Client,
    sender: &Sender,
    url: &str,
    xml: String,
    id: &str,
) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad destination URL: {e}"))?;
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let audience = parsed.origin().ascii_serialization();
    let token = request_token(
        &sender.key,
        &sender.settings.unique_identifier,
        &audience,
        &path,
        xml.as_bytes(),
    )?;
    let response = client
        .post(parsed)
        .header("Content-Type", "application/xml")
        .header("Authorization", format!("Bearer {token}"))
        .body(xml)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    // The answer is a short HI1Message: read at most 1 MiB of it.
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > ANSWER_LIMIT {
            return Err(format!("the answer is larger than {ANSWER_LIMIT} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(format!("the destination answered HTTP {}", status.as_u16()));
    }
    let answer = parse(&body, &Limits::default())
        .map_err(|e| format!("the answer is not an HI1Message: {e}"))?;
    match answer.payload {
        Payload::Responses(r) => match r.into_iter().next().map(|r| r.outcome) {
            Some(Outcome::Deliver { identifier }) if identifier == id => Ok(()),
            Some(Outcome::Error(e)) => Err(format!(
                "the destination answered error {}: {}",
                e.code, e.description
            )),
            _ => Err("the answer holds no DELIVERResponse for this delivery".into()),
        },
        Payload::Error(e) => Err(format!(
            "the destination refused the message: {} {}",
            e.code, e.description
        )),
        Payload::Requests(_) => Err("the answer is a request, not a response".into()),
    }
}

/// Records an attempt's outcome: acknowledged, or retried later, or failed for good.
fn settle(
    c: &mut DbConn,
    id: &str,
    lease_end: i64,
    outcome: Result<(), String>,
    settings: &EtsiSettings,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(c, |c| {
        // Only under this sender's own lease: a send that outlived its lease was taken over.
        let row: Option<(String, i32)> = etsi_deliveries::table
            .find(id)
            .filter(etsi_deliveries::status.eq("sending"))
            .filter(etsi_deliveries::next_attempt_at.eq(lease_end))
            .select((etsi_deliveries::order_id, etsi_deliveries::attempts))
            .first(c)
            .optional()?;
        let Some((order_id, attempts)) = row else {
            tracing::warn!(
                delivery = id,
                "a delivery's lease ran out before its send settled"
            );
            return Ok(());
        };
        let attempts = attempts.saturating_add(1);
        let entry = match &outcome {
            Ok(()) => {
                diesel::update(etsi_deliveries::table.find(id))
                    .set((
                        etsi_deliveries::status.eq("acknowledged"),
                        etsi_deliveries::attempts.eq(attempts),
                        etsi_deliveries::acknowledged_at.eq(Some(now.timestamp_micros())),
                        etsi_deliveries::last_error.eq(None::<String>),
                    ))
                    .execute(c)?;
                NewEntry::new(
                    Actor::new(ActorKind::System, "etsi"),
                    audit::Event::EtsiDeliveryAcknowledged,
                )
            }
            Err(reason) => {
                let short: String = reason.chars().take(300).collect();
                let failed =
                    u32::try_from(attempts).unwrap_or(u32::MAX) >= settings.delivery_max_attempts;
                let exponent = u32::try_from(attempts.saturating_sub(1))
                    .unwrap_or(0)
                    .min(20);
                let delay = settings
                    .delivery_backoff_secs
                    .saturating_mul(1u64 << exponent)
                    .min(86_400);
                let next = now.timestamp_micros().saturating_add(
                    i64::try_from(delay)
                        .unwrap_or(86_400)
                        .saturating_mul(1_000_000),
                );
                diesel::update(etsi_deliveries::table.find(id))
                    .set((
                        etsi_deliveries::status.eq(if failed { "failed" } else { "queued" }),
                        etsi_deliveries::attempts.eq(attempts),
                        etsi_deliveries::next_attempt_at.eq(next),
                        etsi_deliveries::last_error.eq(Some(&short)),
                    ))
                    .execute(c)?;
                if !failed {
                    tracing::warn!(delivery = id, attempts, error = %short, "HI-1 delivery not acknowledged; will retry");
                    return Ok(());
                }
                tracing::error!(delivery = id, attempts, error = %short, "HI-1 delivery failed for good");
                NewEntry::new(
                    Actor::new(ActorKind::System, "etsi"),
                    audit::Event::EtsiDeliveryFailed,
                )
            }
        };
        let entry = entry
            .order(order_id.as_str())
            .reference("delivery", id)
            .reference("attempts", u64::try_from(attempts).unwrap_or(0));
        audit::append(c, &entry, now)?;
        Ok::<_, OrderError>(())
    })
}

/// A delivery's state, for the workspace and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    /// queued, sending, acknowledged, failed or on_request.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// The deliveries of an order.
pub fn deliveries_of(
    c: &mut DbConn,
    order_id: &str,
) -> Result<Vec<(String, DeliveryState)>, DbError> {
    let rows: Vec<(String, String, i32, Option<String>)> = etsi_deliveries::table
        .filter(etsi_deliveries::order_id.eq(order_id))
        .order(etsi_deliveries::created_at)
        .select((
            etsi_deliveries::id,
            etsi_deliveries::status,
            etsi_deliveries::attempts,
            etsi_deliveries::last_error,
        ))
        .load(c)
        .map_err(DbError::Query)?;
    Ok(rows
        .into_iter()
        .map(|(id, status, attempts, last_error)| {
            (
                id,
                DeliveryState {
                    status,
                    attempts,
                    last_error,
                },
            )
        })
        .collect())
}

/// The request token Writ's own outbound calls carry (HI-1 DELIVER, the e-Evidence calls): signed
/// with the package key through the key store, so the key may be a file or in a PKCS#11 token;
/// bound to POST, `path` and `body`; valid five minutes.
pub fn request_token(
    key: &crate::keystore::Key,
    issuer: &str,
    audience: &str,
    path: &str,
    body: &[u8],
) -> Result<String, String> {
    let public = key.public().map_err(|e| format!("cannot sign: {e}"))?;
    let kid = crate::disclosure::keys::key_id(&public);
    crate::authority::client::sign_request_with(
        key,
        &kid,
        &crate::authority::client::TokenRequest {
            issuer,
            audience,
            method: "POST",
            path,
            body,
            now: Utc::now().timestamp(),
            lifetime_secs: 300,
        },
    )
    .map_err(|e| format!("cannot sign: {e}"))
}
