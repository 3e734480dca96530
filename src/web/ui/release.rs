//! Matches, narrowing, the package preview, approval and the package key.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::session::{CsrfForm, Frame};
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::orders::review::{self};
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/package.html")]
struct PackagePage {
    frame: Frame,
    order_id: String,
    reference: String,
    snapshot: crate::orders::approval::Snapshot,
    /// The check flags the approver must judge (and justify) before approving.
    points: Vec<crate::orders::judgement::Point>,
}

/// `POST /orders/{id}/package`: prepare the package (or reuse the frozen snapshot for the
/// current scope), audited, then redirect to its preview (post/redirect/get: the preview is kept
/// for this session, so a reload shows it without preparing it again).
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
    let to = format!("/orders/{id}/package");
    let token = signed.token.clone();
    db.run(move |conn| {
        crate::db::write_tx(conn, |c| {
            let now = Utc::now();
            let snapshot = crate::orders::approval::prepare(c, &staff, &id, now)?;
            crate::staff::desk::store_result(
                c,
                &token,
                &id,
                crate::staff::desk::ResultKind::Preview,
                &snapshot.id,
                now,
            )?;
            Ok::<_, crate::orders::OrderError>(())
        })
    })
    .await?;
    Ok(see_other(&to))
}

/// `GET /orders/{id}/package`: the preview this session prepared, exactly as it will be
/// released (nothing is prepared or audited again).
#[get("/orders/{id}/package")]
pub async fn package_page(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Approve)?.clone();
    let id = id.into_inner();
    let order_id = id.clone();
    let token = signed.token.clone();
    let found = db
        .run(move |conn| {
            let Some((package_id, _)) = crate::staff::desk::stored_result(
                conn,
                &token,
                &id,
                crate::staff::desk::ResultKind::Preview,
            )?
            else {
                return Ok(None);
            };
            let snapshot =
                crate::orders::approval::current(conn, &id)?.filter(|s| s.id == package_id);
            let d = review::detail(conn, &id)?;
            let points = crate::orders::judgement::points(&d);
            Ok::<_, crate::orders::OrderError>(snapshot.map(|s| (s, d.view.reference, points)))
        })
        .await?;
    let Some((snapshot, reference, points)) = found else {
        return Err(UiError::Conflict(
            "There is no current preview of this package for you: prepare it again from the order page.".into(),
        ));
    };
    Ok(html(
        StatusCode::OK,
        &PackagePage {
            frame: Frame { staff },
            order_id,
            reference,
            snapshot,
            points,
        },
    ))
}

