//! The workspace's pages and actions. Each handler checks its permission first, then the
//! CSRF token of a form, then calls one service function.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::{LOGIN_COOKIE, Signed, UiError, html, see_other, session_cookie};
use crate::authority::throttle;
use crate::db::Db;
use crate::orders::review::{self, OrderDetail, QueueFilter, QueueRow};
use crate::orders::{OrderStatus, clarify};
use crate::policy::{Deployment, PolicySet};
use crate::settings::WorkspaceSettings;
use crate::staff::{self, Permission, Role, Staff, User};

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

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
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
    fn may(&self, p: &str) -> bool {
        let permission = match p {
            "orders" => Permission::ViewOrders,
            "act" => Permission::ActOnOrders,
            "approve" => Permission::Approve,
            "audit" => Permission::Audit,
            "users" => Permission::ManageUsers,
            "registry" => Permission::ManageRegistry,
            "mail" => Permission::ViewMail,
            _ => return false,
        };
        self.staff.role.may(permission)
    }
}

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

#[derive(Template)]
#[template(path = "ui/order.html")]
struct OrderPage {
    frame: Frame,
    d: OrderDetail,
    decision_json: String,
    package: Option<crate::orders::approval::Snapshot>,
    tasks: crate::orders::tasks::TaskState,
    channels: [&'static str; 4],
}

/// The JSON name of a unit enum value (`permit`, `acceptable_for_review`, ...).
fn name_of(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl OrderPage {
    fn outcome(&self) -> String {
        name_of(self.d.scope.outcome).replace('_', " ")
    }

    fn field_status(&self, status: &crate::policy::FieldStatus) -> String {
        name_of(status)
    }

    fn sender(&self, sender: &crate::orders::messages::Sender) -> String {
        name_of(sender)
    }

    fn grants(&self, status: &crate::policy::FieldStatus) -> bool {
        status.grants()
    }

    /// Whether any rule lets (or makes) the provider tell the user.
    fn provider_may_tell(&self) -> bool {
        self.d
            .scope
            .user_notice
            .iter()
            .any(|n| n.provider_may_inform || n.provider_must_inform)
    }

    /// The targets of the scope, each with its index and a label.
    /// Each target's label, and whether its value mixes writing systems.
    fn targets(&self) -> Vec<(usize, String, bool)> {
        use crate::policy::Target;
        self.d
            .scope
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mixed = match t {
                    Target::Username(v) | Target::UserId(v) | Target::PhoneNumber(v) => {
                        mixed_scripts(v)
                    }
                    Target::Ip(_) => false,
                };
                (i, serde_json::to_string(t).unwrap_or_default(), mixed)
            })
            .collect()
    }

    /// Whether `value` mixes writing systems (it may imitate another value).
    fn mixed(&self, value: &str) -> bool {
        mixed_scripts(value)
    }
}

/// Whether `value` mixes writing systems, for the pages' "mixed scripts" mark.
fn mixed_scripts(value: &str) -> bool {
    crate::text::mixed_scripts(value)
}

/// `GET /orders/{id}`: everything about one order.
#[get("/orders/{id}")]
pub async fn order(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let id = id.into_inner();
    let (d, snapshot, tasks) = db
        .run(move |conn| {
            let d = review::detail(conn, &id)?;
            let snapshot = crate::orders::approval::current(conn, &id)?;
            let tasks = crate::orders::tasks::state(conn, &id)?;
            Ok::<_, crate::orders::OrderError>((d, snapshot, tasks))
        })
        .await?;
    let decision_json = serde_json::to_string_pretty(&d.scope).map_err(|_| UiError::Internal)?;
    Ok(html(
        StatusCode::OK,
        &OrderPage {
            frame: Frame { staff },
            d,
            decision_json,
            package: snapshot,
            tasks,
            channels: crate::orders::tasks::CHANNELS,
        },
    ))
}

/// `GET /orders/{id}/document`: the signed order document, as a download (never rendered
/// inline from Writ's origin).
#[get("/orders/{id}/document")]
pub async fn document(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let id = id.into_inner();
    let doc = db
        .run(move |conn| crate::orders::document(conn, &id, &staff.actor()))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"order-{}.pdf\"",
                doc.sha256.get(..12).unwrap_or("")
            ),
        ))
        .insert_header((
            "Content-Security-Policy",
            "sandbox; default-src 'none'; frame-ancestors 'none'",
        ))
        .body(doc.content))
}

