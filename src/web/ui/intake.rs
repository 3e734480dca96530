//! Manual intake of an order.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;

use super::session::Frame;
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::policy::{Deployment, PolicySet};
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/new_order.html")]
struct NewOrderPage {
    frame: Frame,
    authorities: Vec<(String, String)>,
}

/// `GET /orders/new`: the manual intake form.
#[get("/orders/new")]
pub async fn new_order_form(signed: Signed, db: web::Data<Db>) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::EnterOrders)?.clone();
    let authorities = db
        .run(|conn| {
            crate::authority::list(conn).map_err(|e| crate::db::DbError::Unavailable(e.to_string()))
        })
        .await?
        .into_iter()
        .filter(|(a, _)| a.status == "active")
        .map(|(a, _)| {
            let label = format!("{} ({}, {}, {})", a.name, a.id, a.country, a.kind);
            (a.id, label)
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &NewOrderPage {
            frame: Frame { staff },
            authorities,
        },
    ))
}

/// Reads one multipart field, at most `limit` bytes (`setting` names where the limit comes
/// from): more is a 413.
async fn field_bytes(
    field: &mut actix_multipart::Field,
    name: &str,
    limit: usize,
    setting: &str,
) -> Result<Vec<u8>, UiError> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| UiError::BadRequest(format!("the upload failed: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(UiError::TooLarge(format!(
                "The field `{name}` may be at most {limit} bytes ({setting})."
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `POST /orders/new`: enter an order by hand (multipart: the order JSON and its PDF).
#[post("/orders/new")]
pub async fn enter_order(
    signed: Signed,
    req: HttpRequest,
    payload: web::Payload,
    db: web::Data<Db>,
    policies: web::Data<PolicySet>,
    deployment: web::Data<Deployment>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    use futures_util::StreamExt;
    let mail = mail.into_inner();
    let staff = signed.require(Permission::EnterOrders)?.clone();
    let (limit, body_limit, accept_unbound) = req
        .app_data::<web::Data<crate::web::api::ApiState>>()
        .map(|api| {
            (
                api.document_limit(),
                api.body_limit(),
                api.accept_unbound_validations(),
            )
        })
        .ok_or(UiError::Internal)?;
    // The role is checked before the body is read; a body declared larger than the whole
    // form may be is refused unread.
    if crate::web::body::check_declared_length(&req, body_limit).is_err() {
        return Err(UiError::TooLarge(format!(
            "The form may be at most {body_limit} bytes (the document's api.document_limit_bytes in base64, plus 1 MiB)."
        )));
    }
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut fields: std::collections::HashMap<String, Vec<u8>> = std::collections::HashMap::new();
    // The whole upload must arrive within server.body_read_timeout_secs.
    let (deadline, secs) = crate::web::security::body_deadline(&req);
    let too_slow = || {
        UiError::TooSlow(format!(
            "The upload did not arrive within {secs} seconds (server.body_read_timeout_secs)."
        ))
    };
    while let Some(field) = tokio::time::timeout_at(deadline, form.next())
        .await
        .map_err(|_| too_slow())?
    {
        let mut field =
            field.map_err(|e| UiError::BadRequest(format!("the form is not valid: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        if ![
            "csrf",
            "authority",
            "received_at",
            "order",
            "document",
            "validation",
        ]
        .contains(&name.as_str())
        {
            return Err(UiError::BadRequest(format!(
                "unexpected form field `{name}`"
            )));
        }
        // Each field once: a repeated one would only be a way round the size limits.
        if fields.contains_key(&name) {
            return Err(UiError::BadRequest(format!(
                "the form field `{name}` is given twice"
            )));
        }
        let (max, setting) = if name == "document" {
            (limit, "api.document_limit_bytes")
        } else {
            (1024 * 1024, "1 MiB per text field")
        };
        let bytes = tokio::time::timeout_at(deadline, field_bytes(&mut field, &name, max, setting))
            .await
            .map_err(|_| too_slow())??;
        fields.insert(name, bytes);
    }
    let text = |name: &str| -> Result<String, UiError> {
        String::from_utf8(fields.get(name).cloned().unwrap_or_default())
            .map_err(|_| UiError::BadRequest(format!("{name} is not text")))
    };
    signed.check_csrf(&text("csrf")?)?;
    let authority = text("authority")?;
    let received_at =
        chrono::NaiveDateTime::parse_from_str(text("received_at")?.trim(), "%Y-%m-%dT%H:%M")
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(
                    text("received_at").unwrap_or_default().trim(),
                    "%Y-%m-%dT%H:%M:%S",
                )
            })
            .map_err(|_| UiError::BadRequest("the date of receipt is not a date and time".into()))?
            .and_utc();
    let now = Utc::now();
    if received_at > now {
        return Err(UiError::BadRequest(
            "the date of receipt is in the future".into(),
        ));
    }
    let order_text = text("order")?;
    let validation = text("validation")?;
    let pdf = fields.remove("document").unwrap_or_default();
    let (set, dep) = (policies.into_inner(), deployment.into_inner());
    let id = db
        .run(move |conn| {
            let raw = serde_json::value::RawValue::from_string(order_text.trim().to_owned())
                .map_err(|e| crate::orders::OrderError::Invalid {
                    kind: crate::orders::InvalidKind::Unprocessable,
                    slug: "invalid-order",
                    title: "The order is not valid".into(),
                    errors: vec![crate::orders::FieldError::new(
                        "order",
                        format!("is not JSON: {e}"),
                    )],
                    submission_id: None,
                })?;
            let upload = crate::orders::intake::Document::Raw(pdf);
            let validation = Some(validation.trim().to_owned()).filter(|v| !v.is_empty());
            let checked = crate::orders::intake::check_parts(
                conn,
                &raw,
                Some(upload),
                validation,
                &authority,
                limit,
                true,
                &crate::authority::validation::Binding {
                    now: chrono::Utc::now().timestamp(),
                    accept_unbound,
                },
            )?;
            crate::db::write_tx(conn, |c| {
                crate::orders::intake::store(
                    c,
                    &authority,
                    &checked,
                    &set,
                    &dep,
                    &crate::orders::intake::Receipt {
                        received_at,
                        entered_by: Some(&staff),
                        mail: Some(&mail),
                        channel: "manual",
                    },
                    now,
                )
            })
            .map(|v| v.id)
        })
        .await?;
    Ok(see_other(&format!("/orders/{id}")))
}
