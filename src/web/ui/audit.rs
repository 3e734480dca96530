//! The audit page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::session::Frame;
use super::{Signed, UiError, html};
use crate::db::Db;
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct AuditPage {
    frame: Frame,
    disclosures: Vec<crate::orders::approval::DisclosureRow>,
    entries: Vec<crate::audit::log::StoredEntry>,
    q: AuditQuery,
    /// Order id to reference, for the entries shown.
    references: std::collections::HashMap<String, String>,
    /// The position to page back from, when older entries follow.
    older: Option<i64>,
}

impl AuditPage {
    /// The order an entry concerns, by the reference people know (the id when it has none).
    fn reference_of(&self, id: &str) -> String {
        self.references
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// A stored instant in the viewer's time zone (UTC on hover in the template).
    fn when_text(&self, at: &str) -> String {
        chrono::DateTime::parse_from_rfc3339(at)
            .map(|d| {
                super::when::When::new(d.with_timezone(&chrono::Utc), &self.frame.staff.time_zone)
                    .to_string()
            })
            .unwrap_or_else(|_| at.to_owned())
    }

    /// The filters as a query string (without the page).
    fn filters(&self) -> String {
        self.q.canonical()
    }

    fn event_words(&self, event: &str) -> String {
        super::when::event_words(event)
    }
}

/// Filters of the audit page.
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    event: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    actor: String,
    /// Entries on or after this day (YYYY-MM-DD, UTC).
    #[serde(default)]
    from: String,
    /// Entries on or before this day (YYYY-MM-DD, UTC).
    #[serde(default)]
    to: String,
    /// Keyset paging: only entries before this position.
    #[serde(default)]
    before: Option<u64>,
}

impl AuditQuery {
    fn canonical(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("event", &self.event),
            ("order", &self.order),
            ("actor", &self.actor),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        s.finish()
    }
}

/// Entries on one page of the audit log.
const PAGE: i64 = 500;
/// The most entries one CSV export holds.
const CSV_MAX: i64 = 100_000;

/// Checks the query and turns it into a search filter (the order still as typed).
fn filter_of(q: &AuditQuery) -> Result<crate::audit::search::Filter, UiError> {
    for (name, value) in [
        ("event", &q.event),
        ("order", &q.order),
        ("actor", &q.actor),
    ] {
        if value.len() > 100 || value.chars().any(char::is_control) {
            return Err(UiError::BadRequest(format!(
                "the {name} filter is too long or not text"
            )));
        }
    }
    let day = |name: &str, v: &str| -> Result<Option<chrono::NaiveDate>, UiError> {
        match v.trim() {
            "" => Ok(None),
            v => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| UiError::BadRequest(format!("{name}: a date such as 2026-12-07"))),
        }
    };
    let (from, to) = (day("from", &q.from)?, day("to", &q.to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(UiError::BadRequest("from: must not be after to".into()));
    }
    let leaf_time = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| crate::audit::entry::format_time(t.and_utc()))
    };
    let before = q
        .before
        .map(|b| i64::try_from(b).map_err(|_| UiError::BadRequest("before: too large".into())))
        .transpose()?;
    let given = |v: &String| (!v.trim().is_empty()).then(|| v.trim().to_owned());
    Ok(crate::audit::search::Filter {
        event: given(&q.event),
        order_id: given(&q.order),
        actor_id: given(&q.actor),
        since: from.and_then(leaf_time),
        until: to.and_then(|t| t.succ_opt()).and_then(leaf_time),
        before,
        ..Default::default()
    })
}

/// Resolves the order filter (a reference people know, or the internal id).
fn resolve(
    conn: &mut crate::db::DbConn,
    filter: &mut crate::audit::search::Filter,
) -> Result<(), crate::orders::OrderError> {
    if let Some(key) = filter.order_id.take() {
        filter.order_id =
            Some(crate::orders::review::resolve_order_key(conn, &key)?.unwrap_or(key));
    }
    Ok(())
}

/// `GET /audit-log`: the disclosure log, the audit log with filters (500 entries a page,
/// newest first, paged by position), and the downloads for offline verification (auditors).
#[get("/audit-log")]
pub async fn audit_log(
    signed: Signed,
    query: web::Query<AuditQuery>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Audit)?.clone();
    let q = query.into_inner();
    let mut filter = filter_of(&q)?;
    let (disclosures, mut entries, references) = db
        .run(move |conn| {
            resolve(conn, &mut filter)?;
            let disclosures = crate::orders::approval::disclosure_log(conn)?;
            let entries = crate::audit::search::search(
                conn,
                &filter,
                crate::audit::search::Direction::NewestFirst,
                PAGE + 1,
            )?;
            let ids: Vec<String> = entries.iter().filter_map(|e| e.order_id.clone()).collect();
            let references = crate::orders::review::references(conn, &ids)?;
            Ok::<_, crate::orders::OrderError>((disclosures, entries, references))
        })
        .await?;
    let more = entries.len() > PAGE as usize;
    entries.truncate(PAGE as usize);
    let older = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(html(
        StatusCode::OK,
        &AuditPage {
            frame: Frame { staff },
            disclosures,
            entries,
            q,
            references,
            older,
        },
    ))
}

/// `GET /audit-log/export.csv`: the filtered audit log as CSV (newest first, with order
/// references), every cell guarded against spreadsheet formulas.
#[get("/audit-log/export.csv")]
pub async fn export_audit_log(
    signed: Signed,
    query: web::Query<AuditQuery>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    signed.require(Permission::Audit)?;
    let mut filter = filter_of(&query.into_inner())?;
    let (entries, references) = db
        .run(move |conn| {
            resolve(conn, &mut filter)?;
            let entries = crate::audit::search::search(
                conn,
                &filter,
                crate::audit::search::Direction::NewestFirst,
                CSV_MAX,
            )?;
            let ids: Vec<String> = entries.iter().filter_map(|e| e.order_id.clone()).collect();
            let references = crate::orders::review::references(conn, &ids)?;
            Ok::<_, crate::orders::OrderError>((entries, references))
        })
        .await?;
    let mut rows = vec![
        [
            "seq",
            "at",
            "actor_kind",
            "actor",
            "event",
            "order_reference",
            "order_id",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for e in entries {
        let reference = e
            .order_id
            .as_ref()
            .and_then(|o| references.get(o).cloned())
            .unwrap_or_default();
        rows.push(vec![
            e.seq.to_string(),
            e.at,
            e.actor_kind,
            e.actor_id,
            e.event,
            reference,
            e.order_id.unwrap_or_default(),
        ]);
    }
    Ok(super::queue::csv_download(
        "audit-log.csv",
        super::queue::csv_of(&rows)?,
    ))
}

/// `GET /audit-log/disclosures.csv`: the disclosure log as CSV.
#[get("/audit-log/disclosures.csv")]
pub async fn export_disclosures(
    signed: Signed,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    signed.require(Permission::Audit)?;
    let rows_in = db.run(crate::orders::approval::disclosure_log).await?;
    let mut rows = vec![
        [
            "released_at",
            "order_reference",
            "order_id",
            "authority",
            "instrument",
            "fields",
            "record_counts",
            "approvers",
            "package_sha256",
            "release_seq",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for r in rows_in {
        rows.push(vec![
            r.released_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            r.reference,
            r.order_id,
            r.authority_id,
            r.instrument,
            r.fields,
            r.record_counts.to_string(),
            r.approvers.to_string(),
            r.package_sha256,
            r.release_seq.to_string(),
        ]);
    }
    Ok(super::queue::csv_download(
        "disclosure-log.csv",
        super::queue::csv_of(&rows)?,
    ))
}
