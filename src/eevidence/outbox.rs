//! Writ's calls to the national e-Evidence system (`outcome`, `nonexecution`,
//! `datapreserved`, `confirmwithdrawal`, `correspondence`, ...).
//!
//! A call is queued (`orders::eevidence::queue_call`) in the transaction of the step that
//! causes it. The sender ([`run`] -> [`send_due`]) leases one due call at a time with the
//! HI-1 deliverer's lease (`db::lease::take`: a conditional update to `sending` with the lease
//! end as the token a settlement must match, so of several instances each call is sent by one), builds its
//! `HI1Message` ([`message`]; the transaction identifier is the call's id, so a retry is the
//! same transaction), POSTs it signed with a body-bound token, and retries with doubling
//! backoff until the system answers every action without an error. Each attempt is audited.
//! The lease is `db::lease`, shared with the HI-1 deliverer, and so is the HTTP client
//! (`etsi::deliver::client`: mutual TLS out as `[etsi.outbound_tls]` configures it).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::audit::{self, Actor, ActorKind, NewEntry};
use crate::db::schema::{authority_etsi, eevidence_orders, eevidence_outbox};
use crate::db::{Db, DbConn, write_tx};
use crate::etsi::model::{
    Action, ActionRequest, BinaryData, Delivery, DictionaryEntry, Document, DocumentBody,
    EndpointId, Message, Notification, Object, ObjectBase, Outcome, Payload,
};
use crate::etsi::service::{header, writ_endpoint, writ_version};
use crate::etsi::{Limits, parse, write};
use crate::orders::OrderError;
use crate::orders::eevidence::Call;
use crate::settings::EtsiSettings;

/// Largest answer read from the system.
const ANSWER_LIMIT: usize = 1 << 20;

/// The profile's limit of a package sent inline in an `outcome` (clause 6.3.3: 25 MB), the
/// default of `[etsi] eevidence_inline_limit_bytes`; a larger package goes by reference
/// ([`package_url`], served by [`fetch_package`]).
// EEVIDENCE.md [T?]: check against TS 104 144 (the limit, and whether MB means 10^6 or 2^20
// bytes: Writ takes the smaller reading by default)
pub const INLINE_LIMIT: usize = 25 * 1024 * 1024;

/// The URL of a released package sent by reference: `<eevidence_package_url>/eevidence/packages/<id>`.
pub fn package_url(settings: &EtsiSettings, package_id: &str) -> Option<String> {
    let base = settings.eevidence_package_url.trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/eevidence/packages/{package_id}"))
}

/// The dictionary owner of the profile's own dictionaries.
// EEVIDENCE.md [T?]: check against TS 104 144 (the owner of EPOCNotificationType)
pub const PROFILE_OWNER: &str = "EU";

/// The profile's version block.
// EEVIDENCE.md [T?]: check against TS 104 144 (v1.3.1 on TS 103 120 V1.22.1 in later code)
pub fn profile_version() -> crate::etsi::model::Version {
    crate::etsi::model::Version {
        national_profile_owner: "EU".into(),
        national_profile_version: "v1.3.1".into(),
        ..writ_version()
    }
}

/// What the sender needs.
#[derive(Clone)]
pub struct Sender {
    /// `[etsi]` settings (the system's base URL, retries, timeouts).
    pub settings: EtsiSettings,
    /// The package signing key (signs the request tokens).
    pub key: crate::keystore::Key,
    /// The HTTP client (`etsi::deliver::client`).
    pub client: reqwest::Client,
    /// How often to look for due calls.
    pub interval: Duration,
}

/// Sends due calls until the task is aborted; refreshes the registry from the system's
/// authority list when that is due (`authorities::Periodic`).
pub async fn run(db: Db, sender: Sender) {
    if sender.settings.eevidence_url.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(sender.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut authorities = super::authorities::Periodic::new(&sender.settings);
    loop {
        tick.tick().await;
        authorities.run_if_due(&db, &sender).await;
        let clocks = db.run(|conn| super::inbound::tick(conn, Utc::now())).await;
        if let Err(e) = clocks {
            tracing::warn!(error = %e, "e-Evidence clocks failed; retrying later");
        }
        match send_due(&db, &sender, &sender.client).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(calls = n, "e-Evidence calls attempted"),
            Err(e) => tracing::warn!(error = %e, "e-Evidence call run failed; retrying later"),
        }
    }
}

