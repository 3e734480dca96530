//! The browser workspace of the legal team, administrators and auditors: server-rendered
//! pages (askama templates in `templates/ui/`), no JavaScript needed.
//!
//! Every route names the [`Permission`] it needs and checks it on the server (deny by default:
//! a route without a check does not compile into the app, see [`Signed::require`]). Forms
//! carry the session's CSRF token; sign-in carries a double-submit token of its own. Session
//! cookies are HttpOnly, SameSite=Strict and (by default) Secure.

pub mod admin;
pub mod audit;
pub mod dashboard;
pub mod desk;
pub mod eevidence;
pub mod intake;
pub mod mail;
pub mod order;
pub mod queue;
pub mod release;
pub mod session;
pub mod transparency;
pub mod when;

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use askama::Template;
use chrono::Utc;
use subtle::ConstantTimeEq;

use crate::db::Db;
use crate::settings::WorkspaceSettings;
use crate::staff::{self, Permission, Staff};

/// The key that signs disclosure-package manifests.
pub struct PackageKey(pub crate::keystore::Key);

/// The public halves of retired package keys, oldest first (see
/// [`crate::disclosure::keys::retired`]), published so that packages signed before a
/// rotation stay verifiable.
pub struct RetiredPackageKeys(pub Vec<ed25519_dalek::VerifyingKey>);

/// The session cookie.
pub const SESSION_COOKIE: &str = "writ_session";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "writ_login";

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in: to the sign-in page.
    SignIn,
    /// Signed in with a password an admin reset: to the account page, to choose a new one.
    ChangePassword,
    /// Signed in, but the role does not allow it.
    Forbidden,
    /// No such thing.
    NotFound,
    /// A form was wrong; the message says how.
    BadRequest(String),
    /// The action conflicts with the order's state.
    Conflict(String),
    /// The CSRF token is missing or wrong.
    Csrf,
    /// The form or upload is over a size limit; the message names it.
    TooLarge(String),
    /// The upload did not arrive in time; the message names the limit.
    TooSlow(String),
    /// Something failed; logged.
    Internal,
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiError::SignIn => f.write_str("Sign in first."),
            UiError::ChangePassword => f.write_str("Choose a new password first."),
            UiError::Forbidden => f.write_str("Your role does not allow this."),
            UiError::NotFound => f.write_str("There is no such page or order."),
            UiError::BadRequest(m)
            | UiError::Conflict(m)
            | UiError::TooLarge(m)
            | UiError::TooSlow(m) => f.write_str(m),
            UiError::Csrf => f.write_str(
                "The form expired or did not come from Writ. Reload the page and try again.",
            ),
            UiError::Internal => f.write_str("Something failed; the error was logged."),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::SignIn | UiError::ChangePassword => StatusCode::SEE_OTHER,
            UiError::Forbidden | UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UiError::Conflict(_) => StatusCode::CONFLICT,
            UiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UiError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            UiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let UiError::SignIn = self {
            return HttpResponse::SeeOther()
                .insert_header((LOCATION, "/login"))
                .finish();
        }
        if let UiError::ChangePassword = self {
            return HttpResponse::SeeOther()
                .insert_header((LOCATION, "/account"))
                .finish();
        }
        let title = match self {
            UiError::Forbidden | UiError::Csrf => "Not allowed",
            UiError::NotFound => "Not found",
            UiError::BadRequest(_) => "Please correct the form",
            UiError::Conflict(_) => "Not possible now",
            UiError::TooLarge(_) => "Too large",
            UiError::TooSlow(_) => "Too slow",
            _ => "Something went wrong",
        };
        html(
            self.status_code(),
            &ErrorPage {
                title,
                message: self.to_string(),
            },
        )
    }
}

impl From<crate::db::DbError> for UiError {
    fn from(e: crate::db::DbError) -> Self {
        tracing::error!(error = %e, "workspace request failed");
        UiError::Internal
    }
}

impl From<staff::StaffError> for UiError {
    fn from(e: staff::StaffError) -> Self {
        match e {
            staff::StaffError::Invalid(m) => UiError::BadRequest(m),
            staff::StaffError::Conflict(u) => {
                UiError::BadRequest(format!("user `{u}` already exists"))
            }
            staff::StaffError::NotFound(_) => UiError::NotFound,
            staff::StaffError::BadCredentials => UiError::BadRequest("wrong password".into()),
            staff::StaffError::Throttled(s) => {
                UiError::BadRequest(format!("too many attempts; wait {s} s"))
            }
            other => {
                tracing::error!(error = %other, "workspace request failed");
                UiError::Internal
            }
        }
    }
}

impl From<crate::orders::OrderError> for UiError {
    fn from(e: crate::orders::OrderError) -> Self {
        use crate::orders::OrderError;
        match e {
            OrderError::NotFound => UiError::NotFound,
            OrderError::Conflict(m) => UiError::Conflict(m),
            OrderError::Invalid { errors, title, .. } => {
                UiError::BadRequest(if errors.is_empty() {
                    title
                } else {
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }
            other => {
                tracing::error!(error = %other, "workspace request failed");
                UiError::Internal
            }
        }
    }
}

/// A rendered page. Its Content-Security-Policy (with the response's nonce) is set by
/// [`crate::web::security::headers`] for every HTML response.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("the page could not be rendered; the error was logged")
        }
    }
}

