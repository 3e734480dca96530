//! The queue of orders: filters, search (by reference, target identifier, authority), saved
//! filters, and its CSV export.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::order::mixed_scripts;
use super::session::Frame;
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::orders::OrderStatus;
use crate::orders::review::{self, QueueFilter, QueueRow};
use crate::staff::Permission;
use crate::staff::desk::SavedFilter;

#[derive(Template)]
#[template(path = "ui/queue.html")]
struct QueuePage {
    frame: Frame,
    rows: Vec<QueueRow>,
    q: QueueQuery,
    emergency: bool,
    page: u32,
    page_size: u32,
    more: bool,
    saved: Vec<SavedFilter>,
    assignees: Vec<(String, String)>,
    names: std::collections::HashMap<String, String>,
}

impl QueuePage {
    /// An instant in the viewer's time zone (UTC on hover).
    fn when(&self, at: &chrono::DateTime<Utc>) -> super::when::When {
        super::when::When::new(*at, &self.frame.staff.time_zone)
    }

    /// Whether `value` mixes writing systems (it may imitate another value).
    fn mixed(&self, value: &str) -> bool {
        mixed_scripts(value)
    }

    fn is_status(&self, s: &str) -> bool {
        self.q.status == s
    }

    fn is_outcome(&self, s: &str) -> bool {
        self.q.outcome == s
    }

    fn is_assignee(&self, s: &str) -> bool {
        self.q.assignee == s
    }

    /// A colleague's name, for the assignee column.
    fn name_of(&self, username: &str) -> String {
        self.names
            .get(username)
            .cloned()
            .unwrap_or_else(|| username.to_owned())
    }

    /// The first row's number on this page, from 1.
    fn first(&self) -> u64 {
        u64::from(self.page) * u64::from(self.page_size) + 1
    }

    /// The filters as a query string (without the page).
    fn filters(&self) -> String {
        self.q.canonical()
    }

    /// The link to another page with the same filters.
    fn page_link(&self, page: u32) -> String {
        format!(
            "/orders?{}&page={page}&per_page={}",
            self.q.canonical(),
            self.page_size
        )
    }
}

/// The queue's filters, as the form and links send them.
#[derive(Deserialize, Default, Clone)]
pub struct QueueQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    jurisdiction: String,
    #[serde(default)]
    emergency: Option<String>,
    #[serde(default)]
    page: u32,
    #[serde(default)]
    per_page: Option<u32>,
    /// Reference contains.
    #[serde(default)]
    reference: String,
    /// A target identifier exactly as the order gives it (audited).
    #[serde(default)]
    target: String,
    /// Authority name or registry id contains.
    #[serde(default)]
    authority: String,
    /// The authority's country (ISO 3166-1 alpha-2).
    #[serde(default)]
    country: String,
    /// Instrument id.
    #[serde(default)]
    instrument: String,
    /// The engine's verdict.
    #[serde(default)]
    outcome: String,
    /// Received on or after (YYYY-MM-DD, UTC).
    #[serde(default)]
    received_from: String,
    /// Received on or before (YYYY-MM-DD, UTC).
    #[serde(default)]
    received_to: String,
    /// `me`, `none` or a username.
    #[serde(default)]
    assignee: String,
    /// Only orders the authority replied on.
    #[serde(default)]
    replied: Option<String>,
}

/// The engine verdicts the queue filters by.
const OUTCOMES: [&str; 4] = [
    "acceptable_for_review",
    "needs_human_judgement",
    "clarification_needed",
    "refused",
];

impl QueueQuery {
    /// The filters (not the page) as a query string, every value encoded.
    fn canonical(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("jurisdiction", &self.jurisdiction),
            ("reference", &self.reference),
            ("target", &self.target),
            ("authority", &self.authority),
            ("country", &self.country),
            ("instrument", &self.instrument),
            ("outcome", &self.outcome),
            ("received_from", &self.received_from),
            ("received_to", &self.received_to),
            ("assignee", &self.assignee),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if self.emergency.is_some() {
            s.append_pair("emergency", "1");
        }
        if self.replied.is_some() {
            s.append_pair("replied", "1");
        }
        s.finish()
    }
}

/// A filter value: trimmed, at most `max` characters, no control characters.
fn text(name: &str, value: &str, max: usize) -> Result<Option<String>, UiError> {
    let v = value.trim();
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(UiError::BadRequest(format!(
            "{name}: at most {max} characters of text"
        )));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn date(name: &str, value: &str) -> Result<Option<NaiveDate>, UiError> {
    match value.trim() {
        "" => Ok(None),
        v => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| UiError::BadRequest(format!("{name}: a date such as 2026-12-07"))),
    }
}

