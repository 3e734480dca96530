//! Signing in and out, the page frame, and one's own account.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::{LOGIN_COOKIE, Signed, UiError, html, see_other, session_cookie};
use crate::authority::throttle;
use crate::db::Db;
use crate::settings::WorkspaceSettings;
use crate::staff::{self, Permission, Role, Staff};

/// `GET /static/writ.css`.
#[get("/static/writ.css")]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../templates/ui/writ.css"))
}

/// `GET /`: where a role starts.
#[get("/")]
pub async fn home(signed: Result<Signed, UiError>) -> HttpResponse {
    match signed {
        Ok(s) if s.must_change_password => see_other("/account"),
        Ok(s) if s.staff.role == Role::Admin => see_other("/admin/users"),
        Ok(_) => see_other("/orders"),
        Err(_) => see_other("/login"),
    }
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

fn nonce() -> Result<String, UiError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|_| UiError::Internal)?;
    Ok(hex::encode(raw))
}

fn login_page(
    status: StatusCode,
    error: Option<String>,
    secure: bool,
) -> Result<HttpResponse, UiError> {
    let csrf = nonce()?;
    let mut resp = html(
        status,
        &LoginPage {
            csrf: csrf.clone(),
            error,
        },
    );
    let cookie = actix_web::cookie::Cookie::build(LOGIN_COOKIE, csrf)
        .path("/login")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Strict)
        .secure(secure)
        .finish();
    resp.add_cookie(&cookie).map_err(|_| UiError::Internal)?;
    Ok(resp)
}

/// `GET /login`.
#[get("/login")]
pub async fn login_form(settings: web::Data<WorkspaceSettings>) -> Result<HttpResponse, UiError> {
    login_page(StatusCode::OK, None, settings.cookie_secure)
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

/// `POST /login`.
#[post("/login")]
pub async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    db: web::Data<Db>,
    settings: web::Data<WorkspaceSettings>,
    api: web::Data<crate::web::api::ApiState>,
) -> Result<HttpResponse, UiError> {
    let cookie = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let form = form.into_inner();
    if cookie.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            cookie.as_bytes(),
            form.csrf.as_bytes(),
        ))
    {
        return Err(UiError::Csrf);
    }
    let network = crate::web::client::client_address(&req, api.trusted_proxy_hops())
        .map_or_else(|| "unknown".to_owned(), throttle::network_of);
    let s = settings.get_ref().clone();
    let secure = s.cookie_secure;
    let username = form.username.trim().to_lowercase();
    let outcome = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::login(
                conn,
                &username,
                &form.password,
                &network,
                &s,
                Utc::now(),
            ))
        })
        .await?;
    match outcome {
        Ok(session) => {
            let mut resp = see_other("/");
            resp.add_cookie(&session_cookie(&session.token, secure))
                .map_err(|_| UiError::Internal)?;
            Ok(resp)
        }
        Err(staff::StaffError::BadCredentials) => login_page(
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password.".into()),
            secure,
        ),
        Err(staff::StaffError::Throttled(s)) => {
            let until = (Utc::now() + chrono::Duration::seconds(s)).format("%H:%M UTC");
            login_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some(format!(
                    "Too many failed sign-ins for this account or from your network: sign-in is \
                     locked until {until} (about {} minutes). Until then even the right password \
                     is refused. An administrator can lift the lock on the Users page.",
                    s / 60 + 1
                )),
                secure,
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// A form with the CSRF token and a confirmation box (destructive actions).
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// `yes` when the person ticked the box.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub(super) csrf: String,
}

/// `POST /logout`.
#[post("/logout")]
pub async fn logout(
    signed: Signed,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
    settings: web::Data<WorkspaceSettings>,
) -> Result<HttpResponse, UiError> {
    signed.check_csrf(&form.csrf)?;
    let token = signed.token.clone();
    db.run(move |conn| {
        staff::logout(conn, &token).map_err(|e| crate::db::DbError::Unavailable(e.to_string()))
    })
    .await?;
    let mut resp = see_other("/login");
    resp.add_cookie(&session_cookie("", settings.cookie_secure))
        .map_err(|_| UiError::Internal)?;
    Ok(resp)
}

/// What every page's frame needs.
pub struct Frame {
    /// Who is signed in.
    pub staff: Staff,
}

impl Frame {
    pub(super) fn may(&self, p: &str) -> bool {
        let permission = match p {
            "orders" => Permission::ViewOrders,
            "act" => Permission::ActOnOrders,
            "approve" => Permission::Approve,
            "audit" => Permission::Audit,
            "users" => Permission::ManageUsers,
            "registry" => Permission::ManageRegistry,
            "mail" => Permission::ViewMail,
            "transparency" => Permission::Transparency,
            _ => return false,
        };
        self.staff.role.may(permission)
    }
}

#[derive(Template)]
#[template(path = "ui/account.html")]
struct AccountPage {
    frame: Frame,
    done: bool,
    /// An admin reset the password: a new one is needed before anything else.
    must_change: bool,
    /// The user's own settings (notification e-mail, time zone).
    prefs: crate::staff::desk::Preferences,
    saved: bool,
}

/// `GET /account`.
#[get("/account")]
pub async fn account(
    signed: Signed,
    req: HttpRequest,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Account)?.clone();
    let me = staff.username.clone();
    let prefs = db
        .run(move |conn| crate::staff::desk::preferences(conn, &me))
        .await?;
    Ok(html(
        StatusCode::OK,
        &AccountPage {
            frame: Frame { staff },
            done: req.query_string() == "changed=1",
            must_change: signed.must_change_password,
            prefs,
            saved: req.query_string() == "saved=1",
        },
    ))
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
}

/// `POST /account/password`: change one's own password; other sessions end.
#[post("/account/password")]
pub async fn change_password(
    signed: Signed,
    form: web::Form<PasswordForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    signed.require(Permission::Account)?;
    signed.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let (username, token) = (signed.staff.username.clone(), signed.token.clone());
    let result = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::change_password(
                conn, &username, &f.current, &f.new, &token,
            ))
        })
        .await?;
    result?;
    Ok(see_other("/account?changed=1"))
}
