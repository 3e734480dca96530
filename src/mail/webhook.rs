//! Signed webhooks, beside e-mail: the user notice to the provider's own messaging system and
//! the page to the on-call when an emergency order arrives (issue 19).
//!
//! As with e-mail, a workflow step queues a webhook inside its own transaction
//! ([`queue_user_notice`] at release, [`queue_page`] at intake): one `webhook_outbox` row that
//! commits or rolls back with the step. The sender ([`run_sender`] -> [`send_due`]) claims due
//! rows under a lease (as [`super::send_due`] does, `FOR UPDATE SKIP LOCKED` on PostgreSQL),
//! POSTs them with no transaction open, and records the outcome: a 2xx is sent (audited as
//! `order.user_notice_sent` or `order.on_call_paged`, in the same transaction that marks the
//! row), a 5xx, 408, 429 or a network failure is retried with a doubling delay up to
//! `mail.webhooks.max_attempts`, any other answer fails at once. A user notice is not due
//! before the law allows it (`next_attempt_at` is the end of a dated non-disclosure order).
//!
//! Every POST carries `Writ-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 (RFC 2104)
//! with the channel's secret over `<t>.<body>`: the receiver recomputes it ([`verify`]),
//! compares in constant time and refuses an old `t` (a replay). The body is JSON, stored
//! exactly as signed. Logs name the row id, its kind and the outcome, never the body or URL.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::MailError;
use crate::audit::{self, Actor, NewEntry};
use crate::db::schema::{orders, webhook_outbox};
use crate::db::{Db, DbConn, DbError, in_transaction, write_tx};
use crate::settings::{MailSettings, WebhookSettings};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Writ-Signature";
/// A receiver should refuse a signature older (or newer) than this.
pub const TOLERANCE_SECS: i64 = 300;
/// How long a claimed webhook is its sender's before another may take it over.
const LEASE_SECS: i64 = 5 * 60;
/// Webhooks one [`send_due`] call sends at most.
const BATCH: usize = 50;
/// The longest delay between two attempts.
const MAX_BACKOFF_SECS: u64 = 24 * 3600;

/// What a webhook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The notice to the user, through the provider's messaging system.
    UserNotice,
    /// The page to the on-call for an emergency order.
    Page,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UserNotice => "user_notice",
            Kind::Page => "page",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "user_notice" => Some(Kind::UserNotice),
            "page" => Some(Kind::Page),
            _ => None,
        }
    }

    /// The channel's URL and secret (an empty URL: the channel is off).
    fn channel(self, settings: &WebhookSettings) -> (&str, &str) {
        match self {
            Kind::UserNotice => (&settings.notice_url, settings.notice_secret.expose()),
            Kind::Page => (&settings.paging_url, settings.paging_secret.expose()),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes a key of any length (RFC 2104 section 2), so this never fails.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `Writ-Signature` value for `body` sent at `t` (unix seconds).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let hex = mac(secret, t, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={t},v1={hex}")
}

/// Whether `header` is a valid signature of `body` with `secret`, made within
/// [`TOLERANCE_SECS`] of `now` (compared in constant time). What a receiver runs.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: DateTime<Utc>) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now.timestamp() - t).abs() > TOLERANCE_SECS {
        return false;
    }
    mac(secret, t, body).is_some_and(|m| m.verify_slice(&v1).is_ok())
}

/// What the user notice may say, filled into the instrument's template.
#[derive(Debug, Clone)]
pub struct NoticeFacts {
    /// The authority's name.
    pub authority: String,
    /// Its country.
    pub country: String,
    /// The instrument's name (or id).
    pub instrument: String,
    /// The categories disclosed, in words.
    pub categories: String,
    /// The day of the disclosure.
    pub date: String,
}

/// The notice text: the instrument's template (or `default`) with only the allowed placeholders
/// filled (settings refuse a template with any other).
pub fn notice_text(settings: &WebhookSettings, instrument_id: &str, facts: &NoticeFacts) -> String {
    let template = settings
        .notice_templates
        .get(instrument_id)
        .or_else(|| settings.notice_templates.get("default"))
        .cloned()
        .unwrap_or_default();
    template
        .replace("{authority}", &facts.authority)
        .replace("{country}", &facts.country)
        .replace("{instrument}", &facts.instrument)
        .replace("{categories}", &facts.categories)
        .replace("{date}", &facts.date)
}

