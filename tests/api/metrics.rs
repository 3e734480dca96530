//! Operators' metrics: `GET /metrics`.
//!
//! Off unless configured; open to a bearer token or to allowed networks (X-Forwarded-For only
//! behind trusted proxies); request counts under route patterns, never raw paths; gauges that
//! match the database; and output that parses as the Prometheus text format.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use reqwest::StatusCode;
use writ::db::schema::orders;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};
use crate::orders::{Api, ORDER, PARIS, json_of, submission};

both_backends!(
    metrics_are_off_by_default,
    a_bearer_token_opens_the_metrics,
    allowed_networks_admit_the_peer_and_forwarded_for_only_behind_trusted_proxies,
    requests_are_counted_by_route_pattern_method_and_status_class,
    gauges_reflect_the_database,
    a_database_failure_answers_503_without_details,
);

/// A token and its hash, as `[metrics] token_sha256` wants it.
fn token() -> (String, String) {
    writ::web::auth::new_token().unwrap()
}

async fn get(
    app: &TestApp,
    path: &str,
    bearer: Option<&str>,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.address));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap()
}

/// Scrapes with the token, checks the format, and returns the text and its samples.
async fn scrape(app: &TestApp, bearer: &str) -> (String, Exposition) {
    let res = get(app, "/metrics", Some(bearer), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = res.text().await.unwrap();
    let parsed = Exposition::parse(&text);
    (text, parsed)
}

async fn metrics_are_off_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let unknown: serde_json::Value = get(&app, "/no-such-page", None, None)
        .await
        .json()
        .await
        .unwrap();
    for bearer in [None, Some("anything")] {
        let res = get(&app, "/metrics", bearer, None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(res.headers().get("www-authenticate").is_none());
        // Indistinguishable from a path Writ does not serve.
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body, unknown);
    }
}

