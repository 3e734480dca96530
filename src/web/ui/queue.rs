//! The queue of orders.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::order::mixed_scripts;
use super::session::Frame;
use super::{Signed, UiError, html};
use crate::db::Db;
use crate::orders::OrderStatus;
use crate::orders::review::{self, QueueFilter, QueueRow};
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/queue.html")]
struct QueuePage {
    frame: Frame,
    rows: Vec<QueueRow>,
    status: String,
    jurisdiction: String,
    emergency: bool,
    page: u32,
    page_size: u32,
    more: bool,
}

impl QueuePage {
    /// Whether `value` mixes writing systems (it may imitate another value).
    fn mixed(&self, value: &str) -> bool {
        mixed_scripts(value)
    }

    fn is_status(&self, s: &str) -> bool {
        self.status == s
    }

    /// The first row's number on this page, from 1.
    fn first(&self) -> u64 {
        u64::from(self.page) * u64::from(self.page_size) + 1
    }

    /// The link to another page with the same filters (all validated plain ASCII).
    fn page_link(&self, page: u32) -> String {
        let mut link = format!("/orders?page={page}&per_page={}", self.page_size);
        if !self.status.is_empty() {
            link.push_str(&format!("&status={}", self.status));
        }
        if !self.jurisdiction.is_empty() {
            link.push_str(&format!("&jurisdiction={}", self.jurisdiction));
        }
        if self.emergency {
            link.push_str("&emergency=1");
        }
        link
    }
}

/// The queue's filters.
#[derive(Deserialize)]
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
    let filter = QueueFilter {
        status,
        jurisdiction: (!jurisdiction.is_empty()).then(|| jurisdiction.clone()),
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
    };
    let found = db
        .run(move |conn| review::queue(conn, &filter, Utc::now()))
        .await?;
    Ok(html(
        StatusCode::OK,
        &QueuePage {
            frame: Frame { staff },
            rows: found.rows,
            status: q.status,
            jurisdiction,
            emergency: q.emergency.is_some(),
            page: q.page,
            page_size,
            more: found.more,
        },
    ))
}
