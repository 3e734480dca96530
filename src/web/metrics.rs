//! Operators' metrics: `GET /metrics` in the Prometheus text format (version 0.0.4).
//!
//! Two kinds of facts. HTTP request counts and latency histograms are this instance's own
//! (each instance is scraped separately); they are kept in memory by [`record`], a middleware,
//! under the route pattern actix matched, never the raw path, so a scanner trying random paths
//! adds no series. The order, audit-log, mail and ETSI gauges are shared facts, read from the
//! database in one short read transaction per scrape.
//!
//! Access is denied by default: with neither a token nor a network configured, `/metrics`
//! answers 404 like any unknown path. The token is compared by its SHA-256, in constant time,
//! and never logged.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, web};
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::AuditError;
use crate::db::schema::{etsi_deliveries, mail_outbox, orders};
use crate::db::{Db, DbConn, DbError};
use crate::net::IpNetwork;
use crate::orders::OrderStatus;
use crate::settings::MetricsSettings;
use crate::web::problem::{Problem, not_found_response};

/// The media type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route label of every request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency buckets, in seconds, as written in `le` labels. Fine below
/// 50 ms, where the service's goals are (p99 < 5 ms for reads, < 50 ms for writes).
const BUCKET_LABELS: [&str; 12] = [
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
];

/// The same bounds in nanoseconds (a request is counted in the first bucket it fits).
const BUCKET_NANOS: [u64; 12] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// Status class labels, indexed by `status / 100 - 1`.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Every order status, so that each open one has a series even when no order has it.
const ORDER_STATUSES: [OrderStatus; 6] = [
    OrderStatus::UnderReview,
    OrderStatus::AwaitingClarification,
    OrderStatus::Approved,
    OrderStatus::Released,
    OrderStatus::Refused,
    OrderStatus::Withdrawn,
];

/// Does not compile when a status is added to [`OrderStatus`] without being listed above.
const _: fn(OrderStatus) = |s| match s {
    OrderStatus::UnderReview
    | OrderStatus::AwaitingClarification
    | OrderStatus::Approved
    | OrderStatus::Released
    | OrderStatus::Refused
    | OrderStatus::Withdrawn => {}
};

/// The `mail_outbox` statuses of messages not sent yet (`failed` ones wait for a manual retry).
const MAIL_QUEUE_STATUSES: [&str; 3] = ["queued", "sending", "failed"];

/// Every `etsi_deliveries` status (the table's CHECK constraint).
const ETSI_DELIVERY_STATUSES: [&str; 5] =
    ["queued", "sending", "acknowledged", "failed", "on_request"];

/// One day, in microseconds: the horizon of `writ_orders_due_within_24h`.
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The method label: the common methods by name, anything else as `other`, so that a client
/// inventing methods adds no series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum MethodLabel {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl MethodLabel {
    fn of(method: &Method) -> Self {
        match *method {
            Method::GET => Self::Get,
            Method::HEAD => Self::Head,
            Method::POST => Self::Post,
            Method::PUT => Self::Put,
            Method::PATCH => Self::Patch,
            Method::DELETE => Self::Delete,
            Method::OPTIONS => Self::Options,
            _ => Self::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "other",
        }
    }
}

/// The counters of one (route, method) pair. Plain atomics: recording never takes a lock
/// beyond the shared read lock of the map.
#[derive(Debug, Default)]
struct Series {
    /// Requests by status class (see [`STATUS_CLASSES`]).
    by_class: [AtomicU64; 5],
    /// Requests per latency bucket, not cumulative; the last one is above the largest bound.
    buckets: [AtomicU64; BUCKET_NANOS.len() + 1],
    /// Total latency, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Series {
    fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_NANOS
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(BUCKET_NANOS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A copy of one series' counters, taken for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeriesSnapshot {
    route: String,
    method: MethodLabel,
    by_class: [u64; 5],
    buckets: [u64; BUCKET_NANOS.len() + 1],
    sum_nanos: u64,
}

/// This instance's HTTP request counts and latency histograms, by route pattern and method
/// (and status class for the counts). Shared by every worker of the instance.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: RwLock<HashMap<(String, MethodLabel), Series>>,
}

