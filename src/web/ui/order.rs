//! One order's page and the actions on it: questions, refusal, objection, the validation
//! check, ex-post validation, user notice and holds.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::session::Frame;
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::orders::clarify;
use crate::orders::review::{self, OrderDetail};
use crate::policy::{Deployment, PolicySet};
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/order.html")]
struct OrderPage {
    frame: Frame,
    d: OrderDetail,
    decision_json: String,
    package: Option<crate::orders::approval::Snapshot>,
    tasks: crate::orders::tasks::TaskState,
    channels: [&'static str; 4],
    /// Recorded justifications (issue 19).
    justifications: Vec<crate::orders::judgement::Justification>,
    /// The ways a claimed validation may be checked.
    check_methods: [(&'static str, &'static str); 4],
    /// Reply templates: the refusal from the engine's reasons, "data not held", questions.
    refusal_text: String,
    not_held_text: String,
    questions: Vec<crate::orders::replies::Template>,
    eevidence: Option<super::eevidence::Panel>,
    desk: Desk,
    /// The order's signed webhooks: the user notice, the on-call page (issue 19).
    webhooks: Vec<crate::mail::webhook::Webhook>,
    /// Further papers that came with the order (translations, annexes).
    attachments: Vec<crate::orders::manual::Attachment>,
}

/// The desk part of the order page: assignment, the "new reply" flag, internal notes, and the
/// names of colleagues.
struct Desk {
    assigned_to: Option<String>,
    reply_unread: bool,
    notes: Vec<crate::orders::desk::Note>,
    assignees: Vec<(String, String)>,
    names: std::collections::HashMap<String, String>,
    message_authors: std::collections::HashMap<i64, String>,
}

/// The JSON name of a unit enum value (`permit`, `acceptable_for_review`, ...).
fn name_of(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl OrderPage {
    /// An instant in the viewer's time zone (UTC on hover).
    fn when(&self, at: &chrono::DateTime<Utc>) -> super::when::When {
        super::when::When::new(*at, &self.frame.staff.time_zone)
    }

    /// A stored RFC 3339 instant (the audit timeline's), for the viewer's zone.
    fn when_stored(&self, at: &str) -> Option<super::when::When> {
        chrono::DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|d| self.when(&d.with_timezone(&Utc)))
    }

    /// The engine's words with their instants in the viewer's zone.
    fn words(&self, text: &str) -> String {
        super::when::dates_in_text(text, &self.frame.staff.time_zone)
    }

    /// A colleague's name.
    fn name_of(&self, username: &str) -> String {
        self.desk
            .names
            .get(username)
            .cloned()
            .unwrap_or_else(|| username.to_owned())
    }

    /// Who wrote a message: the authority, or the colleague by name.
    fn author(&self, m: &crate::orders::messages::Message) -> String {
        match m.sender {
            crate::orders::messages::Sender::Authority => {
                format!("the authority ({})", self.d.authority_id)
            }
            crate::orders::messages::Sender::Provider => self
                .desk
                .message_authors
                .get(&m.id)
                .map(|u| self.name_of(u))
                .unwrap_or_else(|| "the legal team".into()),
        }
    }

    /// A timeline actor (`staff:alex`) in words.
    fn actor_words(&self, actor: &str) -> String {
        match actor.split_once(':') {
            Some(("staff" | "auditor", u)) => self.name_of(u),
            Some(("authority", a)) => format!("authority {a}"),
            Some(("system", _)) => "Writ".into(),
            _ => actor.to_owned(),
        }
    }

    /// An audit event in words.
    fn event_words(&self, event: &str) -> String {
        super::when::event_words(event)
    }

    fn is_assignee(&self, username: &str) -> bool {
        self.desk.assigned_to.as_deref() == Some(username)
    }

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

    /// Why the provider may not tell the user now (the notice form is offered only without).
    fn notice_blocked(&self) -> Option<String> {
        crate::orders::tasks::notice_blocked(&self.d.scope, Utc::now())
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
                (i, self.target_words(t), mixed)
            })
            .collect()
    }

    /// Whether `value` mixes writing systems (it may imitate another value).
    fn mixed(&self, value: &str) -> bool {
        mixed_scripts(value)
    }

    /// Why the signed-in approver cannot prepare and approve the package now, if not.
    fn approval_blocked(&self) -> Option<String> {
        match crate::orders::approval::ready_for_approval(&self.d, &self.frame.staff) {
            Ok(()) => None,
            Err(crate::orders::OrderError::Conflict(m)) => Some(m),
            Err(e) => Some(e.to_string()),
        }
    }

    /// When a non-disclosure order with an end date ends, in the viewer's zone.
    fn gag_until(&self) -> Option<super::when::When> {
        match self.d.scope.gag.as_ref().map(|g| g.ends) {
            Some(crate::policy::NonDisclosureEnd::Until(t)) => Some(self.when(&t)),
            _ => None,
        }
    }

    /// Whether the non-disclosure order was still running when the order was decided.
    fn gag_running(&self) -> bool {
        self.d
            .scope
            .gag
            .as_ref()
            .is_some_and(|g| g.active_at_decision)
    }

    /// The sending authority by its registered name (the id when it is no longer registered).
    fn sender_name(&self) -> String {
        self.d
            .registered
            .as_ref()
            .map_or_else(|| self.d.authority_id.clone(), |r| r.name.clone())
    }

    /// One target of the summary in words: its kind and value (an IP address with its port and
    /// the moment as the authority gave it, to the second, with its offset and zone).
    fn target_words(&self, target: &crate::policy::Target) -> String {
        use crate::policy::Target;
        match target {
            Target::Username(v) => format!("user name {v}"),
            Target::UserId(v) => format!("account id {v}"),
            Target::PhoneNumber(v) => format!("phone number {v}"),
            Target::Ip(ip) => format!(
                "IP address {}{} at {}{}",
                ip.address,
                ip.port.map(|p| format!(", port {p}")).unwrap_or_default(),
                ip.timestamp.format("%-d %b %Y, %H:%M:%S (UTC%:z)"),
                ip.time_zone
                    .as_deref()
                    .map(|z| format!(", {z}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// Whether Writ has a user notice on its way (queued or being sent): no second one by hand.
    fn notice_queued(&self) -> bool {
        self.webhooks
            .iter()
            .any(|w| w.kind == "user_notice" && (w.status == "queued" || w.status == "sending"))
    }

    /// The targets to summarise: as the scope holds them (narrowed where people narrowed it).
    fn summary_targets(&self) -> &[crate::policy::Target] {
        &self.d.scope.targets
    }

    /// Each legal basis cited for a category, once: the category's own and its fields', in the
    /// order they first appear (the rows then carry no citation of their own).
    fn category_citations(&self, c: &crate::policy::CategoryDecision) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for cit in std::iter::once(&c.citation)
            .chain(c.fields.iter().map(|f| &f.citation))
            .flatten()
        {
            if !cit.trim().is_empty() && !out.contains(cit) {
                out.push(cit.clone());
            }
        }
        out
    }

    /// Whether the law allows one more extension of the preservation hold.
    fn may_extend_hold(&self) -> bool {
        self.d.scope.preservation.as_ref().is_some_and(|p| {
            p.extension.is_some()
                && u32::try_from(self.tasks.hold_extensions).unwrap_or(u32::MAX) < p.max_extensions
        })
    }
}

/// Whether `value` mixes writing systems, for the pages' "mixed scripts" mark.
pub(super) fn mixed_scripts(value: &str) -> bool {
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
    let (d, snapshot, tasks, justifications, desk, (eevidence, attachments)) = db
        .run(move |conn| {
            let d = review::detail(conn, &id)?;
            let snapshot = crate::orders::approval::current(conn, &id)?;
            let tasks = crate::orders::tasks::state(conn, &id)?;
            let justifications = crate::orders::judgement::of_order(conn, &id)?;
            let (assigned_to, reply_unread) = crate::orders::desk::desk_state(conn, &id)?;
            let desk = Desk {
                assigned_to,
                reply_unread,
                notes: crate::orders::desk::notes(conn, &id)?,
                assignees: crate::staff::desk::assignees(conn)?,
                names: crate::staff::desk::display_names(conn)?,
                message_authors: crate::orders::desk::message_authors(conn, &id)?,
            };
            let eevidence = super::eevidence::panel(conn, &id)?;
            let webhooks = crate::mail::webhook::of_order(conn, &id)
                .map_err(|e| crate::orders::OrderError::Conflict(e.to_string()))?;
            let attachments = crate::orders::manual::attachments(conn, &id)?;
            Ok::<_, crate::orders::OrderError>((
                d,
                snapshot,
                tasks,
                justifications,
                (desk, webhooks),
                (eevidence, attachments),
            ))
        })
        .await?;
    let (desk, webhooks) = desk;
    let decision_json = serde_json::to_string_pretty(&d.scope).map_err(|_| UiError::Internal)?;
    Ok(html(
        StatusCode::OK,
        &OrderPage {
            frame: Frame { staff },
            decision_json,
            package: snapshot,
            tasks,
            channels: crate::orders::tasks::CHANNELS,
            refusal_text: crate::orders::replies::refusal(&d.scope),
            not_held_text: crate::orders::replies::not_held(&d.scope),
            questions: crate::orders::replies::questions(),
            justifications,
            check_methods: crate::orders::judgement::CHECK_METHODS,
            d,
            desk,
            eevidence,
            webhooks,
            attachments,
        },
    ))
}

/// `POST /orders/{id}/page/acknowledge`: a colleague takes the on-call page of an emergency
/// order (audited as `order.page_acknowledged`).
#[post("/orders/{id}/page/acknowledge")]
pub async fn acknowledge_page(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<super::session::CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::mail::webhook::acknowledge_page(
            conn,
            &staff.actor(),
            &id,
            Utc::now(),
        ))
    })
    .await?
    .map_err(super::mail::mail_error)?;
    Ok(see_other(&to))
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

/// `GET /orders/{id}/attachments/{n}`: a further paper of the order, as a download for staff
/// (never rendered inline from Writ's origin); its viewing is audited like the document's.
#[get("/orders/{id}/attachments/{n}")]
pub async fn attachment(
    signed: Signed,
    path: web::Path<(String, i32)>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let (id, n) = path.into_inner();
    let (a, content) = db
        .run(move |conn| crate::orders::manual::attachment(conn, &id, n, &staff.actor()))
        .await?;
    // The stored name is shown on the page; the download's name is made only of safe
    // characters, so no header can be shaped by an uploader.
    let safe: String = a
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}-{safe}\"", a.position),
        ))
        .insert_header((
            "Content-Security-Policy",
            "sandbox; default-src 'none'; frame-ancestors 'none'",
        ))
        .body(content))
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