/// A form with a text and the CSRF token.
#[derive(Deserialize)]
pub struct TextForm {
    csrf: String,
    text: String,
}

/// `POST /orders/{id}/ask`: a question to the authority (pauses the clock where the
/// instrument says so).
#[post("/orders/{id}/ask")]
pub async fn ask(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<TextForm>,
    db: web::Data<Db>,
    policies: web::Data<PolicySet>,
    deployment: web::Data<Deployment>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let (set, dep) = (policies.into_inner(), deployment.into_inner());
    let text = form.into_inner().text;
    let mail = mail.into_inner();
    db.run(move |conn| {
        clarify::ask(
            conn,
            &staff.actor(),
            &id,
            &text,
            clarify::Rules {
                policies: &set,
                deployment: &dep,
                mail: &mail,
            },
            Utc::now(),
        )
    })
    .await?;
    Ok(see_other(&to))
}

/// `POST /orders/{id}/refuse`: refuse with a reason the authority receives.
#[post("/orders/{id}/refuse")]
pub async fn refuse(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<TextForm>,
    db: web::Data<Db>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let text = form.into_inner().text;
    let mail = mail.into_inner();
    db.run(move |conn| review::refuse(conn, &staff, &id, &text, &mail))
        .await?;
    Ok(see_other(&to))
}

/// The form of an objection: which one the decision offers, and the reasons.
#[derive(Debug, Deserialize)]
pub struct ObjectionForm {
    csrf: String,
    /// Missing: refused by field (422) after the role check, like an unknown code.
    #[serde(default)]
    code: String,
    text: String,
}

/// `POST /orders/{id}/object`: object instead of complying (e-Evidence Art 10(5), Art 17), with
/// the reasons the authority receives; the order awaits its answer and the data stay preserved.
#[post("/orders/{id}/object")]
pub async fn object(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<ObjectionForm>,
    db: web::Data<Db>,
    policies: web::Data<PolicySet>,
    deployment: web::Data<Deployment>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let ObjectionForm { code, text, .. } = form.into_inner();
    let (set, dep, mail) = (
        policies.into_inner(),
        deployment.into_inner(),
        mail.into_inner(),
    );
    db.run(move |conn| {
        clarify::object(
            conn,
            &staff.actor(),
            &id,
            &code,
            &text,
            clarify::Rules {
                policies: &set,
                deployment: &dep,
                mail: &mail,
            },
            Utc::now(),
        )
    })
    .await?;
    Ok(see_other(&to))
}

/// `POST /orders/{id}/validation-checked`: a person checked the claimed validation against the
/// signed document.
#[post("/orders/{id}/validation-checked")]
pub async fn validation_checked(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| review::check_validation(conn, &staff, &id))
        .await?;
    Ok(see_other(&to))
}

#[derive(Template)]
#[template(path = "ui/users.html")]
struct UsersPage {
    frame: Frame,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
}

/// A user on the users page, with the end of its sign-in lockout if it is locked out.
struct UserRow {
    user: User,
    locked_until: Option<String>,
}

/// `GET /admin/users`.
#[get("/admin/users")]
pub async fn users(
    signed: Signed,
    db: web::Data<Db>,
    settings: web::Data<WorkspaceSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageUsers)?.clone();
    let settings = settings.get_ref().clone();
    let users = db
        .run(move |conn| {
            let now = Utc::now();
            let rows = staff::list(conn)
                .map_err(|e| crate::db::DbError::Unavailable(e.to_string()))?
                .into_iter()
                .map(|user| {
                    let until = staff::locked_until(conn, &user.username, &settings, now)?;
                    Ok(UserRow {
                        locked_until: until.map(|t| t.format("%H:%M UTC").to_string()),
                        user,
                    })
                })
                .collect::<Result<Vec<_>, staff::StaffError>>();
            rows.map_err(|e| crate::db::DbError::Unavailable(e.to_string()))
        })
        .await?;
    Ok(html(
        StatusCode::OK,
        &UsersPage {
            frame: Frame { staff },
            users,
            roles: Role::ALL.iter().map(|r| (r.as_str(), r.label())).collect(),
        },
    ))
}