impl HttpMetrics {
    /// Records one answered request. `route` is the pattern actix matched (`None`: no route).
    pub fn record(&self, route: Option<String>, method: &Method, status: u16, elapsed: Duration) {
        let key = (
            route.unwrap_or_else(|| UNMATCHED.to_owned()),
            MethodLabel::of(method),
        );
        {
            // A panic elsewhere cannot leave counters half-written: keep counting.
            let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = series.get(&key) {
                s.observe(status, elapsed);
                return;
            }
        }
        // First request of this (route, method) on this instance: the only write.
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        series.entry(key).or_default().observe(status, elapsed);
    }

    /// The counters, sorted by route and method.
    fn snapshot(&self) -> Vec<SeriesSnapshot> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<SeriesSnapshot> = series
            .iter()
            .map(|((route, method), s)| SeriesSnapshot {
                route: route.clone(),
                method: *method,
                by_class: std::array::from_fn(|i| s.by_class[i].load(Ordering::Relaxed)),
                buckets: std::array::from_fn(|i| s.buckets[i].load(Ordering::Relaxed)),
                sum_nanos: s.sum_nanos.load(Ordering::Relaxed),
            })
            .collect();
        drop(series);
        out.sort_by(|a, b| (&a.route, a.method).cmp(&(&b.route, b.method)));
        out
    }
}

/// Times every request and records it in the [`HttpMetrics`] of the app, under the route
/// pattern actix matched (never the raw path), the method and the status class.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let registry = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let result = next.call(req).await;
    let elapsed = started.elapsed();
    if let Some(registry) = registry {
        match &result {
            Ok(res) => registry.record(
                res.request().match_pattern(),
                &method,
                res.status().as_u16(),
                elapsed,
            ),
            // An error no inner layer turned into a response: the route is no longer known.
            Err(e) => registry.record(
                None,
                &method,
                e.as_response_error().status_code().as_u16(),
                elapsed,
            ),
        }
    }
    result
}

/// Who may read `/metrics`: the holder of a bearer token, clients in some networks, or both.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    token_sha256: Option<[u8; 32]>,
    networks: Vec<IpNetwork>,
    trusted_proxy_hops: usize,
}

/// Why a request may not read the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    /// Metrics are off: answer as for an unknown path.
    Off,
    /// A token is configured and the right one was not presented.
    Unauthorized,
    /// Only networks are configured and the client is outside them.
    Forbidden,
}

impl MetricsAccess {
    /// From the `[metrics]` settings (validated at start; a malformed entry is skipped) and the
    /// number of trusted reverse proxies (`api.trusted_proxy_hops`).
    pub fn from_settings(settings: &MetricsSettings, trusted_proxy_hops: usize) -> Self {
        Self {
            token_sha256: hex::decode(&settings.token_sha256)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()),
            networks: settings
                .allowed_networks
                .iter()
                .filter_map(|n| IpNetwork::parse(n).ok())
                .collect(),
            trusted_proxy_hops,
        }
    }

    /// Whether anyone at all may read the metrics.
    pub fn enabled(&self) -> bool {
        self.token_sha256.is_some() || !self.networks.is_empty()
    }

    fn check(&self, req: &HttpRequest) -> Result<(), Denied> {
        if !self.enabled() {
            return Err(Denied::Off);
        }
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let client = crate::web::client::client_address(req, self.trusted_proxy_hops);
        self.decide(presented, client)
    }

    /// The rule: the right token passes; a client inside an allowed network passes. Otherwise
    /// 401 when a token is configured (it is what the scraper lacks), else 403.
    fn decide(&self, presented: Option<&str>, client: Option<IpAddr>) -> Result<(), Denied> {
        if !self.enabled() {
            return Err(Denied::Off);
        }
        if let (Some(known), Some(token)) = (&self.token_sha256, presented) {
            let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if bool::from(hash.ct_eq(known)) {
                return Ok(());
            }
        }
        if client.is_some_and(|ip| self.networks.iter().any(|n| n.contains(ip))) {
            return Ok(());
        }
        if self.token_sha256.is_some() {
            Err(Denied::Unauthorized)
        } else {
            Err(Denied::Forbidden)
        }
    }
}