/// Leases the due calls one at a time and attempts each. Returns how many were attempted.
pub async fn send_due(
    db: &Db,
    sender: &Sender,
    client: &reqwest::Client,
) -> Result<usize, OrderError> {
    let lease = crate::db::lease::duration(sender.settings.delivery_timeout_secs);
    let mut attempted = 0;
    while attempted < 20 {
        let leased: Option<(String, i64)> = db
            .run(move |conn| {
                let now = Utc::now().timestamp_micros();
                crate::db::lease::take(conn, crate::db::lease::Queue::EevidenceOutbox, lease, now)
            })
            .await?;
        let Some((id, lease_end)) = leased else {
            break;
        };
        attempted += 1;
        let settings = sender.settings.clone();
        let key = sender.key.clone();
        let call_id = id.clone();
        let prepared = db
            .run(move |conn| message(conn, &call_id, &settings, &key, Utc::now()))
            .await;
        let outcome = match prepared {
            Ok((endpoint, xml)) => {
                let url = format!(
                    "{}/eevidence/{endpoint}",
                    sender.settings.eevidence_url.trim_end_matches('/')
                );
                post(client, sender, &url, xml).await
            }
            Err(e) => Err(format!("cannot build the message: {e}")),
        };
        let settings = sender.settings.clone();
        db.run(move |conn| settle(conn, &id, lease_end, outcome, &settings, Utc::now()))
            .await?;
    }
    Ok(attempted)
}

/// What a Form 3 call carries (the `body` of its queued row).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Form3Detail {
    /// The reason code.
    pub reason: String,
    /// The explanation, as written by the legal team.
    pub text: String,
}

/// The content type of a detached signature: the raw 64 bytes of an Ed25519 signature.
pub const SIGNATURE_CONTENT_TYPE: &str = "application/octet-stream";

/// The signed Form 3 of a `nonexecution` call, issued when the call was queued (so that every
/// attempt sends the same bytes).
fn form3(
    c: &mut DbConn,
    order_id: &str,
    task_id: &str,
    detail: &Form3Detail,
    queued_at: i64,
    settings: &EtsiSettings,
    key: &crate::keystore::Key,
) -> Result<super::form3::Signed, OrderError> {
    let (authorisation, kind, state): (Option<String>, String, String) = eevidence_orders::table
        .find(order_id)
        .select((
            eevidence_orders::authorisation_id,
            eevidence_orders::kind,
            eevidence_orders::state,
        ))
        .first(c)?;
    let reference: Option<String> = crate::db::schema::orders::table
        .find(order_id)
        .select(crate::db::schema::orders::reference)
        .first(c)
        .optional()?;
    let writ = writ_endpoint(settings);
    // The holds placed on receipt stay until the order ends (Art 10(1), 11).
    let preserved = !crate::orders::eevidence::State::parse(&state).is_some_and(|s| s.is_closed());
    // In the order's language where a template exists, else English.
    let language = super::form3::template_language(
        crate::orders::eevidence::language(c, order_id)?.as_deref(),
    );
    let info = super::form3::Information {
        authorisation,
        task: task_id.to_owned(),
        reference,
        order_kind: if kind == crate::orders::eevidence::Kind::EpocPr.as_str() {
            "EPOC-PR".into()
        } else {
            "EPOC".into()
        },
        provider: format!("{}/{}", writ.country, writ.id),
        reason_text: super::form3::reason_text_in(&detail.reason, language).into(),
        reason: detail.reason.clone(),
        explanation: detail.text.clone(),
        data_preserved: preserved,
        issued_at: crate::metadata::normalize::from_micros(queued_at)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        language: language.into(),
    };
    super::form3::sign(&info, key)
        .map_err(|e| OrderError::Conflict(format!("the Form 3 cannot be signed: {e}")))
}