/// `POST /admin/users/{username}/unlock`: lifts the user's sign-in lockout (audited).
#[post("/admin/users/{username}/unlock")]
pub async fn unlock_user(
    signed: Signed,
    username: web::Path<String>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageUsers)?.clone();
    signed.check_csrf(&form.csrf)?;
    let username = username.into_inner();
    let result = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::lift_lockout(
                conn,
                &staff.actor(),
                &username,
                Utc::now(),
            ))
        })
        .await?;
    result?;
    Ok(see_other("/admin/users"))
}

/// The new-user form.
#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    username: String,
    display_name: String,
    role: String,
    password: String,
}

/// `POST /admin/users`.
#[post("/admin/users")]
pub async fn add_user(
    signed: Signed,
    form: web::Form<NewUserForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageUsers)?.clone();
    signed.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let role = Role::parse(&f.role)
        .ok_or_else(|| UiError::BadRequest(format!("`{}` is not a role", f.role)))?;
    let result = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::add_user(
                conn,
                &staff.actor(),
                f.username.trim(),
                &f.display_name,
                role,
                &f.password,
            ))
        })
        .await?;
    result?;
    Ok(see_other("/admin/users"))
}

/// `POST /admin/users/{username}/disable` (with `enable=1`, re-enables).
#[post("/admin/users/{username}/disable")]
pub async fn disable_user(
    signed: Signed,
    username: web::Path<String>,
    form: web::Form<ToggleForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageUsers)?.clone();
    signed.check_csrf(&form.csrf)?;
    let username = username.into_inner();
    if username == staff.username {
        return Err(UiError::BadRequest("you cannot disable yourself".into()));
    }
    let disable = form.enable.is_none();
    let result = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::set_disabled(
                conn,
                &staff.actor(),
                &username,
                disable,
            ))
        })
        .await?;
    result?;
    Ok(see_other("/admin/users"))
}

/// Enable or disable.
#[derive(Deserialize)]
pub struct ToggleForm {
    csrf: String,
    #[serde(default)]
    enable: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/account.html")]
struct AccountPage {
    frame: Frame,
    done: bool,
}

/// `GET /account`.
#[get("/account")]
pub async fn account(signed: Signed, req: HttpRequest) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Account)?.clone();
    Ok(html(
        StatusCode::OK,
        &AccountPage {
            frame: Frame { staff },
            done: req.query_string() == "changed=1",
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

#[derive(Template)]
#[template(path = "ui/package.html")]
struct PackagePage {
    frame: Frame,
    order_id: String,
    reference: String,
    snapshot: crate::orders::approval::Snapshot,
}

/// `POST /orders/{id}/package`: prepare the package (or reuse the frozen snapshot for the
/// current scope) and preview it exactly as it will be released. Audited.
#[post("/orders/{id}/package")]
pub async fn prepare_package(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Approve)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let order_id = id.clone();
    let who = staff.clone();
    let (snapshot, reference) = db
        .run(move |conn| {
            let snapshot = crate::orders::approval::prepare(conn, &who, &id, Utc::now())?;
            let reference = crate::orders::view(conn, &id, None)?.reference;
            Ok::<_, crate::orders::OrderError>((snapshot, reference))
        })
        .await?;
    Ok(html(
        StatusCode::OK,
        &PackagePage {
            frame: Frame { staff },
            order_id,
            reference,
            snapshot,
        },
    ))
}

/// The approval form.
#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    snapshot_sha256: String,
}

/// `POST /orders/{id}/approve`: approve the previewed snapshot (bound to its hash).
#[post("/orders/{id}/approve")]
pub async fn approve(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<ApproveForm>,
    db: web::Data<Db>,
    key: web::Data<super::PackageKey>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Approve)?.clone();
    let mail = mail.into_inner();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let hash = form.into_inner().snapshot_sha256;
    let key = key.into_inner();
    db.run(move |conn| {
        crate::orders::approval::approve(conn, &staff, &id, &hash, &key.0, &mail, Utc::now())
    })
    .await?;
    Ok(see_other(&to))
}