/// The refusal form: the text, and which answer it gives.
#[derive(Deserialize)]
pub struct RefuseForm {
    csrf: String,
    text: String,
    /// `refusal` (default) or `not_held` (the "data not held" reply).
    #[serde(default)]
    reply: String,
    /// The confirmation box (`yes`).
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /orders/{id}/refuse`: refuse with a reason the authority receives, or (with
/// `reply=not_held`) answer that no data are held.
#[post("/orders/{id}/refuse")]
pub async fn refuse(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<RefuseForm>,
    db: web::Data<Db>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let RefuseForm {
        text,
        reply,
        confirm,
        ..
    } = form.into_inner();
    super::confirmed(confirm.as_deref(), "close the order with this answer")?;
    let reply = match reply.as_str() {
        "" | "refusal" => review::Reply::Refusal,
        "not_held" => review::Reply::NotHeld,
        other => {
            return Err(UiError::BadRequest(format!(
                "reply: `{other}` is neither refusal nor not_held"
            )));
        }
    };
    let mail = mail.into_inner();
    db.run(move |conn| review::refuse(conn, &staff, &id, &text, reply, &mail))
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

/// The validation-check form: how it was checked, and a note.
#[derive(Deserialize)]
pub struct ValidationCheckForm {
    csrf: String,
    /// One of `judgement::CHECK_METHODS` (missing: refused by field after the role check).
    #[serde(default)]
    method: String,
    /// The person's words (missing: refused by field).
    #[serde(default)]
    note: String,
}

/// `POST /orders/{id}/validation-checked`: a person checked the claimed validation against the
/// signed document, and records how.
#[post("/orders/{id}/validation-checked")]
pub async fn validation_checked(
    signed: Signed,
    id: web::Path<String>,
    form: web::Form<ValidationCheckForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ActOnOrders)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let to = format!("/orders/{id}");
    let ValidationCheckForm { method, note, .. } = form.into_inner();
    db.run(move |conn| review::check_validation(conn, &staff, &id, &method, &note))
        .await?;
    Ok(see_other(&to))
}

/// The ex-post validation form.
#[derive(Deserialize)]
pub struct ExPostForm {
    csrf: String,
    outcome: String,
    /// The confirmation box (`yes`), required to record a lapse.
    #[serde(default)]
    confirm: Option<String>,
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
        "lapsed" => {
            super::confirmed(
                form.confirm.as_deref(),
                "record the lapse and withdraw the order",
            )?;
            false
        }
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
    form: web::Form<super::session::ConfirmForm>,
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
            super::confirmed(form.confirm.as_deref(), "release the hold")?;
            db.run(move |conn| crate::orders::tasks::release_hold(conn, &staff, &id, Utc::now()))
                .await?
        }
        _ => return Err(UiError::NotFound),
    }
    Ok(see_other(&to))
}