fn insert(
    conn: &mut DbConn,
    kind: Kind,
    order_id: &str,
    body: &serde_json::Value,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), MailError> {
    diesel::insert_into(webhook_outbox::table)
        .values((
            webhook_outbox::kind.eq(kind.as_str()),
            webhook_outbox::order_id.eq(order_id),
            webhook_outbox::body.eq(body.to_string()),
            webhook_outbox::status.eq("queued"),
            webhook_outbox::attempts.eq(0),
            webhook_outbox::next_attempt_at.eq(due.timestamp_micros()),
            webhook_outbox::created_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)
        .map_err(DbError::Query)?;
    Ok(())
}

/// Queues the user notice of a released order, due at `due` (not before the law allows), in
/// the caller's transaction; nothing when the channel is off or no account is named.
/// Returns whether it was queued.
pub fn queue_user_notice(
    conn: &mut DbConn,
    settings: &MailSettings,
    notice: &UserNotice<'_>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, MailError> {
    let w = &settings.webhooks;
    if w.notice_url.is_empty() || notice.accounts.is_empty() {
        return Ok(false);
    }
    let body = serde_json::json!({
        "type": Kind::UserNotice.as_str(),
        "id": uuid::Uuid::new_v4().to_string(),
        "order_id": notice.order_id,
        "accounts": notice.accounts,
        "text": notice_text(w, notice.instrument_id, &notice.facts),
    });
    insert(conn, Kind::UserNotice, notice.order_id, &body, due, now)?;
    Ok(true)
}

/// A user notice to queue.
#[derive(Debug, Clone)]
pub struct UserNotice<'a> {
    /// The order.
    pub order_id: &'a str,
    /// Its instrument id (chooses the template).
    pub instrument_id: &'a str,
    /// Whom to tell: the order's account targets as given (`{"username": "alice"}`).
    pub accounts: Vec<serde_json::Value>,
    /// What the template may say.
    pub facts: NoticeFacts,
}

/// What a page says: the order, never a target.
#[derive(Debug, Clone, Serialize)]
pub struct PageFacts {
    /// The authority's reference.
    pub reference: String,
    /// The authority's id.
    pub authority: String,
    /// The instrument id.
    pub instrument: String,
    /// When the reply is due, if a date applies.
    pub deadline: Option<DateTime<Utc>>,
}

/// Queues the on-call page of an emergency order, in the caller's transaction; nothing when
/// the channel is off. Returns whether it was queued.
pub fn queue_page(
    conn: &mut DbConn,
    settings: &MailSettings,
    order_id: &str,
    page: &PageFacts,
    now: DateTime<Utc>,
) -> Result<bool, MailError> {
    if settings.webhooks.paging_url.is_empty() {
        return Ok(false);
    }
    let body = serde_json::json!({
        "type": Kind::Page.as_str(),
        "id": uuid::Uuid::new_v4().to_string(),
        "order_id": order_id,
        "reference": page.reference,
        "authority": page.authority,
        "instrument": page.instrument,
        "deadline": page.deadline,
        "open": format!("/orders/{order_id}"),
    });
    insert(conn, Kind::Page, order_id, &body, now, now)?;
    Ok(true)
}

/// A webhook as the order page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// Row id.
    pub id: i64,
    /// `user_notice` or `page`.
    pub kind: String,
    /// queued, sending, sent or failed.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When due next (queued) or when the lease ends (sending).
    pub next_attempt_at: DateTime<Utc>,
    /// When sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When a colleague acknowledged the page.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who.
    pub acknowledged_by: Option<String>,
}

type Row = (
    i64,
    String,
    String,
    i32,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The webhooks of an order, oldest first.
pub fn of_order(conn: &mut DbConn, order_id: &str) -> Result<Vec<Webhook>, MailError> {
    let rows: Vec<Row> = webhook_outbox::table
        .filter(webhook_outbox::order_id.eq(order_id))
        .order(webhook_outbox::id)
        .select((
            webhook_outbox::id,
            webhook_outbox::kind,
            webhook_outbox::status,
            webhook_outbox::attempts,
            webhook_outbox::last_error,
            webhook_outbox::next_attempt_at,
            webhook_outbox::sent_at,
            webhook_outbox::acknowledged_at,
            webhook_outbox::acknowledged_by,
        ))
        .load(conn)
        .map_err(DbError::Query)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, kind, status, attempts, last_error, next, sent, acked, by)| Webhook {
                id,
                kind,
                status,
                attempts,
                last_error,
                next_attempt_at: at(next),
                sent_at: sent.map(at),
                acknowledged_at: acked.map(at),
                acknowledged_by: by,
            },
        )
        .collect())
}

