//! Manual intake of an order: field by field from the instrument's required elements, or as
//! raw order JSON for those who have it; the signed PDF and further papers come with it.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::session::Frame;
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::orders::manual::{self, Field, Input, MAX_ATTACHMENTS};
use crate::orders::validate::FieldError;
use crate::policy::{Category, Deployment, PolicySet};
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/new_order.html")]
struct NewOrderPage {
    frame: Frame,
    authorities: Vec<(String, String)>,
    instruments: Vec<(String, String)>,
    /// The structured form of the chosen instrument, if one was chosen.
    form: Option<manual::Form>,
    /// What the person entered (kept when the form comes back with errors).
    values: BTreeMap<String, String>,
    /// The errors, by form field (the empty name: the form as a whole).
    errors: BTreeMap<String, Vec<String>>,
    categories: [Category; 4],
    attachment_slots: Vec<usize>,
}

impl NewOrderPage {
    fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    fn checked(&self, name: &str) -> bool {
        !self.value(name).is_empty()
    }

    fn category_checked(&self, c: &Category) -> bool {
        self.checked(&format!("category.{}", c.as_str()))
    }

    fn attachment_errors(&self, n: &usize) -> Vec<String> {
        self.errors_of(&format!("attachment.{n}"))
    }

    fn attachment_label(&self, n: &usize) -> &str {
        self.value(&format!("attachment_label.{n}"))
    }

    fn errors_of(&self, name: &str) -> Vec<String> {
        self.errors.get(name).cloned().unwrap_or_default()
    }

    fn has_error(&self, name: &str) -> bool {
        self.errors.contains_key(name)
    }

    /// Whether one of the optional fields has an error (their group then opens).
    fn optional_has_error(&self) -> bool {
        self.form
            .as_ref()
            .is_some_and(|f| f.optional.iter().any(|o| self.has_error(o.name)))
    }

    /// How a field is entered, for the template: text, long, lines, when, number, choice, flag.
    fn kind(&self, field: &Field) -> &'static str {
        match field.input {
            Input::Text => "text",
            Input::Long => "long",
            Input::Lines => "lines",
            Input::When => "when",
            Input::Number => "number",
            Input::Choice(_) => "choice",
            Input::Flag => "flag",
        }
    }

    fn choices(&self, field: &Field) -> &'static [&'static str] {
        match field.input {
            Input::Choice(c) => c,
            _ => &[],
        }
    }

    /// A field's id in the page (`f-issuer-person`).
    fn id_of(&self, name: &str) -> String {
        format!("f-{}", name.replace(['.', '_'], "-"))
    }
}

/// The instrument chosen for the structured form.
#[derive(Deserialize)]
pub struct Chosen {
    #[serde(default)]
    instrument: Option<String>,
}

/// The active authorities of the registry, as (id, label).
async fn authorities(db: &Db) -> Result<Vec<(String, String)>, UiError> {
    Ok(db
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
        .collect())
}