fn micros_of(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default()
}

/// What the queue's query asks for, checked: the filter, and the authority text and country
/// still to resolve to registry ids.
struct Parsed {
    filter: QueueFilter,
    authority: Option<String>,
    country: Option<String>,
}

/// Checks the queue's query and turns it into a filter; every bad value is a 422 naming it.
fn parse(
    q: &QueueQuery,
    me: &str,
    settings: &crate::settings::WorkspaceSettings,
) -> Result<Parsed, UiError> {
    let status = match q.status.as_str() {
        "" => None,
        s => Some(
            OrderStatus::parse(s)
                .ok_or_else(|| UiError::BadRequest(format!("`{s}` is not an order status")))?,
        ),
    };
    let jurisdiction = q.jurisdiction.trim().to_lowercase();
    if jurisdiction.len() > 20 || !jurisdiction.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(UiError::BadRequest(
            "the jurisdiction is a short code such as eu or fr".into(),
        ));
    }
    if q.page > 1_000_000 {
        return Err(UiError::BadRequest("page is at most 1000000".into()));
    }
    let page_size = q.per_page.unwrap_or(review::DEFAULT_PAGE_SIZE);
    if !(1..=review::MAX_PAGE_SIZE).contains(&page_size) {
        return Err(UiError::BadRequest(format!(
            "per_page is from 1 to {}",
            review::MAX_PAGE_SIZE
        )));
    }
    let country = text("country", &q.country, 2)?;
    if let Some(c) = &country
        && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(UiError::BadRequest(
            "country: two letters (ISO 3166-1), e.g. FR".into(),
        ));
    }
    let instrument = text("instrument", &q.instrument, 64)?;
    if let Some(i) = &instrument
        && !i
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(UiError::BadRequest(
            "instrument: an instrument id such as eu.e_evidence.production".into(),
        ));
    }
    let outcome = text("outcome", &q.outcome, 40)?;
    if let Some(o) = &outcome
        && !OUTCOMES.contains(&o.as_str())
    {
        return Err(UiError::BadRequest(format!(
            "outcome: one of {}",
            OUTCOMES.join(", ")
        )));
    }
    let from = date("received_from", &q.received_from)?;
    let to = date("received_to", &q.received_to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(UiError::BadRequest(
            "received_from: must not be after received_to".into(),
        ));
    }
    let assignee = match text("assignee", &q.assignee, 64)?.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some("me") => Some(Some(me.to_owned())),
        Some(u) => Some(Some(u.to_owned())),
    };
    Ok(Parsed {
        filter: QueueFilter {
            status,
            jurisdiction: (!jurisdiction.is_empty()).then_some(jurisdiction),
            emergency_only: q.emergency.is_some(),
            page: q.page,
            page_size,
            undated_targets: settings
                .undated_target_hours
                .iter()
                .filter(|(k, _)| k.as_str() != "default")
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            undated_default_hours: settings.undated_target_hours(""),
            reference: text("reference", &q.reference, 100)?,
            target: text("target", &q.target, 200)?,
            authorities: None,
            instrument,
            outcome,
            received_from: from.map(micros_of),
            received_before: to.and_then(|t| t.succ_opt()).map(micros_of),
            assignee,
            replied_only: q.replied.is_some(),
        },
        authority: text("authority", &q.authority, 100)?,
        country,
    })
}

/// Runs the queue query: resolves the authority filter, and goes through the audited search
/// when a target identifier is given.
async fn run(
    db: &Db,
    staff: &crate::staff::Staff,
    parsed: Parsed,
) -> Result<review::QueuePage, UiError> {
    let who = staff.clone();
    Ok(db
        .run(move |conn| {
            let Parsed {
                mut filter,
                authority,
                country,
            } = parsed;
            if authority.is_some() || country.is_some() {
                filter.authorities = Some(crate::orders::desk::resolve_authorities(
                    conn,
                    authority.as_deref(),
                    country.as_deref(),
                )?);
            }
            if filter.target.is_some() {
                crate::orders::desk::search_by_target(conn, &who, &filter, Utc::now())
            } else {
                review::queue(conn, &filter, Utc::now())
            }
        })
        .await?)
}

