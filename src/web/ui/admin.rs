//! Administration: users and the authority registry.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::session::{CsrfForm, Frame};
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::settings::WorkspaceSettings;
use crate::staff::{self, Permission, Role, User};

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
    let role = Role::parse(&f.role).ok_or_else(|| {
        UiError::BadRequest(format!("role: `{}` is not a role; choose one", f.role))
    })?;
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
    if disable {
        super::confirmed(form.confirm.as_deref(), "disable this user")?;
    }
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

/// The password-reset form: the temporary password the admin hands over, and the
/// confirmation box (the user's sessions end).
#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    password: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /admin/users/{username}/password`: sets a temporary password (the user must choose a
/// new one at the next sign-in; their sessions end; audited as `staff.password_reset`).
#[post("/admin/users/{username}/password")]
pub async fn reset_password(
    signed: Signed,
    username: web::Path<String>,
    form: web::Form<ResetForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageUsers)?.clone();
    signed.check_csrf(&form.csrf)?;
    let username = username.into_inner();
    super::confirmed(
        form.confirm.as_deref(),
        "reset this user's password and sign them out",
    )?;
    let password = form.into_inner().password;
    let result = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::reset_password(
                conn,
                &staff.actor(),
                &username,
                &password,
                Utc::now(),
            ))
        })
        .await?;
    result?;
    Ok(see_other("/admin/users"))
}

/// The role form.
#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: String,
}

/// `POST /admin/users/{username}/role`: changes the user's role (audited as
/// `staff.role_changed`; the last enabled admin keeps theirs).
#[post("/admin/users/{username}/role")]
pub async fn change_role(
    signed: Signed,
    username: web::Path<String>,
    form: web::Form<RoleForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageUsers)?.clone();
    signed.check_csrf(&form.csrf)?;
    let username = username.into_inner();
    let role = Role::parse(&form.role).ok_or_else(|| {
        UiError::BadRequest(format!("role: `{}` is not a role; choose one", form.role))
    })?;
    let result = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(staff::set_role(
                conn,
                &staff.actor(),
                &username,
                role,
                Utc::now(),
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
    /// The confirmation box (`yes`), required to disable or suspend.
    #[serde(default)]
    confirm: Option<String>,
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
    form: web::Form<super::session::ConfirmForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ManageRegistry)?.clone();
    signed.check_csrf(&form.csrf)?;
    super::confirmed(form.confirm.as_deref(), "revoke this key")?;
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
    if !active {
        super::confirmed(form.confirm.as_deref(), "suspend this authority")?;
    }
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