/// `GET /orders/new`: the manual intake: choose the instrument, then its form (fields from the
/// instrument's required elements); or paste the order JSON.
#[get("/orders/new")]
pub async fn new_order_form(
    signed: Signed,
    query: web::Query<Chosen>,
    db: web::Data<Db>,
    policies: web::Data<PolicySet>,
    deployment: web::Data<Deployment>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::EnterOrders)?.clone();
    let form = match query.into_inner().instrument.filter(|i| !i.is_empty()) {
        Some(i) => Some(manual::form(&policies, &deployment, &i).ok_or(UiError::NotFound)?),
        None => None,
    };
    let mut values = BTreeMap::new();
    if let Some(f) = &form {
        values.insert("instrument".to_owned(), f.instrument.clone());
    }
    Ok(html(
        StatusCode::OK,
        &NewOrderPage {
            frame: Frame { staff },
            authorities: authorities(&db).await?,
            instruments: manual::instruments(&policies),
            form,
            values,
            errors: BTreeMap::new(),
            categories: Category::ALL,
            attachment_slots: (1..=MAX_ATTACHMENTS).collect(),
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

/// Whether `name` is a field of the manual-intake form.
fn known_field(name: &str) -> bool {
    const FIXED: &[&str] = &[
        "csrf",
        "authority",
        "received_at",
        "order",
        "document",
        "validation",
        "instrument",
        "incomplete",
    ];
    let slot = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (1..=MAX_ATTACHMENTS).contains(&n))
    };
    FIXED.contains(&name)
        || manual::FIELDS.iter().any(|f| f.name == name)
        || Category::ALL
            .iter()
            .any(|c| name.strip_prefix("category.") == Some(c.as_str()))
        || slot("attachment.")
        || slot("attachment_label.")
}

/// `POST /orders/new`: enter an order by hand (multipart): either the structured form's fields
/// or the order JSON (`order`), with its PDF and up to five further papers (`attachment.N`,
/// described by `attachment_label.N`). A structured form with errors comes back with each
/// error beside its field and the other values kept.
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
    let mut fields: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut file_names: BTreeMap<String, String> = BTreeMap::new();
    let mut total = 0usize;
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
        if !known_field(&name) {
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
        let file = name == "document" || name.starts_with("attachment.");
        let (max, setting) = if file {
            (limit, "api.document_limit_bytes")
        } else {
            (1024 * 1024, "1 MiB per text field")
        };
        if name.starts_with("attachment.")
            && let Some(n) = field.content_disposition().and_then(|d| d.get_filename())
        {
            file_names.insert(name.clone(), n.to_owned());
        }
        let bytes = tokio::time::timeout_at(deadline, field_bytes(&mut field, &name, max, setting))
            .await
            .map_err(|_| too_slow())??;
        total += bytes.len();
        if total > body_limit {
            return Err(UiError::TooLarge(format!(
                "The form may be at most {body_limit} bytes in all."
            )));
        }
        fields.insert(name, bytes);
    }
    let text = |name: &str| -> Result<String, UiError> {
        String::from_utf8(fields.get(name).cloned().unwrap_or_default())
            .map_err(|_| UiError::BadRequest(format!("{name} is not text")))
    };
    signed.check_csrf(&text("csrf")?)?;
    let raw = text("order")?;
    let structured = raw.trim().is_empty();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for name in fields.keys() {
        if name != "csrf" && name != "document" && !name.starts_with("attachment.") {
            values.insert(name.clone(), text(name)?);
        }
    }
    let mut errors: Vec<FieldError> = Vec::new();
    let authority = text("authority")?;
    let validation = Some(text("validation")?.trim().to_owned()).filter(|v| !v.is_empty());
    if authority.trim().is_empty() {
        errors.push(FieldError::new("authority", "choose the sending authority"));
    }
    let now = Utc::now();
    let received_at = manual_instant(&text("received_at")?, &staff.time_zone);
    match received_at {
        None => errors.push(FieldError::new("received_at", "is not a date and time")),
        Some(t) if t > now => errors.push(FieldError::new(
            "received_at",
            "the date of receipt is in the future",
        )),
        Some(_) => {}
    }
    let pdf = fields.remove("document").unwrap_or_default();
    if pdf.is_empty() {
        errors.push(FieldError::new("document", "attach the signed order (PDF)"));
    }
    let given: Vec<(usize, Option<String>, String, Vec<u8>)> = (1..=MAX_ATTACHMENTS)
        .filter_map(|n| {
            let key = format!("attachment.{n}");
            let content = fields.remove(&key)?;
            let name = file_names.get(&key).cloned().unwrap_or_default();
            // A file input left empty still sends an empty part with no file name.
            if content.is_empty() && name.is_empty() {
                return None;
            }
            Some((
                n,
                values.get(&format!("attachment_label.{n}")).cloned(),
                name,
                content,
            ))
        })
        .collect();
    let attachments = match manual::check_attachments(given) {
        Ok(a) => a,
        Err(e) => {
            errors.extend(e);
            Vec::new()
        }
    };
    let order_json = if structured {
        match manual::order_json(
            &values,
            &staff.time_zone,
            &policies,
            &deployment,
            values.contains_key("incomplete"),
        ) {
            Ok(j) => Some(j),
            Err(e) => {
                errors.extend(e);
                None
            }
        }
    } else {
        Some(raw)
    };
    if !errors.is_empty() || order_json.is_none() {
        if !structured {
            return Err(UiError::BadRequest(
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        return again(&staff, &db, &policies, &deployment, values, errors).await;
    }
    let (set, dep, mail) = (
        policies.clone().into_inner(),
        deployment.clone().into_inner(),
        mail.into_inner(),
    );
    let entered_by = staff.clone();
    let order_json = order_json.unwrap_or_default();
    let received_at = received_at.unwrap_or(now);
    let result = db
        .run(move |conn| {
            manual::enter(
                conn,
                manual::Entry {
                    authority: &authority,
                    order_json,
                    document: pdf,
                    validation,
                    received_at,
                    staff: &entered_by,
                    attachments,
                    document_limit: limit,
                    accept_unbound,
                },
                &set,
                &dep,
                &mail,
                now,
            )
        })
        .await;
    match result {
        Ok(id) => Ok(see_other(&format!("/orders/{id}"))),
        Err(crate::orders::OrderError::Invalid { errors: e, .. }) if structured => {
            let errors = e
                .into_iter()
                .map(|f| {
                    let field = match f.field.as_str() {
                        "document" | "validation" => f.field.clone(),
                        other => manual::form_field(other),
                    };
                    FieldError::new(field, f.message)
                })
                .collect();
            again(&staff, &db, &policies, &deployment, values, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A `datetime-local` value in the viewer's zone.
fn manual_instant(text: &str, zone: &str) -> Option<chrono::DateTime<Utc>> {
    use chrono::TimeZone;
    let text = text.trim();
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The structured form again, with each error beside its field and the values kept (files must
/// be chosen again: a browser never refills a file input).
async fn again(
    staff: &crate::staff::Staff,
    db: &Db,
    policies: &PolicySet,
    deployment: &Deployment,
    values: BTreeMap<String, String>,
    errors: Vec<FieldError>,
) -> Result<HttpResponse, UiError> {
    let instrument = values.get("instrument").cloned().unwrap_or_default();
    let form = manual::form(policies, deployment, &instrument);
    let mut by_field: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in errors {
        // An error for a field the form does not show is shown at the top.
        let shown = form.as_ref().is_some_and(|f| {
            f.required
                .iter()
                .chain(&f.optional)
                .any(|x| x.name == e.field)
        }) || [
            "authority",
            "received_at",
            "document",
            "validation",
            "categories",
            "instrument",
        ]
        .contains(&e.field.as_str())
            || e.field.starts_with("attachment.");
        let key = if shown { e.field } else { String::new() };
        by_field.entry(key).or_default().push(e.message);
    }
    Ok(html(
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewOrderPage {
            frame: Frame {
                staff: staff.clone(),
            },
            authorities: authorities(db).await?,
            instruments: manual::instruments(policies),
            form,
            values,
            errors: by_field,
            categories: Category::ALL,
            attachment_slots: (1..=MAX_ATTACHMENTS).collect(),
        },
    ))
}
