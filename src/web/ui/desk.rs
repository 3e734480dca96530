//! The legal team's desk: assigning an order, internal notes, the "new reply" flag, the
//! notifications (the bell) and each colleague's own settings.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::session::{CsrfForm, Frame};
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::staff::Permission;
use crate::staff::desk::{Notification, Preferences};

/// The assignment form.
#[derive(Deserialize)]
pub struct AssignForm {
    csrf: String,
    /// A colleague's username; empty: nobody.
    #[serde(default)]
    assignee: String,
}

/// `POST /orders/{id}/assign`: assigns the order to a colleague (or to nobody); audited, and
/// the colleague is notified.
#[post("/orders/{id}/assign")]
pub async fn assign(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<AssignForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let assignee = form.into_inner().assignee.trim().to_owned();
    if assignee.len() > 64 {
        return Err(UiError::BadRequest(
            "assignee: a username of at most 64 characters".into(),
        ));
    }
    db.run(move |conn| {
        crate::orders::desk::assign(
            conn,
            &staff,
            &id,
            (!assignee.is_empty()).then_some(assignee.as_str()),
            Utc::now(),
        )
    })
    .await?;
    Ok(see_other(&to))
}

/// The note form.
#[derive(Deserialize)]
pub struct NoteForm {
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /orders/{id}/notes`: an internal note (never sent to the authority); audited.
#[post("/orders/{id}/notes")]
pub async fn add_note(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<NoteForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}#notes");
    let text = form.into_inner().text;
    db.run(move |conn| crate::orders::desk::add_note(conn, &staff, &id, &text, Utc::now()))
        .await?;
    Ok(see_other(&to))
}

/// `POST /orders/{id}/reply-read`: clears the "new reply" flag.
#[post("/orders/{id}/reply-read")]
pub async fn reply_read(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    signed.require(Permission::ActOnOrders)?;
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| crate::orders::desk::mark_reply_read(conn, &id))
        .await?;
    Ok(see_other(&to))
}

#[derive(Template)]
#[template(path = "ui/notifications.html")]
struct NotificationsPage {
    frame: Frame,
    items: Vec<Notification>,
}

impl NotificationsPage {
    fn when(&self, at: &chrono::DateTime<Utc>) -> super::when::When {
        super::when::When::new(*at, &self.frame.staff.time_zone)
    }
}

/// `GET /notifications`: the signed-in colleague's notifications, newest first.
#[get("/notifications")]
pub async fn notifications(signed: Signed, db: web::Data<Db>) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let me = staff.username.clone();
    let items = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(crate::staff::desk::notifications(conn, &me, 200)?)
        })
        .await?;
    Ok(html(
        StatusCode::OK,
        &NotificationsPage {
            frame: Frame { staff },
            items,
        },
    ))
}

/// `POST /notifications/read`: marks every notification of the signed-in colleague read.
#[post("/notifications/read")]
pub async fn mark_notifications_read(
    signed: Signed,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::staff::desk::mark_read(
            conn,
            &staff.username,
            Utc::now(),
        )?)
    })
    .await?;
    Ok(see_other("/notifications"))
}

/// The settings form.
#[derive(Deserialize)]
pub struct PreferencesForm {
    csrf: String,
    #[serde(default)]
    email: String,
    /// Missing: refused by field (422) after the role check.
    #[serde(default)]
    time_zone: String,
}

/// `POST /account/preferences`: the colleague's address for notifications and time zone.
#[post("/account/preferences")]
pub async fn preferences(
    signed: Signed,
    form: web::Form<PreferencesForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Account)?.clone();
    signed.check_csrf(&form.csrf)?;
    let PreferencesForm {
        email, time_zone, ..
    } = form.into_inner();
    let email = email.trim().to_owned();
    if !email.is_empty() && !crate::mail::is_sendable_address(&email) {
        return Err(UiError::BadRequest(
            "email: not an e-mail address Writ can send to".into(),
        ));
    }
    let time_zone = time_zone.trim().to_owned();
    if time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(UiError::BadRequest(
            "time_zone: an IANA time zone such as Europe/Paris or UTC".into(),
        ));
    }
    let prefs = Preferences {
        email: (!email.is_empty()).then_some(email),
        time_zone,
    };
    db.run(move |conn| crate::staff::desk::set_preferences(conn, &staff.username, &prefs))
        .await?;
    Ok(see_other("/account?saved=1"))
}