/// The signed-in staff member of a request (from the session cookie). Extracting it fails
/// with [`UiError::SignIn`] when there is no live session.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Who.
    pub staff: Staff,
    /// The session token (to end it, or keep it on password change).
    pub token: String,
    /// Whether an admin reset the password: until the user chooses a new one, only their
    /// account page (and signing out) is open to them.
    pub must_change_password: bool,
}

impl Signed {
    /// The staff member, if their role holds `permission`; else [`UiError::Forbidden`]. After
    /// a password reset, anything but the account is [`UiError::ChangePassword`].
    pub fn require(&self, permission: Permission) -> Result<&Staff, UiError> {
        if self.must_change_password && permission != Permission::Account {
            return Err(UiError::ChangePassword);
        }
        if self.staff.role.may(permission) {
            Ok(&self.staff)
        } else {
            Err(UiError::Forbidden)
        }
    }

    /// Checks a form's CSRF token against the session's, in constant time.
    pub fn check_csrf(&self, presented: &str) -> Result<(), UiError> {
        if bool::from(presented.as_bytes().ct_eq(self.staff.csrf_token.as_bytes())) {
            Ok(())
        } else {
            Err(UiError::Csrf)
        }
    }
}

impl FromRequest for Signed {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let db = req.app_data::<web::Data<Db>>().cloned();
        let settings = req.app_data::<web::Data<WorkspaceSettings>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(db), Some(settings)) = (token, db, settings) else {
                return Err(UiError::SignIn);
            };
            if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(UiError::SignIn);
            }
            let t = token.clone();
            let found = db
                .run(move |conn| {
                    staff::session(conn, &t, &settings, Utc::now())
                        .map_err(|e| crate::db::DbError::Unavailable(e.to_string()))
                })
                .await?;
            match found {
                Some((staff, must_change_password)) => Ok(Signed {
                    staff,
                    token,
                    must_change_password,
                }),
                None => Err(UiError::SignIn),
            }
        })
    }
}

/// The session cookie for `token` (or, with an empty token, the cookie that clears it).
pub fn session_cookie(token: &str, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::build(SESSION_COOKIE, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish();
    if token.is_empty() {
        c.make_removal();
    }
    c
}

/// Checks the confirmation box of a destructive action (refuse, release a hold, lapse a
/// validation, revoke a key, suspend an authority, disable a user): the form must carry
/// `confirm=yes`, ticked by a person; without it nothing happens. Works without JavaScript.
pub fn confirmed(confirm: Option<&str>, what: &str) -> Result<(), UiError> {
    if confirm == Some("yes") {
        Ok(())
    } else {
        Err(UiError::BadRequest(format!(
            "confirm: tick the box to confirm that you mean to {what}; nothing was changed"
        )))
    }
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to.to_owned()))
        .finish()
}

/// Registers the workspace's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(session::stylesheet)
        .service(session::home)
        .service(session::login_form)
        .service(session::login)
        .service(session::logout)
        .service(queue::queue)
        .service(dashboard::dashboard)
        .service(queue::save_filter)
        .service(queue::delete_filter)
        .service(intake::new_order_form)
        .service(intake::enter_order)
        .service(queue::export_queue)
        .service(order::order)
        .service(order::document)
        .service(order::acknowledge_page)
        .service(order::attachment)
        .service(order::ask)
        .service(order::refuse)
        .service(order::object)
        .service(order::validation_checked)
        .service(release::prepare_package)
        .service(release::approve)
        .service(release::narrow)
        .service(order::ex_post_validation)
        .service(order::user_notified)
        .service(order::hold)
        .service(eevidence::form3)
        .service(eevidence::confirm)
        .service(release::matches)
        .service(release::package_public_key)
        .service(release::package_public_keys)
        .service(audit::audit_log)
        .service(audit::export_audit_log)
        .service(audit::export_disclosures)
        .service(mail::outbox)
        .service(mail::retry_mail)
        .service(admin::registry)
        .service(admin::add_authority)
        .service(admin::add_key)
        .service(admin::revoke_key)
        .service(admin::authority_status)
        .service(admin::users)
        .service(admin::add_user)
        .service(admin::disable_user)
        .service(admin::unlock_user)
        .service(admin::reset_password)
        .service(admin::change_role)
        .service(transparency::report)
        .service(transparency::download)
        .service(session::account)
        .service(session::change_password)
        .service(desk::assign)
        .service(desk::add_note)
        .service(desk::reply_read)
        .service(desk::notifications)
        .service(desk::mark_notifications_read)
        .service(desk::preferences)
        .service(release::matches_page)
        .service(release::package_page)
        .service(release::released_package)
        .service(release::cover_letter)
        .service(release::certificate);
}