/// The endpoint and `HI1Message` of call `id`, built from the order as it is now; a Form 3 is
/// signed with `key`.
pub fn message(
    c: &mut DbConn,
    id: &str,
    settings: &EtsiSettings,
    key: &crate::keystore::Key,
    now: DateTime<Utc>,
) -> Result<(String, String), OrderError> {
    let gone = || OrderError::Conflict("the call or its order is gone".into());
    let (endpoint, order_id, authority_id, body, created_at): (
        String,
        Option<String>,
        String,
        Option<String>,
        i64,
    ) = eevidence_outbox::table
        .find(id)
        .select((
            eevidence_outbox::endpoint,
            eevidence_outbox::order_id,
            eevidence_outbox::authority_id,
            eevidence_outbox::body,
            eevidence_outbox::created_at,
        ))
        .first(c)?;
    let call = Call::parse(&endpoint).ok_or_else(gone)?;
    let order_id = order_id.ok_or_else(gone)?;
    let (task_id, authorisation_id): (String, Option<String>) = eevidence_orders::table
        .find(&order_id)
        .select((
            eevidence_orders::task_id,
            eevidence_orders::authorisation_id,
        ))
        .first(c)?;
    let peer: Option<(String, String)> = authority_etsi::table
        .find(&authority_id)
        .select((
            authority_etsi::country_code,
            authority_etsi::unique_identifier,
        ))
        .first(c)
        .optional()?;
    let (country, unique) = peer.ok_or_else(gone)?;
    let writ = writ_endpoint(settings);
    let mut associated: Vec<String> = authorisation_id.into_iter().collect();
    associated.push(task_id.clone());
    let base = |identifier: String, associated: Vec<String>| ObjectBase {
        identifier,
        country: Some(writ.country.clone()),
        owner: Some(writ.id.clone()),
        generation: Some(1),
        associated,
        ..ObjectBase::default()
    };
    let notification = |kind: &str, details: Option<String>| {
        Object::Notification(Notification {
            base: base(uuid::Uuid::new_v4().to_string(), associated.clone()),
            details,
            notification_type: Some(DictionaryEntry {
                owner: PROFILE_OWNER.into(),
                name: "EPOCNotificationType".into(),
                value: kind.into(),
            }),
            new_notification: Some(true),
            timestamp: Some(now.fixed_offset()),
        })
    };
    let actions: Vec<Action> = match call {
        Call::DataPreserved => {
            // What the holds keep and the categories not kept, with why (queued by
            // `orders::eevidence::holds_resolved`).
            let details = body
                .as_deref()
                .and_then(|b| {
                    serde_json::from_str::<crate::orders::eevidence::PreservationReport>(b).ok()
                })
                .map(|r| r.text());
            vec![Action::Create(notification("DataPreserved", details))]
        }
        Call::ConfirmWithdrawal => vec![Action::Create(notification(
            "ConfirmationOfWithdrawal",
            None,
        ))],
        Call::NonExecution => {
            let detail: Form3Detail = body
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok())
                .ok_or_else(gone)?;
            let signed = form3(c, &order_id, &task_id, &detail, created_at, settings, key)?;
            let form_id = uuid::Uuid::new_v4().to_string();
            let info_id = uuid::Uuid::new_v4().to_string();
            let document = |identifier: &str,
                            about: Vec<String>,
                            name: &str,
                            kind: &str,
                            content_type: &str,
                            contents: Vec<u8>| {
                Action::Create(Object::Document(Document {
                    base: base(identifier.to_owned(), about),
                    reference: None,
                    name: Some(name.into()),
                    document_type: Some(DictionaryEntry {
                        owner: PROFILE_OWNER.into(),
                        name: "EPOCDocumentType".into(),
                        value: kind.into(),
                    }),
                    body: Some(DocumentBody {
                        checksum: Some(crate::digest::sha256_hex(&contents)),
                        checksum_type: Some("SHA-256".into()),
                        content_type: Some(content_type.into()),
                        contents,
                    }),
                }))
            };
            // The form (PDF), its structured information, and the detached signature of
            // each, naming the document it signs. EEVIDENCE.md [T?]: how the profile carries
            // the signature is not public; `OtherAttachment` is its catch-all type.
            let about = |doc: &str| {
                let mut a = associated.clone();
                a.push(doc.to_owned());
                a
            };
            vec![
                Action::Create(notification(
                    "NonExecution",
                    Some(format!("{}: {}", detail.reason, detail.text)),
                )),
                document(
                    &form_id,
                    associated.clone(),
                    "Form3.pdf",
                    "Form3",
                    "application/pdf",
                    signed.pdf,
                ),
                document(
                    &info_id,
                    associated.clone(),
                    "Form3Information.json",
                    "OtherAttachment",
                    "application/json",
                    signed.information,
                ),
                document(
                    &uuid::Uuid::new_v4().to_string(),
                    about(&form_id),
                    "Form3.pdf.sig",
                    "OtherAttachment",
                    SIGNATURE_CONTENT_TYPE,
                    signed.pdf_signature,
                ),
                document(
                    &uuid::Uuid::new_v4().to_string(),
                    about(&info_id),
                    "Form3Information.json.sig",
                    "OtherAttachment",
                    SIGNATURE_CONTENT_TYPE,
                    signed.information_signature,
                ),
            ]
        }
        Call::Correspondence => {
            let text = body.unwrap_or_default();
            vec![Action::Deliver {
                identifier: id.to_owned(),
                object: Object::Document(Document {
                    base: base(id.to_owned(), associated.clone()),
                    reference: None,
                    name: None,
                    document_type: Some(DictionaryEntry {
                        owner: PROFILE_OWNER.into(),
                        name: "EPOCDocumentType".into(),
                        value: "ProvideAdditionalInformation".into(),
                    }),
                    body: Some(DocumentBody {
                        checksum: Some(crate::digest::sha256_hex(text.as_bytes())),
                        checksum_type: Some("SHA-256".into()),
                        content_type: Some("text/plain".into()),
                        contents: text.into_bytes(),
                    }),
                }),
            }]
        }
        Call::Outcome => {
            let (tar, sha, _) =
                crate::orders::approval::released_archive(c, &order_id)?.ok_or_else(gone)?;
            let reference: Option<String> = crate::db::schema::orders::table
                .find(&order_id)
                .select(crate::db::schema::orders::reference)
                .first(c)
                .optional()?;
            let filename = format!("writ-package-{}.tar", &sha[..12.min(sha.len())]);
            let checksum = crate::digest::sha256_hex(&tar);
            let length = u64::try_from(tar.len()).ok();
            // Above the inline limit the DeliveryObject carries a URL to the same bytes
            // (`Delivery/URL`, TS 103 120's URLObject) with their length and SHA-256, which
            // the system fetches from Writ (`fetch_package`).
            // EEVIDENCE.md [T?]: check against TS 104 144 (cl. 6.3.3: how the profile fills
            // the URLObject, whether it sets an Expiry, and how the system authenticates the
            // fetch are from secondary material)
            let (binary, url) = if tar.len() > settings.eevidence_inline_limit_bytes {
                let package_id: String = crate::db::schema::packages::table
                    .filter(crate::db::schema::packages::order_id.eq(&order_id))
                    .filter(crate::db::schema::packages::status.eq("released"))
                    .select(crate::db::schema::packages::id)
                    .first(c)?;
                let url = package_url(settings, &package_id).ok_or_else(|| {
                    OrderError::Conflict(format!(
                        "the package ({} bytes) is larger than the {} bytes sent inline, and \
                         [etsi] eevidence_package_url, the base of the URL it goes by, is empty",
                        tar.len(),
                        settings.eevidence_inline_limit_bytes
                    ))
                })?;
                let url = crate::etsi::model::UrlData {
                    url,
                    content_length: length,
                    content_type: Some("application/x-tar".into()),
                    expiry: url_expiry(created_at, settings.eevidence_package_url_days)
                        .map(|t| t.fixed_offset()),
                    checksum: Some(checksum),
                    original_filename: Some(filename),
                    checksum_type: Some("SHA-256".into()),
                };
                (None, Some(url))
            } else {
                let binary = BinaryData {
                    checksum: Some(checksum),
                    checksum_type: Some("SHA-256".into()),
                    content_type: Some("application/x-tar".into()),
                    original_filename: Some(filename),
                    content_length: length,
                    data: tar,
                };
                (Some(binary), None)
            };
            vec![Action::Deliver {
                identifier: id.to_owned(),
                object: Object::Delivery(Delivery {
                    base: base(id.to_owned(), vec![task_id.clone()]),
                    ldid: reference,
                    delivery_id: Some(id.to_owned()),
                    sequence_number: Some(1),
                    last_sequence: Some(true),
                    manifest_specification: Some(DictionaryEntry {
                        owner: writ.id.clone(),
                        name: "ManifestSpecification".into(),
                        value: crate::etsi::deliver::MANIFEST_SPECIFICATION.into(),
                    }),
                    binary,
                    url,
                    status: Some(DictionaryEntry::etsi("DeliveryStatus", "Complete")),
                }),
            }]
        }
        // `authorities` is an exchange of its own (`eevidence::authorities`), and
        // `enforcingauthorityId` is described as an empty HI-1 message, which the Core schema
        // does not allow (ActionRequests holds at least one ActionRequest): neither is sent
        // from the queue. EEVIDENCE.md [?]: check the carrier against TS 104 144.
        Call::EnforcingAuthorityId | Call::Authorities => {
            return Err(OrderError::Conflict(format!(
                "the {} call is not sent from the queue",
                call.endpoint()
            )));
        }
    };
    let message = Message {
        header: header(
            settings,
            EndpointId {
                country,
                id: unique,
            },
            id.to_owned(),
            profile_version(),
            now,
        ),
        payload: Payload::Requests(
            actions
                .into_iter()
                .enumerate()
                .map(|(i, action)| ActionRequest {
                    id: u64::try_from(i).unwrap_or(0),
                    action,
                })
                .collect(),
        ),
        signed: false,
    };
    Ok((endpoint, write(&message)))
}