/// The approval form.
#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    snapshot_sha256: String,
    /// Why, where the order needs human judgement (refused without it there).
    #[serde(default)]
    justification: String,
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
    let ApproveForm {
        snapshot_sha256: hash,
        justification,
        ..
    } = form.into_inner();
    let key = key.into_inner();
    db.run(move |conn| {
        crate::orders::approval::approve(
            conn,
            &staff,
            &id,
            &hash,
            &justification,
            &key.0,
            &mail,
            Utc::now(),
        )
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
    let public = match public_of(&key).await {
        Ok(public) => public,
        Err(unavailable) => return unavailable,
    };
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header(("X-Key-Id", crate::disclosure::keys::key_id(&public)))
        .body(crate::disclosure::keys::public_pem(&public))
}

/// `GET /packages/public-keys`: the current package key and every retired one, newest first,
/// each after a `key id:` (current) or `retired key id:` line, as `writ keys show --package`
/// prints them (public: packages signed before a rotation verify with a retired key).
#[get("/packages/public-keys")]
pub async fn package_public_keys(
    key: web::Data<super::PackageKey>,
    retired: web::Data<super::RetiredPackageKeys>,
) -> HttpResponse {
    use crate::disclosure::keys::{key_id, public_pem};
    let public = match public_of(&key).await {
        Ok(public) => public,
        Err(unavailable) => return unavailable,
    };
    let mut body = format!("key id: {}\n{}", key_id(&public), public_pem(&public));
    for old in retired.0.iter().rev() {
        body.push_str(&format!(
            "retired key id: {}\n{}",
            key_id(old),
            public_pem(old)
        ));
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// The package key's public half (read from the token when the key is in one: off the async
/// workers), or a 503 naming why the key cannot be reached.
async fn public_of(
    key: &web::Data<super::PackageKey>,
) -> Result<ed25519_dalek::VerifyingKey, HttpResponse> {
    let key = key.0.clone();
    let found = web::block(move || key.public())
        .await
        .unwrap_or_else(|e| Err(crate::keystore::KeyError(e.to_string())));
    found.map_err(|e| {
        tracing::warn!(error = %e, "the package signing key is not available");
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!("the package signing key is not available: {e}\n"))
    })
}

#[derive(Template)]
#[template(path = "ui/matches.html")]
struct MatchesPage {
    frame: Frame,
    order_id: String,
    reference: String,
    matches: Vec<crate::disclosure::gather::TargetMatches>,
    /// When this session looked them up.
    looked_up: super::when::When,
}

/// `POST /orders/{id}/matches`: look the targets up (audited) and keep the result for this
/// session, then redirect to it (post/redirect/get: a reload does not look them up again).
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
    let to = format!("/orders/{id}/matches");
    let token = signed.token.clone();
    db.run(move |conn| {
        crate::db::write_tx(conn, |c| {
            let now = Utc::now();
            let d = review::detail(c, &id)?;
            let found = crate::disclosure::gather::matches(c, &staff.actor(), &id, &d.scope, now)
                .map_err(|e| {
                crate::orders::OrderError::Conflict(format!("cannot look the targets up: {e}"))
            })?;
            let payload = serde_json::to_string(&found).map_err(|e| {
                crate::orders::OrderError::Db(crate::db::DbError::Corrupt(e.to_string()))
            })?;
            crate::staff::desk::store_result(
                c,
                &token,
                &id,
                crate::staff::desk::ResultKind::Matches,
                &payload,
                now,
            )?;
            Ok::<_, crate::orders::OrderError>(())
        })
    })
    .await?;
    Ok(see_other(&to))
}

/// `GET /orders/{id}/matches`: the matches this session looked up (nothing is looked up or
/// audited again).
#[get("/orders/{id}/matches")]
pub async fn matches_page(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    let id = id.into_inner();
    let order_id = id.clone();
    let token = signed.token.clone();
    let (reference, stored) = db
        .run(move |conn| {
            let reference = crate::orders::view(conn, &id, None)?.reference;
            let stored = crate::staff::desk::stored_result(
                conn,
                &token,
                &id,
                crate::staff::desk::ResultKind::Matches,
            )?;
            Ok::<_, crate::orders::OrderError>((reference, stored))
        })
        .await?;
    let Some((payload, looked_up)) = stored else {
        return Err(UiError::Conflict(
            "You have not looked up this order's targets in this session: use \"Look up the matches per target\" on the order page.".into(),
        ));
    };
    let found: Vec<crate::disclosure::gather::TargetMatches> =
        serde_json::from_str(&payload).map_err(|_| UiError::Internal)?;
    Ok(html(
        StatusCode::OK,
        &MatchesPage {
            looked_up: super::when::When::new(looked_up, &staff.time_zone),
            frame: Frame { staff },
            order_id,
            reference,
            matches: found,
        },
    ))
}

/// A plain-text download, never rendered inline from Writ's origin.
fn text_download(name: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((
            "Content-Security-Policy",
            "sandbox; default-src 'none'; frame-ancestors 'none'",
        ))
        .body(body)
}

/// The file-name stem of an order's hand-over documents.
fn stem(id: &str) -> String {
    format!("writ-{}", id.get(..8).unwrap_or(id))
}

/// `GET /orders/{id}/release/package.tar`: the released package with its audit proof, as the
/// authority downloads it, for a hand-over by the legal team (audited as
/// `order.package_downloaded`). It holds the records: only those who may see matches (legal
/// reviewers and approvers) get it.
#[get("/orders/{id}/release/package.tar")]
pub async fn released_package(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
    cell: web::Data<crate::audit::service::SignerCell>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    let signer = cell.get(&db).await.map_err(|e| {
        tracing::error!(error = %e, "no audit signer");
        UiError::Internal
    })?;
    let id = id.into_inner();
    let name = format!("{}-package.tar", stem(&id));
    let found = db
        .run(move |conn| {
            crate::orders::enclosures::download(conn, &signer, &staff.actor(), &id, Utc::now())
        })
        .await?;
    let Some((tar, sha)) = found else {
        return Err(UiError::NotFound);
    };
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-Package-SHA256", sha))
        .body(tar))
}

/// `GET /orders/{id}/release/cover-letter.txt`: the cover letter of the released package
/// (reference, authority, instrument, what is enclosed, what was withheld and why; no record).
#[get("/orders/{id}/release/cover-letter.txt")]
pub async fn cover_letter(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
    key: web::Data<super::PackageKey>,
    package: web::Data<crate::settings::PackageSettings>,
) -> Result<HttpResponse, UiError> {
    signed.require(Permission::ViewOrders)?;
    let id = id.into_inner();
    let name = format!("{}-cover-letter.txt", stem(&id));
    let found = db
        .run(move |conn| {
            crate::orders::enclosures::cover_letter(conn, &id, &package.provider_name, &key.0)
        })
        .await?;
    found
        .map(|letter| text_download(&name, letter))
        .ok_or(UiError::NotFound)
}

/// `GET /orders/{id}/release/certificate.txt`: the records certificate of the released
/// package, signed with the package key (audited as `order.certificate_issued`; verify with
/// `writ package verify PACKAGE.tar --key KEY.pem --certificate CERTIFICATE.txt`).
#[get("/orders/{id}/release/certificate.txt")]
pub async fn certificate(
    signed: Signed,
    id: web::Path<String>,
    db: web::Data<Db>,
    key: web::Data<super::PackageKey>,
    package: web::Data<crate::settings::PackageSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let id = id.into_inner();
    let name = format!("{}-certificate.txt", stem(&id));
    let found = db
        .run(move |conn| {
            crate::orders::enclosures::certificate(
                conn,
                &staff.actor(),
                &id,
                &package.provider_name,
                &key.0,
                Utc::now(),
            )
        })
        .await?;
    found
        .map(|cert| text_download(&name, cert))
        .ok_or(UiError::NotFound)
}
