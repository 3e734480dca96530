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
    event: String,
    order: String,
    actor: String,
}

/// Filters of the audit page.
#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    event: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    actor: String,
}

/// `GET /audit-log`: the disclosure log, the audit log with filters, and the downloads for
/// offline verification (auditors).
#[get("/audit-log")]
pub async fn audit_log(
    signed: Signed,
    query: web::Query<AuditQuery>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Audit)?.clone();
    let q = query.into_inner();
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
    let (event, order_id, actor) = (
        q.event.trim().to_owned(),
        q.order.trim().to_owned(),
        q.actor.trim().to_owned(),
    );
    let given = |v: &String| (!v.is_empty()).then(|| v.clone());
    let mut filter = crate::audit::search::Filter {
        event: given(&event),
        order_id: given(&order_id),
        actor_id: given(&actor),
        ..Default::default()
    };
    let (disclosures, entries) = db
        .run(move |conn| {
            // The order filter takes the reference people know as well as the internal id.
            if let Some(key) = filter.order_id.take() {
                filter.order_id =
                    Some(crate::orders::review::resolve_order_key(conn, &key)?.unwrap_or(key));
            }
            let disclosures = crate::orders::approval::disclosure_log(conn)?;
            let entries = crate::audit::search::search(
                conn,
                &filter,
                crate::audit::search::Direction::NewestFirst,
                500,
            )?;
            Ok::<_, crate::orders::OrderError>((disclosures, entries))
        })
        .await?;
    Ok(html(
        StatusCode::OK,
        &AuditPage {
            frame: Frame { staff },
            disclosures,
            entries,
            event,
            order: order_id,
            actor,
        },
    ))
}