/// Posts `xml` to `url` with a body-bound request token made with the package key (through the
/// key store: a file or a PKCS#11 token), and reads the answer, refusing one larger than
/// `limit` bytes. Every call to the national system goes through here.
pub(super) async fn exchange(
    client: &reqwest::Client,
    sender: &Sender,
    url: &str,
    xml: String,
    limit: usize,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad system URL: {e}"))?;
    let path = parsed.path().to_owned();
    let audience = parsed.origin().ascii_serialization();
    let token = crate::etsi::deliver::request_token(
        &sender.key,
        &sender.settings.unique_identifier,
        &audience,
        &path,
        xml.as_bytes(),
    )?;
    let mut response = client
        .post(parsed)
        .header("Content-Type", "application/xml")
        .header("Authorization", format!("Bearer {token}"))
        .body(xml)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Posts a message and reads the answer: acknowledged when every action was answered without
/// an error.
async fn post(
    client: &reqwest::Client,
    sender: &Sender,
    url: &str,
    xml: String,
) -> Result<(), String> {
    let (status, body) = exchange(client, sender, url, xml, ANSWER_LIMIT).await?;
    if !status.is_success() {
        return Err(format!("the system answered HTTP {}", status.as_u16()));
    }
    let answer = parse(&body, &Limits::default())
        .map_err(|e| format!("the answer is not an HI1Message: {e}"))?;
    match answer.payload {
        Payload::Responses(r) => {
            if let Some(e) = r.iter().find_map(|r| match &r.outcome {
                Outcome::Error(e) => Some(e),
                _ => None,
            }) {
                return Err(format!(
                    "the system answered error {}: {}",
                    e.code, e.description
                ));
            }
            Ok(())
        }
        Payload::Error(e) => Err(format!(
            "the system refused the message: {} {}",
            e.code, e.description
        )),
        Payload::Requests(_) => Err("the answer is a request, not a response".into()),
    }
}

/// Records an attempt's outcome under this sender's own lease, audited: acknowledged, retried
/// later, or failed for good.
fn settle(
    c: &mut DbConn,
    id: &str,
    lease_end: i64,
    outcome: Result<(), String>,
    settings: &EtsiSettings,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(c, |c| {
        let row: Option<(Option<String>, String, i32)> = eevidence_outbox::table
            .find(id)
            .filter(eevidence_outbox::status.eq("sending"))
            .filter(eevidence_outbox::next_attempt_at.eq(lease_end))
            .select((
                eevidence_outbox::order_id,
                eevidence_outbox::endpoint,
                eevidence_outbox::attempts,
            ))
            .first(c)
            .optional()?;
        let Some((order_id, endpoint, attempts)) = row else {
            tracing::warn!(
                call = id,
                "an e-Evidence call's lease ran out before it settled"
            );
            return Ok(());
        };
        let attempts = attempts.saturating_add(1);
        let system = Actor::new(ActorKind::System, "eevidence");
        let event = match &outcome {
            Ok(()) => {
                diesel::update(eevidence_outbox::table.find(id))
                    .set((
                        eevidence_outbox::status.eq("acknowledged"),
                        eevidence_outbox::attempts.eq(attempts),
                        eevidence_outbox::acknowledged_at.eq(Some(now.timestamp_micros())),
                        eevidence_outbox::last_error.eq(None::<String>),
                    ))
                    .execute(c)?;
                audit::Event::EevidenceCallAcknowledged
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
                diesel::update(eevidence_outbox::table.find(id))
                    .set((
                        eevidence_outbox::status.eq(if failed { "failed" } else { "queued" }),
                        eevidence_outbox::attempts.eq(attempts),
                        eevidence_outbox::next_attempt_at.eq(next),
                        eevidence_outbox::last_error.eq(Some(&short)),
                    ))
                    .execute(c)?;
                tracing::warn!(call = id, endpoint = %endpoint, attempts, error = %short, "e-Evidence call not acknowledged");
                if failed {
                    audit::Event::EevidenceCallFailed
                } else {
                    audit::Event::EevidenceCallAttempted
                }
            }
        };
        let mut entry = NewEntry::new(system, event)
            .reference("call", id)
            .reference("endpoint", endpoint.as_str())
            .reference("attempts", u64::try_from(attempts).unwrap_or(0));
        if let Some(o) = &order_id {
            entry = entry.order(o.as_str());
        }
        audit::append(c, &entry, now)?;
        Ok::<_, OrderError>(())
    })
}

/// A call's state, for the workspace and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallState {
    /// The call's id.
    pub id: String,
    /// Its endpoint.
    pub endpoint: String,
    /// queued, sending, acknowledged or failed.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
}