/// The shared facts, read from the database at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gauges {
    /// Open orders by status (every open status, zeros included).
    pub orders_open: Vec<(&'static str, i64)>,
    /// Open orders whose deadline has passed.
    pub orders_past_deadline: i64,
    /// Open orders due within the next 24 hours (deadline not passed yet).
    pub orders_due_within_24h: i64,
    /// Entries in the audit log.
    pub audit_log_entries: u64,
    /// Unsent mail by status.
    pub mail_queue: Vec<(&'static str, i64)>,
    /// ETSI deliveries by status.
    pub etsi_deliveries: Vec<(&'static str, i64)>,
}

/// Why the gauges could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GaugeError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log's size could not be read.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<diesel::result::Error> for GaugeError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Reads every gauge in one read transaction (one snapshot on SQLite; on PostgreSQL each
/// count sees the data committed when it runs). `now` is UTC microseconds. Every query is an
/// index lookup or an index-only count.
pub fn read_gauges(conn: &mut DbConn, now: i64) -> Result<Gauges, GaugeError> {
    let open: Vec<&'static str> = ORDER_STATUSES
        .iter()
        .filter(|s| !s.is_closed())
        .map(|s| s.as_str())
        .collect();
    conn.transaction(|c| {
        let by_status: Vec<(String, i64)> = orders::table
            .filter(orders::status.eq_any(&open))
            .group_by(orders::status)
            .select((orders::status, diesel::dsl::count_star()))
            .load(c)?;
        let orders_past_deadline: i64 = orders::table
            .filter(orders::status.eq_any(&open))
            .filter(orders::deadline_at.lt(now))
            .count()
            .get_result(c)?;
        let orders_due_within_24h: i64 = orders::table
            .filter(orders::status.eq_any(&open))
            .filter(orders::deadline_at.ge(now))
            .filter(orders::deadline_at.lt(now.saturating_add(DAY_MICROS)))
            .count()
            .get_result(c)?;
        let audit_log_entries = crate::audit::log::size(c)?;
        let mail: Vec<(String, i64)> = mail_outbox::table
            .filter(mail_outbox::status.eq_any(MAIL_QUEUE_STATUSES))
            .group_by(mail_outbox::status)
            .select((mail_outbox::status, diesel::dsl::count_star()))
            .load(c)?;
        let etsi: Vec<(String, i64)> = etsi_deliveries::table
            .group_by(etsi_deliveries::status)
            .select((etsi_deliveries::status, diesel::dsl::count_star()))
            .load(c)?;
        Ok(Gauges {
            orders_open: per_status(&open, &by_status),
            orders_past_deadline,
            orders_due_within_24h,
            audit_log_entries,
            mail_queue: per_status(&MAIL_QUEUE_STATUSES, &mail),
            etsi_deliveries: per_status(&ETSI_DELIVERY_STATUSES, &etsi),
        })
    })
}

/// One count per known status, zeros included; a stored status not listed is left out, so
/// the label values stay a fixed set.
fn per_status(known: &[&'static str], rows: &[(String, i64)]) -> Vec<(&'static str, i64)> {
    known
        .iter()
        .map(|s| {
            let n = rows
                .iter()
                .find(|(status, _)| status == s)
                .map_or(0, |(_, n)| *n);
            (*s, n)
        })
        .collect()
}

/// The Prometheus text of the HTTP series and the gauges.
fn render(
    http: &[SeriesSnapshot],
    gauges: &Gauges,
    verification: Option<&crate::audit::checkpoint::Verification>,
) -> String {
    let mut out = String::with_capacity(4096 + http.len() * 1024);
    // Writing into a String cannot fail.
    let _ = write_text(&mut out, http, gauges);
    let _ = write_verification(&mut out, verification);
    out
}

/// This instance's last full verification of the audit log, once one has run.
fn write_verification(
    out: &mut String,
    verification: Option<&crate::audit::checkpoint::Verification>,
) -> fmt::Result {
    let Some(v) = verification else {
        return Ok(());
    };
    family(
        out,
        "writ_audit_verification_seconds",
        "gauge",
        "How long this instance's last full verification of the audit log took.",
    )?;
    writeln!(
        out,
        "writ_audit_verification_seconds {}",
        Duration::from_micros(v.duration_micros).as_secs_f64()
    )?;
    family(
        out,
        "writ_audit_verification_ok",
        "gauge",
        "Whether this instance's last full verification of the audit log passed (1) or failed (0).",
    )?;
    writeln!(
        out,
        "writ_audit_verification_ok {}",
        u8::from(v.problem.is_none())
    )
}

fn write_text(out: &mut String, http: &[SeriesSnapshot], gauges: &Gauges) -> fmt::Result {
    family(
        out,
        "writ_build_info",
        "gauge",
        "The version of this Writ instance (always 1).",
    )?;
    writeln!(
        out,
        "writ_build_info{{version=\"{}\"}} 1",
        escape(env!("CARGO_PKG_VERSION"))
    )?;

    family(
        out,
        "writ_http_requests_total",
        "counter",
        "HTTP requests answered by this instance, by route pattern (`unmatched`: no route), method and status class.",
    )?;
    for s in http {
        for (class, n) in STATUS_CLASSES.iter().zip(s.by_class) {
            if n > 0 {
                writeln!(
                    out,
                    "writ_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{class}\"}} {n}",
                    escape(&s.route),
                    s.method.as_str()
                )?;
            }
        }
    }

    family(
        out,
        "writ_http_request_duration_seconds",
        "histogram",
        "Time this instance took to answer HTTP requests (until the response head), by route pattern and method.",
    )?;
    for s in http {
        let labels = format!(
            "route=\"{}\",method=\"{}\"",
            escape(&s.route),
            s.method.as_str()
        );
        let mut cumulative = 0u64;
        for (le, n) in BUCKET_LABELS.iter().zip(s.buckets) {
            cumulative += n;
            writeln!(
                out,
                "writ_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            )?;
        }
        // The count is the +Inf bucket by construction, even while requests are recorded.
        cumulative += s.buckets[BUCKET_LABELS.len()];
        writeln!(
            out,
            "writ_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
        )?;
        writeln!(
            out,
            "writ_http_request_duration_seconds_sum{{{labels}}} {}",
            Duration::from_nanos(s.sum_nanos).as_secs_f64()
        )?;
        writeln!(
            out,
            "writ_http_request_duration_seconds_count{{{labels}}} {cumulative}"
        )?;
    }

    family(
        out,
        "writ_orders_open",
        "gauge",
        "Open orders (all instances), by status.",
    )?;
    for (status, n) in &gauges.orders_open {
        writeln!(out, "writ_orders_open{{status=\"{status}\"}} {n}")?;
    }
    family(
        out,
        "writ_orders_past_deadline",
        "gauge",
        "Open orders whose reply deadline has passed.",
    )?;
    writeln!(
        out,
        "writ_orders_past_deadline {}",
        gauges.orders_past_deadline
    )?;
    family(
        out,
        "writ_orders_due_within_24h",
        "gauge",
        "Open orders whose reply deadline falls within the next 24 hours.",
    )?;
    writeln!(
        out,
        "writ_orders_due_within_24h {}",
        gauges.orders_due_within_24h
    )?;
    family(
        out,
        "writ_audit_log_entries",
        "gauge",
        "Entries in the audit log (its Merkle tree size).",
    )?;
    writeln!(out, "writ_audit_log_entries {}", gauges.audit_log_entries)?;
    family(
        out,
        "writ_mail_queue_depth",
        "gauge",
        "E-mail notices not sent yet, by status (failed ones wait for a retry by hand).",
    )?;
    for (status, n) in &gauges.mail_queue {
        writeln!(out, "writ_mail_queue_depth{{status=\"{status}\"}} {n}")?;
    }
    family(
        out,
        "writ_etsi_deliveries",
        "gauge",
        "Outbound ETSI HI-1 deliveries of released packages, by status.",
    )?;
    for (status, n) in &gauges.etsi_deliveries {
        writeln!(out, "writ_etsi_deliveries{{status=\"{status}\"}} {n}")?;
    }
    Ok(())
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Why `/metrics` did not answer with the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Metrics are off: the endpoint does not exist as far as clients can tell.
    #[error("no such resource")]
    Off,
    /// A token is configured and the request did not present it.
    #[error("the metrics bearer token is required")]
    Unauthorized,
    /// The client is outside the allowed networks.
    #[error("this client may not read the metrics")]
    Forbidden,
    /// The database gauges could not be read.
    #[error("database gauges unavailable")]
    Gauges(#[source] GaugeError),
}

impl From<Denied> for MetricsError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Off => Self::Off,
            Denied::Unauthorized => Self::Unauthorized,
            Denied::Forbidden => Self::Forbidden,
        }
    }
}

impl ResponseError for MetricsError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Off => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Gauges(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Off => not_found_response(),
            // Problem::response adds `WWW-Authenticate: Bearer` to every 401.
            Self::Unauthorized => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
                    .detail(self.to_string())
                    .response()
            }
            Self::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                .detail(self.to_string())
                .response(),
            Self::Gauges(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            )
            .detail("the database did not answer; retry later")
            .response(),
        }
    }
}