/// A colleague acknowledges an order's page (audited as `order.page_acknowledged`, with the
/// row id, in one transaction). An error names why not: no page, or already acknowledged.
pub fn acknowledge_page(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<(), MailError> {
    write_tx(conn, |c| {
        let open: Option<i64> = webhook_outbox::table
            .filter(webhook_outbox::order_id.eq(order_id))
            .filter(webhook_outbox::kind.eq(Kind::Page.as_str()))
            .filter(webhook_outbox::acknowledged_at.is_null())
            .order(webhook_outbox::id)
            .select(webhook_outbox::id)
            .first(c)
            .optional()
            .map_err(DbError::Query)?;
        let Some(id) = open else {
            return Err(MailError::Conflict(
                "there is no page of this order waiting for an acknowledgement".into(),
            ));
        };
        diesel::update(webhook_outbox::table.find(id))
            .set((
                webhook_outbox::acknowledged_at.eq(Some(now.timestamp_micros())),
                webhook_outbox::acknowledged_by.eq(Some(actor.id.as_str())),
            ))
            .execute(c)
            .map_err(DbError::Query)?;
        let entry = NewEntry::new(actor.clone(), audit::Event::OrderPageAcknowledged)
            .order(order_id)
            .reference("webhook", u64::try_from(id).unwrap_or(0));
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// What one [`send_due`] run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// Claimed.
    pub claimed: usize,
    /// Accepted by the receiver.
    pub sent: usize,
    /// To be tried again.
    pub retrying: usize,
    /// Given up.
    pub failed: usize,
}

/// A claimed row.
#[derive(Debug, Clone)]
struct Claimed {
    id: i64,
    kind: Kind,
    order_id: String,
    body: String,
    attempts: i32,
    lease_end: i64,
}

fn micros_of(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

fn max_attempts(settings: &WebhookSettings) -> i32 {
    i32::try_from(settings.max_attempts.max(1)).unwrap_or(i32::MAX)
}

/// Claims the oldest due webhook whose channel is on; expired leases with no attempt left fail
/// on the way.
fn claim_next(
    conn: &mut DbConn,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    report: &mut SendReport,
) -> Result<Option<Claimed>, MailError> {
    let micros = now.timestamp_micros();
    let lease_end = micros.saturating_add(LEASE_SECS * 1_000_000);
    let mut kinds = Vec::new();
    for kind in [Kind::UserNotice, Kind::Page] {
        if !kind.channel(settings).0.is_empty() {
            kinds.push(kind.as_str());
        }
    }
    if kinds.is_empty() {
        return Ok(None);
    }
    let max = max_attempts(settings);
    write_tx(conn, |c| {
        loop {
            let query = webhook_outbox::table
                .filter(webhook_outbox::status.eq_any(["queued", "sending"]))
                .filter(webhook_outbox::kind.eq_any(kinds.clone()))
                .filter(webhook_outbox::next_attempt_at.le(micros))
                .order((webhook_outbox::next_attempt_at, webhook_outbox::id))
                .limit(1)
                .select((
                    webhook_outbox::id,
                    webhook_outbox::kind,
                    webhook_outbox::order_id,
                    webhook_outbox::body,
                    webhook_outbox::status,
                    webhook_outbox::attempts,
                ));
            let due: Vec<(i64, String, String, String, String, i32)> =
                crate::db::locks::load_skip_locked!(c, query).map_err(DbError::Query)?;
            let Some((id, kind, order_id, body, status, attempts)) = due.into_iter().next() else {
                return Ok(None);
            };
            let Some(kind) = Kind::parse(&kind) else {
                return Ok(None);
            };
            if status == "sending" && attempts >= max {
                diesel::update(webhook_outbox::table.find(id))
                    .set((
                        webhook_outbox::status.eq("failed"),
                        webhook_outbox::last_error.eq(Some(
                            "the sender stopped during the last attempt (lease expired)",
                        )),
                    ))
                    .execute(c)
                    .map_err(DbError::Query)?;
                report.failed += 1;
                tracing::warn!(
                    webhook.id = id,
                    webhook.kind = kind.as_str(),
                    outcome = "failed",
                    error.class = "lease-expired",
                    "webhook not sent"
                );
                continue;
            }
            let attempts = attempts.saturating_add(1);
            diesel::update(webhook_outbox::table.find(id))
                .set((
                    webhook_outbox::status.eq("sending"),
                    webhook_outbox::attempts.eq(attempts),
                    webhook_outbox::next_attempt_at.eq(lease_end),
                ))
                .execute(c)
                .map_err(DbError::Query)?;
            return Ok(Some(Claimed {
                id,
                kind,
                order_id,
                body,
                attempts,
                lease_end,
            }));
        }
    })
}

/// A delivery's failure: whether it is worth trying again, and a short reason (no body, no URL).
struct Failure {
    permanent: bool,
    detail: String,
}

async fn post(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    claimed: &Claimed,
) -> Result<(), Failure> {
    let (url, secret) = claimed.kind.channel(settings);
    let t = Utc::now().timestamp();
    let signature = sign(secret.as_bytes(), t, claimed.body.as_bytes());
    let answer = client
        .post(url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
        .body(claimed.body.clone())
        .send()
        .await
        .map_err(|e| Failure {
            permanent: false,
            detail: format!("no answer: {}", e.without_url()),
        })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
    Err(Failure {
        permanent: !retry,
        detail: format!("the receiver answered {}", status.as_u16()),
    })
}

/// Records a delivery's outcome if the lease is still this sender's; a success is audited in
/// the same transaction (and a user notice marks the order as told, channel `webhook`).
fn record(
    conn: &mut DbConn,
    settings: &WebhookSettings,
    claimed: &Claimed,
    outcome: Result<(), Failure>,
    now: DateTime<Utc>,
    report: &mut SendReport,
) -> Result<(), MailError> {
    let micros = now.timestamp_micros();
    let kind = claimed.kind.as_str();
    write_tx(conn, |c| {
        let mine = webhook_outbox::table
            .filter(webhook_outbox::id.eq(claimed.id))
            .filter(webhook_outbox::status.eq("sending"))
            .filter(webhook_outbox::next_attempt_at.eq(claimed.lease_end));
        match &outcome {
            Ok(()) => {
                let n = diesel::update(mine)
                    .set((
                        webhook_outbox::status.eq("sent"),
                        webhook_outbox::sent_at.eq(Some(micros)),
                        webhook_outbox::last_error.eq(None::<String>),
                    ))
                    .execute(c)
                    .map_err(DbError::Query)?;
                if n == 0 {
                    tracing::warn!(
                        webhook.id = claimed.id,
                        webhook.kind = kind,
                        "webhook outcome not recorded: the lease expired"
                    );
                    return Ok(());
                }
                let event = match claimed.kind {
                    Kind::UserNotice => {
                        diesel::update(orders::table.find(&claimed.order_id))
                            .set((
                                orders::user_notified_at.eq(Some(micros)),
                                orders::user_notified_channel.eq(Some("webhook")),
                            ))
                            .execute(c)
                            .map_err(DbError::Query)?;
                        audit::Event::OrderUserNoticeSent
                    }
                    Kind::Page => audit::Event::OrderOnCallPaged,
                };
                let entry = NewEntry::new(Actor::system(), event)
                    .order(&claimed.order_id)
                    .reference("webhook", u64::try_from(claimed.id).unwrap_or(0))
                    .reference("attempts", u64::try_from(claimed.attempts).unwrap_or(0))
                    .reference(
                        "body_sha256",
                        crate::digest::sha256_hex(claimed.body.as_bytes()),
                    );
                audit::append(c, &entry, now)?;
                report.sent += 1;
                tracing::info!(
                    webhook.id = claimed.id,
                    webhook.kind = kind,
                    outcome = "sent",
                    "webhook sent"
                );
            }
            Err(failure) => {
                let give_up = failure.permanent || claimed.attempts >= max_attempts(settings);
                let exponent = u32::try_from(claimed.attempts.saturating_sub(1)).unwrap_or(0);
                let backoff = settings
                    .retry_backoff_secs
                    .saturating_mul(2_u64.saturating_pow(exponent))
                    .min(MAX_BACKOFF_SECS);
                let (status, next) = if give_up {
                    ("failed", micros)
                } else {
                    ("queued", micros.saturating_add(micros_of(backoff)))
                };
                diesel::update(mine)
                    .set((
                        webhook_outbox::status.eq(status),
                        webhook_outbox::next_attempt_at.eq(next),
                        webhook_outbox::last_error.eq(Some(&failure.detail)),
                    ))
                    .execute(c)
                    .map_err(DbError::Query)?;
                if give_up {
                    report.failed += 1;
                    tracing::warn!(
                        webhook.id = claimed.id,
                        webhook.kind = kind,
                        outcome = "failed",
                        attempts = claimed.attempts,
                        "webhook not sent; giving up"
                    );
                } else {
                    report.retrying += 1;
                    tracing::warn!(
                        webhook.id = claimed.id,
                        webhook.kind = kind,
                        outcome = "retry",
                        attempts = claimed.attempts,
                        "webhook not sent; will retry"
                    );
                }
            }
        }
        Ok(())
    })
}

/// Sends due webhooks (one batch); used by the sender loop and by tests. Each claim commits
/// before its POST; the outcome is recorded after it.
pub async fn send_due(
    db: &Db,
    settings: &WebhookSettings,
    client: &reqwest::Client,
) -> Result<SendReport, MailError> {
    let mut report = SendReport::default();
    while report.claimed < BATCH {
        let s = settings.clone();
        let (claimed, r) = db
            .run(move |conn| {
                if in_transaction(conn).map_err(DbError::Query)? {
                    return Err(MailError::InTransaction);
                }
                let mut r = SendReport::default();
                let claimed = claim_next(conn, &s, Utc::now(), &mut r)?;
                Ok::<_, MailError>((claimed, r))
            })
            .await?;
        report.failed += r.failed;
        let Some(claimed) = claimed else {
            break;
        };
        report.claimed += 1;
        let outcome = post(client, settings, &claimed).await;
        let s = settings.clone();
        let r = db
            .run(move |conn| {
                let mut r = SendReport::default();
                record(conn, &s, &claimed, outcome, Utc::now(), &mut r)?;
                Ok::<_, MailError>(r)
            })
            .await?;
        report.sent += r.sent;
        report.retrying += r.retrying;
        report.failed += r.failed;
    }
    Ok(report)
}

/// The sender loop: every `interval`, [`send_due`] until nothing more is due.
pub async fn run_sender(db: Db, settings: WebhookSettings, interval: Duration) {
    if settings.notice_url.is_empty() && settings.paging_url.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook client cannot be built; no webhook will be sent");
            return;
        }
    };
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        loop {
            match send_due(&db, &settings, &client).await {
                Ok(report) => {
                    if report.claimed > 0 {
                        tracing::info!(
                            webhook.sent = report.sent,
                            webhook.retrying = report.retrying,
                            webhook.failed = report.failed,
                            "webhook run"
                        );
                    }
                    if report.claimed < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook run failed; will try again");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_unchanged_with_its_secret_and_in_time() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let header = sign(
            b"0123456789abcdef0123456789abcdef",
            now.timestamp(),
            b"{\"a\":1}",
        );
        assert!(verify(
            b"0123456789abcdef0123456789abcdef",
            &header,
            b"{\"a\":1}",
            now
        ));
        assert!(!verify(
            b"0123456789abcdef0123456789abcdeX",
            &header,
            b"{\"a\":1}",
            now
        ));
        assert!(!verify(
            b"0123456789abcdef0123456789abcdef",
            &header,
            b"{\"a\":2}",
            now
        ));
        let late = now + chrono::Duration::seconds(TOLERANCE_SECS + 1);
        assert!(!verify(
            b"0123456789abcdef0123456789abcdef",
            &header,
            b"{\"a\":1}",
            late
        ));
        assert!(!verify(b"k", "t=1,v1=zz", b"", now));
    }

    #[test]
    fn the_notice_comes_from_the_instruments_template_or_the_default() {
        let mut settings = WebhookSettings {
            notice_url: "http://127.0.0.1:1/".into(),
            notice_secret: crate::settings::SecretString::new("s".repeat(32)),
            notice_templates: [
                (
                    "default".to_owned(),
                    "{authority} asked on {date}.".to_owned(),
                ),
                (
                    "eu.dsa_art10".to_owned(),
                    "Under {instrument}, {authority} ({country}) received {categories}.".to_owned(),
                ),
            ]
            .into_iter()
            .collect(),
            paging_url: String::new(),
            paging_secret: crate::settings::SecretString::default(),
            max_attempts: 3,
            retry_backoff_secs: 1,
            timeout_secs: 1,
        };
        let facts = NoticeFacts {
            authority: "Police".into(),
            country: "FR".into(),
            instrument: "DSA Art 10".into(),
            categories: "subscriber".into(),
            date: "2026-12-07".into(),
        };
        assert_eq!(
            notice_text(&settings, "eu.dsa_art10", &facts),
            "Under DSA Art 10, Police (FR) received subscriber."
        );
        assert_eq!(
            notice_text(&settings, "us.subpoena", &facts),
            "Police asked on 2026-12-07."
        );
        settings.notice_templates.clear();
        assert_eq!(notice_text(&settings, "us.subpoena", &facts), "");
    }
}