/// The calls of an order, oldest first.
pub fn calls_of(c: &mut DbConn, order_id: &str) -> Result<Vec<CallState>, OrderError> {
    let rows: Vec<(String, String, String, i32)> = eevidence_outbox::table
        .filter(eevidence_outbox::order_id.eq(order_id))
        .order((eevidence_outbox::created_at, eevidence_outbox::id))
        .select((
            eevidence_outbox::id,
            eevidence_outbox::endpoint,
            eevidence_outbox::status,
            eevidence_outbox::attempts,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(id, endpoint, status, attempts)| CallState {
            id,
            endpoint,
            status,
            attempts,
        })
        .collect())
}

/// Why a fetch of a package by reference is refused. The edge answers each the same way (404:
/// whether a package exists is not told to an authority it was not delivered to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No released package has this id (or its archive was deleted).
    NoPackage,
    /// The package is not of an e-Evidence order of this authority.
    NotTheAuthorities,
    /// The order's outcome was not sent, or the order was withdrawn since.
    NotDelivered,
    /// The id is no package id (Writ's are UUIDs): it is not recorded, only refused.
    MalformedId,
    /// The URL's `Expiry` (`[etsi] eevidence_package_url_days` after the latest `outcome` was
    /// queued) has passed.
    Expired,
}