/// `POST /orders/{id}/narrow`: keep only the ticked fields (and optionally fewer targets);
/// never widens.
#[post("/orders/{id}/narrow")]
pub async fn narrow(
    signed: Signed,
    id: web::Path<String>,
    body: String,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    // Repeated `keep=category.field` pairs: parsed by hand (serde_urlencoded has no lists).
    let mut csrf = String::new();
    let mut reason = String::new();
    let mut keep_targets: Vec<usize> = Vec::new();
    let mut targets_listed = false;
    let mut keep: std::collections::BTreeMap<crate::policy::Category, Vec<crate::policy::FieldId>> =
        std::collections::BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body.as_bytes()) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "reason" => reason = v.into_owned(),
            "keep_target" => keep_targets.push(
                v.parse::<usize>()
                    .map_err(|_| UiError::BadRequest(format!("`{v}` is not a target number")))?,
            ),
            "targets_listed" => targets_listed = true,
            "keep" => {
                let (c, f) = v
                    .split_once('.')
                    .ok_or_else(|| UiError::BadRequest(format!("`{v}` is not category.field")))?;
                let category: crate::policy::Category =
                    serde_json::from_value(serde_json::Value::String(c.to_owned()))
                        .map_err(|_| UiError::BadRequest(format!("`{c}` is not a category")))?;
                let field: crate::policy::FieldId =
                    serde_json::from_value(serde_json::Value::String(f.to_owned()))
                        .map_err(|_| UiError::BadRequest(format!("`{f}` is not a field")))?;
                keep.entry(category).or_default().push(field);
            }
            _ => {}
        }
    }
    signed.check_csrf(&csrf)?;
    if reason.trim().is_empty() {
        return Err(UiError::BadRequest("say why the scope is narrowed".into()));
    }
    let keep: Vec<crate::policy::KeepCategory> = keep
        .into_iter()
        .map(|(category, fields)| crate::policy::KeepCategory { category, fields })
        .collect();
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| {
        // Targets are ticked by their place in the scope; the narrowing names them exactly.
        let keep_targets = if targets_listed {
            let scope = review::detail(conn, &id)?.scope;
            let mut kept = Vec::new();
            for i in keep_targets {
                let t = scope.targets.get(i).cloned().ok_or_else(|| {
                    crate::orders::OrderError::Conflict(format!("there is no target number {i}"))
                })?;
                kept.push(t);
            }
            Some(kept)
        } else {
            None
        };
        let request = crate::policy::NarrowingRequest {
            keep,
            keep_targets,
            time_window: None,
            reason,
        };
        crate::orders::approval::narrow(conn, &staff, &id, &request, Utc::now())
    })
    .await?;
    Ok(see_other(&to))
}

/// `GET /packages/public-key`: the public key that verifies package manifests (public; verify
/// a package offline with `writ package verify PACKAGE.tar --key KEY.pem`).
#[get("/packages/public-key")]
pub async fn package_public_key(key: web::Data<super::PackageKey>) -> HttpResponse {
    let public = key.0.verifying_key();
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header(("X-Key-Id", crate::disclosure::keys::key_id(&public)))
        .body(crate::disclosure::keys::public_pem(&public))
}

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
    let filter = crate::audit::search::Filter {
        event: given(&event),
        order_id: given(&order_id),
        actor_id: given(&actor),
        ..Default::default()
    };
    let (disclosures, entries) = db
        .run(move |conn| {
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

#[derive(Template)]
#[template(path = "ui/outbox.html")]
struct OutboxPage {
    frame: Frame,
    messages: Vec<crate::mail::OutboxMessage>,
}

impl OutboxPage {
    fn when(&self, micros: &i64) -> String {
        crate::metadata::normalize::from_micros(*micros)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string()
    }
}

fn mail_error(e: crate::mail::MailError) -> UiError {
    match e {
        crate::mail::MailError::NotFound(_) => UiError::NotFound,
        crate::mail::MailError::Conflict(m) => UiError::Conflict(m),
        other => {
            tracing::error!(error = %other, "outbox request failed");
            UiError::Internal
        }
    }
}

/// `GET /mail`: the outbox.
#[get("/mail")]
pub async fn outbox(signed: Signed, db: web::Data<Db>) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewMail)?.clone();
    let messages = db
        .run(|conn| Ok::<_, crate::db::DbError>(crate::mail::list(conn, None, 200)))
        .await?
        .map_err(mail_error)?;
    Ok(html(
        StatusCode::OK,
        &OutboxPage {
            frame: Frame { staff },
            messages,
        },
    ))
}