/// `GET /metrics`: this instance's HTTP metrics and the shared gauges, in the Prometheus text
/// format, for a token holder or a client in an allowed network (404 when neither is set up).
#[get("/metrics")]
#[tracing::instrument(name = "metrics", skip_all)]
pub async fn metrics(
    req: HttpRequest,
    access: web::Data<MetricsAccess>,
    http: web::Data<HttpMetrics>,
    db: web::Data<Db>,
    signer: web::Data<crate::audit::service::SignerCell>,
) -> Result<HttpResponse, MetricsError> {
    access.check(&req)?;
    let now = chrono::Utc::now().timestamp_micros();
    let gauges = db
        .run(move |conn| read_gauges(conn, now))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "metrics: cannot read the database gauges");
            MetricsError::Gauges(e)
        })?;
    let verification = signer.loaded().and_then(|s| s.state().last_verification);
    let body = render(&http.snapshot(), &gauges, verification.as_ref());
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn access(token: Option<&str>, networks: &[&str]) -> MetricsAccess {
        MetricsAccess::from_settings(
            &MetricsSettings {
                token_sha256: token
                    .map(|t| hex::encode(Sha256::digest(t.as_bytes())))
                    .unwrap_or_default(),
                allowed_networks: networks.iter().map(|n| (*n).to_owned()).collect(),
            },
            0,
        )
    }

    #[test]
    fn access_is_denied_by_default_and_granted_by_token_or_network() {
        let local = Some(ip("127.0.0.1"));
        assert_eq!(access(None, &[]).decide(None, local), Err(Denied::Off));
        assert_eq!(
            access(None, &[]).decide(Some("anything"), local),
            Err(Denied::Off)
        );

        let by_token = access(Some("s3cret"), &[]);
        assert_eq!(by_token.decide(Some("s3cret"), local), Ok(()));
        assert_eq!(
            by_token.decide(Some("s3cre"), local),
            Err(Denied::Unauthorized)
        );
        assert_eq!(by_token.decide(None, local), Err(Denied::Unauthorized));

        let by_net = access(None, &["127.0.0.0/8"]);
        assert_eq!(by_net.decide(None, local), Ok(()));
        assert_eq!(
            by_net.decide(None, Some(ip("192.0.2.1"))),
            Err(Denied::Forbidden)
        );
        assert_eq!(by_net.decide(None, None), Err(Denied::Forbidden));

        let both = access(Some("s3cret"), &["10.0.0.0/8"]);
        assert_eq!(both.decide(None, Some(ip("10.0.0.9"))), Ok(()));
        assert_eq!(both.decide(Some("s3cret"), Some(ip("192.0.2.1"))), Ok(()));
        assert_eq!(
            both.decide(None, Some(ip("192.0.2.1"))),
            Err(Denied::Unauthorized)
        );
    }

    #[test]
    fn requests_are_counted_by_route_method_and_class_into_cumulative_buckets() {
        let m = HttpMetrics::default();
        let ms = Duration::from_millis;
        m.record(Some("/healthz".into()), &Method::GET, 200, ms(0));
        m.record(Some("/healthz".into()), &Method::GET, 200, ms(3));
        m.record(Some("/healthz".into()), &Method::GET, 503, ms(7));
        m.record(None, &Method::GET, 404, ms(10_000));
        m.record(None, &Method::from_bytes(b"PROPFIND").unwrap(), 404, ms(1));
        let snap = m.snapshot();
        assert_eq!(snap.len(), 3);
        let health = &snap[0];
        assert_eq!(health.route, "/healthz");
        assert_eq!(health.by_class, [0, 2, 0, 0, 1]);
        assert_eq!(health.buckets[0], 1);
        assert_eq!(health.buckets[2], 1);
        assert_eq!(health.buckets[3], 1);
        assert_eq!(health.sum_nanos, 10_000_000);
        assert_eq!(snap[1].method, MethodLabel::Get);
        assert_eq!(
            snap[1].buckets[BUCKET_NANOS.len()],
            1,
            "above 5 s: +Inf only"
        );
        assert_eq!(
            (snap[2].route.as_str(), snap[2].method),
            (UNMATCHED, MethodLabel::Other)
        );

        let gauges = Gauges {
            orders_open: vec![("under_review", 2)],
            orders_past_deadline: 1,
            orders_due_within_24h: 0,
            audit_log_entries: 7,
            mail_queue: vec![("queued", 0)],
            etsi_deliveries: vec![("failed", 0)],
        };
        let text = render(&snap, &gauges, None);
        assert!(!text.contains("writ_audit_verification"));
        let verified = crate::audit::checkpoint::Verification {
            at: "2026-12-06T00:00:00.000000Z".into(),
            problem: None,
            entries: 3,
            duration_micros: 1_500_000,
        };
        let with = render(&snap, &gauges, Some(&verified));
        assert!(
            with.contains("writ_audit_verification_seconds 1.5\n"),
            "{with}"
        );
        assert!(with.contains("writ_audit_verification_ok 1\n"));
        assert!(text.contains(
            "writ_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"5xx\"} 1\n"
        ));
        assert!(text.contains(
            "writ_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "writ_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains(
            "writ_http_request_duration_seconds_sum{route=\"/healthz\",method=\"GET\"} 0.01\n"
        ));
        assert!(text.contains("writ_orders_open{status=\"under_review\"} 2\n"));
        assert!(text.contains("writ_audit_log_entries 7\n"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_open_order_status_gets_a_series() {
        let open: Vec<&str> = ORDER_STATUSES
            .iter()
            .filter(|s| !s.is_closed())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(open, ["under_review", "awaiting_clarification", "approved"]);
        for s in ORDER_STATUSES {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
    }
}