/// When a package URL in an `outcome` queued at `queued_micros` expires; `None` for `days` 0
/// (no expiry) or a time out of range.
pub fn url_expiry(queued_micros: i64, days: u32) -> Option<DateTime<Utc>> {
    if days == 0 {
        return None;
    }
    DateTime::<Utc>::from_timestamp_micros(queued_micros)?
        .checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Refused::NoPackage => "no_package",
            Refused::NotTheAuthorities => "other_authority",
            Refused::NotDelivered => "not_delivered",
            Refused::MalformedId => "malformed_id",
            Refused::Expired => "expired",
        }
    }
}

/// The released package `package_id` for `authority_id`, the authority the e-Evidence order
/// was delivered to, fetching an `outcome` sent by reference: the exact signed archive (its
/// SHA-256 is the one in the DeliveryObject) and that hash. Only while the order is delivered or
/// closed, only for that authority, only after an `outcome` was queued for it, and not after
/// the URL's expiry (`url_days` after the latest `outcome` was queued; 0: none), the archive's
/// retention period or a withdrawal. Every fetch, served or refused, is audited, in the
/// transaction that reads the archive.
pub fn fetch_package(
    c: &mut DbConn,
    authority_id: &str,
    package_id: &str,
    url_days: u32,
    now: DateTime<Utc>,
) -> Result<Result<(Vec<u8>, String), Refused>, OrderError> {
    use crate::db::schema::packages;
    // The id comes from the URL: anything that is not a package id is refused before it could
    // reach the audit entry (whose references must be short and printable).
    let well_formed = uuid::Uuid::parse_str(package_id).is_ok();
    write_tx(c, |c| {
        if !well_formed {
            let entry = NewEntry::new(
                Actor::new(ActorKind::Authority, authority_id),
                audit::Event::EevidencePackageRefused,
            )
            .reference("reason", Refused::MalformedId.as_str());
            audit::append(c, &entry, now)?;
            return Ok(Err(Refused::MalformedId));
        }
        let order: Option<String> = packages::table
            .find(package_id)
            .filter(packages::status.eq("released"))
            .select(packages::order_id)
            .first(c)
            .optional()?;
        let actor = Actor::new(ActorKind::Authority, authority_id);
        let refuse = |c: &mut DbConn, order: Option<&str>, why: Refused| {
            let mut entry = NewEntry::new(actor.clone(), audit::Event::EevidencePackageRefused)
                .reference("package", package_id)
                .reference("reason", why.as_str());
            if let Some(o) = order {
                entry = entry.order(o);
            }
            audit::append(c, &entry, now)?;
            Ok::<Result<(Vec<u8>, String), Refused>, OrderError>(Err(why))
        };
        let Some(order_id) = order else {
            return refuse(c, None, Refused::NoPackage);
        };
        let owner: Option<(String, String)> = eevidence_orders::table
            .find(&order_id)
            .select((eevidence_orders::authority_id, eevidence_orders::state))
            .first(c)
            .optional()?;
        let Some((owner, state)) = owner else {
            return refuse(c, Some(&order_id), Refused::NotTheAuthorities);
        };
        if owner != authority_id {
            return refuse(c, Some(&order_id), Refused::NotTheAuthorities);
        }
        use crate::orders::eevidence::State;
        let delivered = matches!(State::parse(&state), Some(State::Delivered | State::Closed));
        let latest: Option<i64> = eevidence_outbox::table
            .filter(eevidence_outbox::order_id.eq(&order_id))
            .filter(eevidence_outbox::endpoint.eq(Call::Outcome.endpoint()))
            .select(diesel::dsl::max(eevidence_outbox::created_at))
            .first(c)?;
        let Some(latest) = latest.filter(|_| delivered) else {
            return refuse(c, Some(&order_id), Refused::NotDelivered);
        };
        if url_expiry(latest, url_days).is_some_and(|expiry| now > expiry) {
            return refuse(c, Some(&order_id), Refused::Expired);
        }
        let Some((tar, sha, _)) = crate::orders::approval::released_archive(c, &order_id)? else {
            return refuse(c, Some(&order_id), Refused::NoPackage);
        };
        let entry = NewEntry::new(actor.clone(), audit::Event::EevidencePackageFetched)
            .order(order_id.as_str())
            .reference("package", package_id)
            .reference("package_sha256", sha.as_str())
            .reference("bytes", u64::try_from(tar.len()).unwrap_or(0));
        audit::append(c, &entry, now)?;
        Ok(Ok((tar, sha)))
    })
}