/// `POST /mail/{id}/retry`: a failed message back into the queue.
#[post("/mail/{id}/retry")]
pub async fn retry_mail(
    signed: Signed,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewMail)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::mail::retry(conn, &staff.actor(), id, Utc::now()))
    })
    .await?
    .map_err(mail_error)?;
    Ok(see_other("/mail"))
}

#[derive(Template)]
#[template(path = "ui/registry.html")]
struct RegistryPage {
    frame: Frame,
    authorities: Vec<(
        crate::authority::Authority,
        Vec<crate::authority::AuthorityKey>,
    )>,
    kinds: Vec<&'static str>,
}

fn registry_error(e: crate::authority::RegistryError) -> UiError {
    use crate::authority::RegistryError;
    match e {
        RegistryError::Invalid(m) | RegistryError::Conflict(m) => UiError::BadRequest(m),
        RegistryError::NotFound(_) => UiError::NotFound,
        other => {
            tracing::error!(error = %other, "registry request failed");
            UiError::Internal
        }
    }
}

/// `GET /admin/registry`: the authority registry.
#[get("/admin/registry")]
pub async fn registry(signed: Signed, db: web::Data<Db>) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageRegistry)?.clone();
    let authorities = db
        .run(|conn| Ok::<_, crate::db::DbError>(crate::authority::list(conn)))
        .await?
        .map_err(registry_error)?;
    use crate::policy::IssuerKind::*;
    let kinds = [
        Judge,
        Court,
        InvestigatingJudge,
        Prosecutor,
        Police,
        AdministrativeAuthority,
        Ocda,
        DesignatedSeniorOfficer,
    ]
    .iter()
    .map(|k| k.as_str())
    .collect();
    Ok(html(
        StatusCode::OK,
        &RegistryPage {
            frame: Frame { staff },
            authorities,
            kinds,
        },
    ))
}

/// The new-authority form.
#[derive(Deserialize)]
pub struct AuthorityForm {
    csrf: String,
    id: String,
    name: String,
    country: String,
    kind: String,
    contacts: String,
}

/// `POST /admin/registry`: register an authority.
#[post("/admin/registry")]
pub async fn add_authority(
    signed: Signed,
    form: web::Form<AuthorityForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageRegistry)?.clone();
    signed.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let kind: crate::policy::IssuerKind =
        serde_json::from_value(serde_json::Value::String(f.kind.clone()))
            .map_err(|_| UiError::BadRequest(format!("`{}` is not an authority kind", f.kind)))?;
    let new = crate::authority::NewAuthority {
        id: f.id.trim().to_owned(),
        name: f.name,
        country: f.country.trim().to_uppercase(),
        kind,
        contacts: f
            .contacts
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
    };
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::authority::add(conn, &staff.actor(), &new))
    })
    .await?
    .map_err(registry_error)?;
    Ok(see_other("/admin/registry"))
}

/// The new-key form.
#[derive(Deserialize)]
pub struct KeyForm {
    csrf: String,
    authority: String,
    kid: String,
    alg: String,
    pem: String,
}

/// `POST /admin/registry/keys`: add a public key, pinned to its algorithm.
#[post("/admin/registry/keys")]
pub async fn add_key(
    signed: Signed,
    form: web::Form<KeyForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageRegistry)?.clone();
    signed.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let alg = crate::authority::KeyAlgorithm::parse(&f.alg).map_err(registry_error)?;
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::authority::add_key(
            conn,
            &staff.actor(),
            f.authority.trim(),
            f.kid.trim(),
            alg,
            &f.pem,
        ))
    })
    .await?
    .map_err(registry_error)?;
    Ok(see_other("/admin/registry"))
}