/// `GET /orders`: the queue.
#[get("/orders")]
pub async fn queue(
    signed: Signed,
    query: web::Query<QueueQuery>,
    db: web::Data<Db>,
    settings: web::Data<crate::settings::WorkspaceSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let q = query.into_inner();
    let parsed = parse(&q, &staff.username, &settings)?;
    let page_size = parsed.filter.page_size;
    let found = run(&db, &staff, parsed).await?;
    let me = staff.username.clone();
    let (saved, assignees, names) = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>((
                crate::staff::desk::saved_filters(conn, &me)?,
                crate::staff::desk::assignees(conn)?,
                crate::staff::desk::display_names(conn)?,
            ))
        })
        .await?;
    Ok(html(
        StatusCode::OK,
        &QueuePage {
            frame: Frame { staff },
            rows: found.rows,
            emergency: q.emergency.is_some(),
            page: q.page,
            page_size,
            more: found.more,
            q,
            saved,
            assignees,
            names,
        },
    ))
}

/// Cells a spreadsheet would run as a formula start with one of these: such a cell gets a
/// leading apostrophe (OWASP "CSV injection").
fn csv_cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

/// A CSV download.
pub(super) fn csv_download(name: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// Writes `rows` (the first one the header) as CSV, every cell guarded against formulas.
pub(super) fn csv_of(rows: &[Vec<String>]) -> Result<Vec<u8>, UiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(row.iter().map(|c| csv_cell(c)))
            .map_err(|_| UiError::Internal)?;
    }
    w.into_inner().map_err(|_| UiError::Internal)
}

/// `GET /orders/export.csv`: the queue as filtered, as CSV (every matching row, up to the
/// largest page).
#[get("/orders/export.csv")]
pub async fn export_queue(
    signed: Signed,
    query: web::Query<QueueQuery>,
    db: web::Data<Db>,
    settings: web::Data<crate::settings::WorkspaceSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let mut q = query.into_inner();
    q.page = 0;
    q.per_page = Some(review::MAX_PAGE_SIZE);
    let parsed = parse(&q, &staff.username, &settings)?;
    let found = run(&db, &staff, parsed).await?;
    let mut rows = vec![
        [
            "reference",
            "order_id",
            "authority",
            "instrument",
            "status",
            "outcome",
            "emergency",
            "received_at",
            "deadline_at",
            "assigned_to",
            "new_reply",
            "tasks",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let utc = |d: chrono::DateTime<Utc>| d.format("%Y-%m-%d %H:%M UTC").to_string();
    for r in found.rows {
        rows.push(vec![
            r.reference,
            r.id,
            r.authority_id,
            r.instrument,
            r.status.as_str().to_owned(),
            r.outcome,
            r.emergency.to_string(),
            utc(r.received_at),
            r.deadline_at.map(utc).unwrap_or_default(),
            r.assigned_to.unwrap_or_default(),
            r.reply_unread.to_string(),
            r.tasks.join("; "),
        ]);
    }
    Ok(csv_download("queue.csv", csv_of(&rows)?))
}

/// The form that saves the current filters under a name.
#[derive(Deserialize)]
pub struct SaveFilterForm {
    csrf: String,
    /// Missing: refused by field (422) after the role check.
    #[serde(default)]
    name: String,
    /// The filters as a query string (checked now and whenever used).
    #[serde(default)]
    query: String,
}

/// `POST /filters`: saves the queue's current filters under a name (for the signed-in user).
#[post("/filters")]
pub async fn save_filter(
    signed: Signed,
    form: web::Form<SaveFilterForm>,
    db: web::Data<Db>,
    settings: web::Data<crate::settings::WorkspaceSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let SaveFilterForm { name, query, .. } = form.into_inner();
    let parsed: QueueQuery = serde_urlencoded::from_str(&query)
        .map_err(|_| UiError::BadRequest("query: not a queue filter".into()))?;
    // Only a filter the queue accepts is saved, in its canonical form.
    parse(&parsed, &staff.username, &settings)?;
    let canonical = parsed.canonical();
    let redirect = canonical.clone();
    db.run(move |conn| {
        crate::staff::desk::save_filter(conn, &staff.username, &name, &canonical, Utc::now())
    })
    .await?;
    Ok(see_other(&format!("/orders?{redirect}")))
}

/// `POST /filters/{id}/delete`: deletes one of the user's saved filters.
#[post("/filters/{id}/delete")]
pub async fn delete_filter(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<super::session::CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let gone = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(crate::staff::desk::delete_filter(
                conn,
                &staff.username,
                &id,
            )?)
        })
        .await?;
    if gone == 0 {
        return Err(UiError::NotFound);
    }
    Ok(see_other("/orders"))
}