async fn a_bearer_token_opens_the_metrics(backend: Backend) {
    let (token, hash) = token();
    let app = spawn_app_with(backend, &[("WRIT_METRICS__TOKEN_SHA256", &hash)]).await;

    let (text, _) = scrape(&app, &token).await;
    assert!(text.contains("writ_build_info{version=\""), "{text}");
    assert!(!text.contains(&token) && !text.contains(&hash));

    let (other, _) = self::token();
    for bearer in [Some(other.as_str()), Some(""), None] {
        let res = get(&app, "/metrics", bearer, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bearer:?}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(!res.text().await.unwrap().contains("writ_"));
    }
    // A token is not an address: the loopback peer alone does not pass.
    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn allowed_networks_admit_the_peer_and_forwarded_for_only_behind_trusted_proxies(
    backend: Backend,
) {
    // The test client's TCP peer address is 127.0.0.1.
    let app = spawn_app_with(
        backend,
        &[("WRIT_METRICS__ALLOWED_NETWORKS", "::1/128,127.0.0.1/32")],
    )
    .await;
    assert_eq!(
        get(&app, "/metrics", None, None).await.status(),
        StatusCode::OK
    );
    drop(app);

    let app = spawn_app_with(backend, &[("WRIT_METRICS__ALLOWED_NETWORKS", "10.0.0.0/8")]).await;
    let res = get(&app, "/metrics", None, None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("www-authenticate").is_none());
    // Without trusted proxies, what the client claims is ignored.
    let res = get(&app, "/metrics", None, Some("10.1.2.3")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    drop(app);

    let app = spawn_app_with(
        backend,
        &[
            ("WRIT_METRICS__ALLOWED_NETWORKS", "10.0.0.0/8"),
            ("WRIT_API__TRUSTED_PROXY_HOPS", "1"),
        ],
    )
    .await;
    // One trusted proxy (the test client plays it): the entry it appended is the client.
    let res = get(&app, "/metrics", None, Some("10.1.2.3")).await;
    assert_eq!(res.status(), StatusCode::OK);
    // An entry the client wrote before the proxy's own is not believed.
    let res = get(&app, "/metrics", None, Some("10.1.2.3, 192.0.2.7")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // No header: the peer itself, outside the networks.
    let res = get(&app, "/metrics", None, None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

async fn requests_are_counted_by_route_pattern_method_and_status_class(backend: Backend) {
    let (token, hash) = token();
    let app = spawn_app_with(backend, &[("WRIT_METRICS__TOKEN_SHA256", &hash)]).await;
    for _ in 0..3 {
        assert_eq!(
            get(&app, "/healthz", None, None).await.status(),
            StatusCode::OK
        );
    }
    for path in ["/no/such/path-7f3a", "/wp-login.php?user=admin-7f3a"] {
        assert_eq!(
            get(&app, path, None, None).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    // A parameterised route counts under its pattern, whatever the id.
    let res = get(&app, "/api/v1/orders/secret-id-7f3a", None, None).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    // Made-up methods share one label value.
    for method in ["PROPFIND", "XYZZY"] {
        app.client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/healthz", app.address),
            )
            .send()
            .await
            .unwrap();
    }

    let (text, first) = scrape(&app, &token).await;
    let route = |r: &'static str, m: &'static str| [("route", r), ("method", m)];
    let with_status = |r: &'static str, m: &'static str, s: &'static str| {
        [("route", r), ("method", m), ("status", s)]
    };
    assert_eq!(
        first.value(
            "writ_http_requests_total",
            &with_status("/healthz", "GET", "2xx")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        first.value(
            "writ_http_request_duration_seconds_count",
            &route("/healthz", "GET")
        ),
        Some(3.0)
    );
    let inf = [("route", "/healthz"), ("method", "GET"), ("le", "+Inf")];
    assert_eq!(
        first.value("writ_http_request_duration_seconds_bucket", &inf),
        Some(3.0)
    );
    assert!(
        first
            .value(
                "writ_http_request_duration_seconds_sum",
                &route("/healthz", "GET")
            )
            .is_some_and(|s| s > 0.0 && s < 3.0)
    );
    assert_eq!(
        first.value(
            "writ_http_requests_total",
            &with_status("unmatched", "GET", "4xx")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        first.value(
            "writ_http_request_duration_seconds_count",
            &route("unmatched", "GET")
        ),
        Some(2.0)
    );
    let by_id = first.label_values("writ_http_requests_total", "route");
    assert!(by_id.contains("/api/v1/orders/{id}"), "{by_id:?}");
    assert_eq!(
        first
            .samples
            .iter()
            .filter(|s| s.name == "writ_http_requests_total" && s.label("method") == Some("other"))
            .map(|s| s.value)
            .sum::<f64>(),
        2.0,
        "{text}"
    );
    for raw in ["7f3a", "wp-login", "PROPFIND", "XYZZY"] {
        assert!(!text.contains(raw), "raw request data `{raw}` in:\n{text}");
    }
    for r in &by_id {
        assert!(r == "unmatched" || r.starts_with('/'), "{r}");
    }

    // A scrape counts once it is answered: the next one sees the first.
    let (_, second) = scrape(&app, &token).await;
    assert_eq!(
        second.value(
            "writ_http_requests_total",
            &with_status("/metrics", "GET", "2xx")
        ),
        Some(1.0)
    );
    assert_eq!(
        second.value(
            "writ_http_requests_total",
            &with_status("/healthz", "GET", "2xx")
        ),
        Some(3.0)
    );
}

async fn gauges_reflect_the_database(backend: Backend) {
    let (token, hash) = token();
    let api = Api::start(
        backend,
        &[
            ("WRIT_METRICS__TOKEN_SHA256", &hash),
            ("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example"),
            // The mail sender runs once at start, then not during the test: mail stays queued.
            ("WRIT_API__JOBS_INTERVAL_SECS", "3600"),
        ],
    )
    .await;
    let app = &api.app;

    let (_, empty) = scrape(app, &token).await;
    for status in ["under_review", "awaiting_clarification", "approved"] {
        assert_eq!(
            empty.value("writ_orders_open", &[("status", status)]),
            Some(0.0)
        );
    }
    let open = empty.label_values("writ_orders_open", "status");
    assert_eq!(open.len(), 3, "closed statuses are not gauged: {open:?}");
    for status in ["queued", "sending", "failed"] {
        assert_eq!(
            empty.value("writ_mail_queue_depth", &[("status", status)]),
            Some(0.0)
        );
    }
    for status in ["queued", "sending", "acknowledged", "failed", "on_request"] {
        assert_eq!(
            empty.value("writ_etsi_deliveries", &[("status", status)]),
            Some(0.0)
        );
    }
    assert_eq!(empty.value("writ_orders_past_deadline", &[]), Some(0.0));

    let mut ids = Vec::new();
    for n in 0..4 {
        let body = submission(&ORDER.replace("PR-2026-0042", &format!("PR-2026-77{n}")));
        let (status, created) = json_of(api.submit(PARIS, &body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["status"], "under_review");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let withdraw = format!("/api/v1/orders/{}/withdraw", ids[3]);
    let (status, withdrawn) = json_of(
        api.send(PARIS, "POST", &withdraw, br#"{"reason": "case closed"}"#)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");

    // One open order overdue, one due in two hours, one in ten days; the withdrawn one is
    // overdue too but closed.
    let now = chrono::Utc::now().timestamp_micros();
    let hour = 3_600_000_000i64;
    let deadlines = [
        (ids[0].clone(), now - hour),
        (ids[1].clone(), now + 2 * hour),
        (ids[2].clone(), now + 240 * hour),
        (ids[3].clone(), now - hour),
    ];
    let (audit_size, queued) = app
        .pool
        .run(move |conn| {
            for (id, at) in &deadlines {
                diesel::update(orders::table.find(id))
                    .set(orders::deadline_at.eq(Some(*at)))
                    .execute(conn)?;
            }
            let size = writ::audit::log::size(conn).unwrap();
            let queued: i64 = writ::db::schema::mail_outbox::table
                .filter(writ::db::schema::mail_outbox::status.eq("queued"))
                .count()
                .get_result(conn)?;
            Ok::<_, writ::db::DbError>((size, queued))
        })
        .await
        .unwrap();

    let (text, gauges) = scrape(app, &token).await;
    assert_eq!(
        gauges.value("writ_orders_open", &[("status", "under_review")]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        gauges.value("writ_orders_open", &[("status", "approved")]),
        Some(0.0)
    );
    assert_eq!(gauges.value("writ_orders_past_deadline", &[]), Some(1.0));
    assert_eq!(gauges.value("writ_orders_due_within_24h", &[]), Some(1.0));
    assert!(audit_size > 0);
    assert_eq!(
        gauges.value("writ_audit_log_entries", &[]),
        Some(audit_size as f64)
    );
    assert!(queued > 0, "new orders notify the legal team");
    assert_eq!(
        gauges.value("writ_mail_queue_depth", &[("status", "queued")]),
        Some(queued as f64)
    );
}

async fn a_database_failure_answers_503_without_details(backend: Backend) {
    let (token, hash) = token();
    let app = spawn_app_with(backend, &[("WRIT_METRICS__TOKEN_SHA256", &hash)]).await;
    app.pool
        .run(|conn| {
            diesel::sql_query("ALTER TABLE etsi_deliveries RENAME TO etsi_deliveries_away")
                .execute(conn)?;
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
    let res = get(&app, "/metrics", Some(&token), None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = res.text().await.unwrap();
    assert!(
        !body.contains("etsi") && !body.contains("relation") && !body.contains("table"),
        "{body}"
    );
    assert!(!body.contains("writ_"), "{body}");
}

/// A sample's labels other than `le`, in order: one histogram series.
type Labels = Vec<(String, String)>;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// A parsed exposition, checked against the text format's rules as it is read.
#[derive(Debug)]
struct Exposition {
    samples: Vec<Sample>,
}

impl Exposition {
    /// Parses and checks: every line a comment or a sample; every sample's family announced by
    /// HELP and TYPE before it; no sample twice; histograms cumulative, ending with `+Inf`
    /// equal to `_count`, with a `_sum`.
    fn parse(text: &str) -> Self {
        assert!(text.ends_with('\n'), "the last line ends with a newline");
        let mut help = HashSet::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = Vec::new();
        let mut seen = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, doc) = rest.split_once(' ').expect("HELP name text");
                assert!(valid_name(name) && !doc.is_empty(), "{line}");
                assert!(help.insert(name.to_owned()), "HELP twice: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(valid_name(name), "{line}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "TYPE twice: {line}"
                );
                continue;
            }
            assert!(
                !line.starts_with('#') && !line.trim().is_empty(),
                "stray line: {line:?}"
            );
            let sample = parse_sample(line);
            let family = family_of(&sample.name, &types)
                .unwrap_or_else(|| panic!("no TYPE before `{line}`"));
            assert!(help.contains(&family), "no HELP before `{line}`");
            assert!(
                seen.insert(format!("{}{:?}", sample.name, sample.labels)),
                "duplicate sample: {line}"
            );
            samples.push(sample);
        }
        let exposition = Self { samples };
        for (name, kind) in &types {
            if kind == "histogram" {
                exposition.check_histogram(name);
            }
        }
        exposition
    }

    fn check_histogram(&self, name: &str) {
        let bucket = format!("{name}_bucket");
        let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == bucket) {
            let le = s.label("le").expect("bucket without le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().expect("numeric le")
            };
            let key: Labels = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            series.entry(key).or_default().push((le, s.value));
        }
        for (labels, buckets) in series {
            for pair in buckets.windows(2) {
                assert!(pair[0].0 < pair[1].0, "{name}{labels:?}: le not increasing");
                assert!(
                    pair[0].1 <= pair[1].1,
                    "{name}{labels:?}: buckets not cumulative"
                );
            }
            let last = buckets.last().unwrap();
            assert_eq!(last.0, f64::INFINITY, "{name}{labels:?}: no +Inf bucket");
            let find = |suffix: &str| {
                let want: BTreeMap<String, String> = labels.iter().cloned().collect();
                self.samples
                    .iter()
                    .find(|s| s.name == format!("{name}{suffix}") && s.labels == want)
                    .map(|s| s.value)
            };
            assert_eq!(
                find("_count"),
                Some(last.1),
                "{name}{labels:?}: +Inf != _count"
            );
            assert!(
                find("_sum").is_some_and(|v| v >= 0.0),
                "{name}{labels:?}: no _sum"
            );
        }
    }

    /// The value of the sample with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Every value the label takes in the samples of `name`.
    fn label_values(&self, name: &str, label: &str) -> HashSet<String> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.label(label).map(str::to_owned))
            .collect()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The family a sample belongs to: its own name, or a histogram's name without the suffix.
fn family_of(sample: &str, types: &HashMap<String, String>) -> Option<String> {
    if types.contains_key(sample) {
        return Some(sample.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = sample.strip_suffix(suffix)?;
        (types.get(base).map(String::as_str) == Some("histogram")).then(|| base.to_owned())
    })
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name: {line}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end;
        loop {
            // label name
            let start = chars.peek().map(|(i, _)| *i).unwrap_or(inner.len());
            let mut key_end = start;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    key_end = i;
                    break;
                }
            }
            let key = &inner[start..key_end];
            assert!(
                valid_name(key) && !key.contains(':'),
                "bad label name in {line}"
            );
            assert_eq!(
                chars.next().map(|(_, c)| c),
                Some('"'),
                "unquoted value: {line}"
            );
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            }
            assert!(
                labels.insert(key.to_owned(), value).is_none(),
                "label twice: {line}"
            );
            match chars.next() {
                Some((_, ',')) if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    end = chars.next().map(|(i, _)| i);
                    break;
                }
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    end = Some(i);
                    break;
                }
                other => panic!("unexpected {other:?} in {line}"),
            }
        }
        rest = &inner[end.unwrap() + 1..];
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    assert!(!value.contains(' '), "timestamps are not expected: {line}");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("non-numeric value: {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

#[test]
fn the_format_checker_refuses_what_prometheus_would() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\"} 1\n\
              # HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
              h_sum 0.5\nh_count 2\n";
    let parsed = Exposition::parse(ok);
    assert_eq!(parsed.value("a_total", &[("x", "q\"")]), Some(1.0));
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a A.\n# TYPE a gauge\na one\n",
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
    ] {
        let result = std::panic::catch_unwind(|| Exposition::parse(bad));
        assert!(result.is_err(), "accepted:\n{bad}");
    }
}