/// `POST /admin/registry/keys/{kid}/revoke`.
#[post("/admin/registry/keys/{kid}/revoke")]
pub async fn revoke_key(
    signed: Signed,
    kid: web::Path<String>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageRegistry)?.clone();
    signed.check_csrf(&form.csrf)?;
    let kid = kid.into_inner();
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::authority::revoke_key(conn, &staff.actor(), &kid))
    })
    .await?
    .map_err(registry_error)?;
    Ok(see_other("/admin/registry"))
}

/// `POST /admin/registry/{id}/status`: suspend (or, with `enable=1`, reactivate).
#[post("/admin/registry/{id}/status")]
pub async fn authority_status(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<ToggleForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageRegistry)?.clone();
    signed.check_csrf(&form.csrf)?;
    let active = form.enable.is_some();
    let id = id.into_inner();
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::authority::set_active(
            conn,
            &staff.actor(),
            &id,
            active,
        ))
    })
    .await?
    .map_err(registry_error)?;
    Ok(see_other("/admin/registry"))
}

/// The ex-post validation form.
#[derive(Deserialize)]
pub struct ExPostForm {
    csrf: String,
    outcome: String,
}

/// `POST /orders/{id}/ex-post-validation`: received, or lapsed.
#[post("/orders/{id}/ex-post-validation")]
pub async fn ex_post_validation(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<ExPostForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let received = match form.outcome.as_str() {
        "received" => true,
        "lapsed" => false,
        other => {
            return Err(UiError::BadRequest(format!(
                "`{other}` is neither received nor lapsed"
            )));
        }
    };
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| {
        crate::orders::tasks::ex_post_validation(conn, &staff, &id, received, Utc::now())
    })
    .await?;
    Ok(see_other(&to))
}

/// The user-notice form.
#[derive(Deserialize)]
pub struct NoticeForm {
    csrf: String,
    date: String,
    channel: String,
}

/// `POST /orders/{id}/user-notified`: the user was told, on this date, by this channel.
#[post("/orders/{id}/user-notified")]
pub async fn user_notified(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<NoticeForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let at = chrono::NaiveDate::parse_from_str(f.date.trim(), "%Y-%m-%d")
        .map_err(|_| UiError::BadRequest("the date is not a date (YYYY-MM-DD)".into()))?
        .and_hms_opt(0, 0, 0)
        .ok_or(UiError::Internal)?
        .and_utc();
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| {
        crate::orders::tasks::user_notified(conn, &staff, &id, at, &f.channel, Utc::now())
    })
    .await?;
    Ok(see_other(&to))
}

/// `POST /orders/{id}/hold/extend` and `/hold/release`: a preservation order's holds.
#[post("/orders/{id}/hold/{action}")]
pub async fn hold(
    signed: Signed,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let (id, action) = path.into_inner();
    let to = format!("/orders/{id}");
    match action.as_str() {
        "extend" => {
            db.run(move |conn| {
                crate::orders::tasks::extend_hold(conn, &staff, &id, Utc::now()).map(|_| ())
            })
            .await?
        }
        "release" => {
            db.run(move |conn| crate::orders::tasks::release_hold(conn, &staff, &id, Utc::now()))
                .await?
        }
        _ => return Err(UiError::NotFound),
    }
    Ok(see_other(&to))
}

#[derive(Template)]
#[template(path = "ui/matches.html")]
struct MatchesPage {
    frame: Frame,
    order_id: String,
    reference: String,
    matches: Vec<crate::disclosure::gather::TargetMatches>,
}

/// `POST /orders/{id}/matches`: look the targets up (audited) and show the matches per target,
/// flagging ambiguous reverse-IP matches for a decision.
#[post("/orders/{id}/matches")]
pub async fn matches(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let (order_id, who) = (id.clone(), staff.clone());
    let (reference, matches) = db
        .run(move |conn| {
            let d = review::detail(conn, &id)?;
            let found =
                crate::disclosure::gather::matches(conn, &who.actor(), &id, &d.scope, Utc::now())
                    .map_err(|e| {
                    crate::orders::OrderError::Conflict(format!("cannot look the targets up: {e}"))
                })?;
            Ok::<_, crate::orders::OrderError>((d.view.reference, found))
        })
        .await?;
    Ok(html(
        StatusCode::OK,
        &MatchesPage {
            frame: Frame { staff },
            order_id,
            reference,
            matches,
        },
    ))
}
