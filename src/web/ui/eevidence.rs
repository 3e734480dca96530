//! The workspace's e-Evidence actions on an order: Form 3 (with its reason code, the deadline
//! effect shown before sending), the confirmation that a withdrawn order's work is halted, and
//! the confirmation of the authorities an order names. Each is CSRF-protected and role-checked;
//! the logic is in `orders::eevidence`.

use actix_web::{HttpResponse, post, web};
use chrono::Utc;
use serde::Deserialize;

use super::session::CsrfForm;
use super::{Signed, UiError, see_other};
use crate::db::Db;
use crate::orders::eevidence::{self, Badges, Form3Reason, Letter};
use crate::staff::Permission;

/// What the order page shows of an e-Evidence order.
pub struct Panel {
    /// State and badges.
    pub badges: Badges,
    /// The correspondence thread, oldest first.
    pub thread: Vec<Letter>,
    /// The Form 3 reasons with their deadline effect, as offered.
    pub reasons: Vec<(&'static str, &'static str)>,
    /// An authority the order names awaits a person's check.
    pub needs_judgement: bool,
}

/// The panel of `order_id`, if it is an e-Evidence order.
pub fn panel(
    conn: &mut crate::db::DbConn,
    order_id: &str,
) -> Result<Option<Panel>, crate::orders::OrderError> {
    let Some(badges) = eevidence::badges(conn, order_id, Utc::now())? else {
        return Ok(None);
    };
    Ok(Some(Panel {
        needs_judgement: eevidence::judgement(conn, order_id)?.is_some(),
        badges,
        thread: eevidence::thread(conn, order_id)?,
        reasons: Form3Reason::ALL
            .iter()
            .map(|r| (r.as_str(), r.deadline_effect()))
            .collect(),
    }))
}

/// The Form 3 form.
#[derive(Deserialize)]
pub struct Form3Form {
    csrf: String,
    reason: String,
    text: String,
}

/// `POST /orders/{id}/eevidence/form3`: sends a Form 3 with a reason code and explanation.
#[post("/orders/{id}/eevidence/form3")]
pub async fn form3(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<Form3Form>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let Some(reason) = Form3Reason::parse(&form.reason) else {
        return Err(UiError::BadRequest(format!(
            "reason: {:?} is not a Form 3 reason code",
            form.reason
        )));
    };
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| eevidence::send_form3(conn, &staff, &id, reason, &form.text, Utc::now()))
        .await?;
    Ok(see_other(&to))
}

/// `POST /orders/{id}/eevidence/{action}`: `confirm-withdrawal` (all work halted; sends
/// `confirmwithdrawal`) or `confirm-authorities` (the authorities named were checked).
#[post("/orders/{id}/eevidence/{action}")]
pub async fn confirm(
    signed: Signed,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let (id, action) = path.into_inner();
    let permission = match action.as_str() {
        "confirm-withdrawal" => Permission::ActOnOrders,
        "confirm-authorities" => Permission::Approve,
        _ => return Err(UiError::NotFound),
    };
    let staff = signed.require(permission)?.clone();
    signed.check_csrf(&form.csrf)?;
    let to = format!("/orders/{id}");
    db.run(move |conn| match action.as_str() {
        "confirm-withdrawal" => eevidence::confirm_withdrawal(conn, &staff, &id, Utc::now()),
        _ => eevidence::clear_judgement(conn, &staff.actor(), &id, Utc::now()),
    })
    .await?;
    Ok(see_other(&to))
}
