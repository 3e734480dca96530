//! The `authorities` call (EEVIDENCE.md section 2: LIST/GET of the national system's
//! AuthorityObjects, its database of competent authorities): Writ reads the system's list and
//! refreshes its registry with it ([`crate::authority::listed::refresh`], audited as
//! `eevidence.authorities_refreshed`). Run by `writ eevidence refresh-authorities`, and by
//! `writ serve` every `[etsi] eevidence_authorities_refresh_secs` ([`Periodic`]).
//!
//! Two exchanges with `<etsi.eevidence_url>/eevidence/authorities`, each an `HI1Message` signed
//! like every call (a body-bound token made with the package key): a LIST of the objects of
//! type `Authority`, then one GET per listed identifier. An answer that is not a response, an
//! action answered with an error, an identifier not answered, or an authority that cannot be
//! read refuses the whole refresh: the registry changes only from a complete, readable list.
// EEVIDENCE.md [T?]: check against TS 104 144. The AuthorityObject's schema and namespace are
// not public: Writ reads an `HI1Object` whose `xsi:type` is `AuthorityObject` (any namespace)
// with `AuthorityIdentifier` (`CountryCode`, `UniqueIdentifier`: what messages and approvals
// name), `AuthorityName`, `AuthorityCountry` (the member state) and `AuthorityType` (a
// dictionary entry, values in [`AUTHORITY_TYPES`]); it lists with the `ObjectType` entry
// `EU/EPOCObjectType/Authority` and names the system `EU/DIS` as the receiver.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::outbox::{PROFILE_OWNER, Sender, profile_version};
use crate::audit::{Actor, ActorKind};
use crate::authority::listed::{Listed, Refreshed};
use crate::db::schema::audit_entries;
use crate::db::{Db, DbConn};
use crate::etsi::model::{
    Action, ActionRequest, DictionaryEntry, EndpointId, ListRequest, Message, Object, Outcome,
    Payload,
};
use crate::etsi::service::header;
use crate::etsi::{Limits, parse, write};
use crate::policy::IssuerKind;

/// The system's endpoint identifier, the receiver of the call.
pub const SYSTEM: (&str, &str) = ("EU", "DIS");

/// Most authorities read in one refresh.
pub const MAX_AUTHORITIES: usize = 5000;

/// Largest answer read from the system.
const ANSWER_LIMIT: usize = 16 << 20;

/// The `AuthorityType` values Writ reads, and the registry kind of each.
pub const AUTHORITY_TYPES: &[(&str, IssuerKind)] = &[
    ("Judge", IssuerKind::Judge),
    ("Court", IssuerKind::Court),
    ("InvestigatingJudge", IssuerKind::InvestigatingJudge),
    ("PublicProsecutor", IssuerKind::Prosecutor),
    (
        "OtherCompetentAuthority",
        IssuerKind::AdministrativeAuthority,
    ),
];

/// Why a refresh changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// `etsi.eevidence_url` is empty.
    #[error("etsi.eevidence_url is not set: there is no national system to ask")]
    NoSystem,
    /// The exchange with the system failed.
    #[error("the national system's answer cannot be used: {0}")]
    Answer(String),
    /// The registry refused the list.
    #[error("the registry refused the list: {0}")]
    Registry(#[from] crate::authority::RegistryError),
}

fn bad(m: impl Into<String>) -> RefreshError {
    RefreshError::Answer(m.into())
}

/// A request message from Writ to the system.
fn request(sender: &Sender, actions: Vec<Action>) -> String {
    let message = Message {
        header: header(
            &sender.settings,
            EndpointId {
                country: SYSTEM.0.into(),
                id: SYSTEM.1.into(),
            },
            uuid::Uuid::new_v4().to_string(),
            profile_version(),
            Utc::now(),
        ),
        payload: Payload::Requests(
            actions
                .into_iter()
                .enumerate()
                .map(|(i, action)| ActionRequest {
                    id: u64::try_from(i).unwrap_or(u64::MAX),
                    action,
                })
                .collect(),
        ),
        signed: false,
    };
    write(&message)
}

/// Posts `xml` to `url` with a body-bound token made with the package key, and reads the answer.
async fn exchange(sender: &Sender, url: &str, xml: String) -> Result<Vec<u8>, RefreshError> {
    let (status, body) = super::outbox::exchange(&sender.client, sender, url, xml, ANSWER_LIMIT)
        .await
        .map_err(bad)?;
    if !status.is_success() {
        return Err(bad(format!("HTTP {}", status.as_u16())));
    }
    Ok(body)
}

/// The outcomes of a response, in action order, each checked to be no error.
fn outcomes(body: &[u8], wanted: usize) -> Result<Vec<Outcome>, RefreshError> {
    let limits = Limits {
        max_bytes: ANSWER_LIMIT,
        ..Limits::default()
    };
    let answer = parse(body, &limits).map_err(|e| bad(format!("not an HI1Message: {e}")))?;
    let Payload::Responses(mut responses) = answer.payload else {
        return Err(bad("the system refused the request or sent no responses"));
    };
    responses.sort_by_key(|r| r.id);
    if responses.len() != wanted
        || responses
            .iter()
            .enumerate()
            .any(|(i, r)| r.id != u64::try_from(i).unwrap_or(u64::MAX))
    {
        return Err(bad("the answer does not answer each action once"));
    }
    responses
        .into_iter()
        .map(|r| match r.outcome {
            Outcome::Error(e) => Err(bad(format!("error {}: {}", e.code, e.description))),
            o => Ok(o),
        })
        .collect()
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(node: roxmltree::Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut at = node;
    for name in path {
        at = child(at, name)?;
    }
    at.text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Reads the AuthorityObjects of a GET answer, by object identifier.
pub fn read_authorities(body: &[u8]) -> Result<Vec<(String, Listed)>, RefreshError> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the answer is not UTF-8"))?;
    let doc = roxmltree::Document::parse(text).map_err(|e| bad(format!("not XML: {e}")))?;
    let mut out = Vec::new();
    for object in doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "HI1Object")
    {
        let Some(kind) = object.attributes().find(|a| a.name() == "type") else {
            continue;
        };
        if local(kind.value()) != "AuthorityObject" {
            continue;
        }
        let need = |path: &[&str]| {
            text_of(object, path).ok_or_else(|| {
                bad(format!(
                    "an AuthorityObject has no {} (or it is empty)",
                    path.join("/")
                ))
            })
        };
        let identifier = need(&["ObjectIdentifier"])?;
        let kind_value = need(&["AuthorityType", "Value"])?;
        let kind = AUTHORITY_TYPES
            .iter()
            .find(|(v, _)| *v == kind_value)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                bad(format!(
                    "AuthorityObject {identifier}: AuthorityType {kind_value:?} is not one Writ reads"
                ))
            })?;
        out.push((
            identifier,
            Listed {
                country_code: need(&["AuthorityIdentifier", "CountryCode"])?,
                unique_identifier: need(&["AuthorityIdentifier", "UniqueIdentifier"])?,
                name: need(&["AuthorityName"])?,
                country: need(&["AuthorityCountry"])?,
                kind,
            },
        ));
    }
    Ok(out)
}

/// Asks the system for its list of authorities and refreshes the registry with it.
pub async fn refresh(db: &Db, sender: &Sender) -> Result<Refreshed, RefreshError> {
    let base = sender.settings.eevidence_url.trim_end_matches('/');
    if base.is_empty() {
        return Err(RefreshError::NoSystem);
    }
    let url = format!("{base}/eevidence/authorities");
    let list = request(
        sender,
        vec![Action::List(ListRequest {
            object_type: Some(DictionaryEntry {
                owner: PROFILE_OWNER.into(),
                name: "EPOCObjectType".into(),
                value: "Authority".into(),
            }),
            ..ListRequest::default()
        })],
    );
    let answer = exchange(sender, &url, list).await?;
    let Some(Outcome::List(records)) = outcomes(&answer, 1)?.into_iter().next() else {
        return Err(bad("the LIST was not answered with a LISTResponse"));
    };
    let ids: Vec<String> = records
        .into_iter()
        .filter(|r| r.object_type.value == "Authority")
        .map(|r| r.identifier)
        .collect();
    if ids.len() > MAX_AUTHORITIES {
        return Err(bad(format!(
            "the list names more than {MAX_AUTHORITIES} authorities"
        )));
    }
    let mut listed = Vec::new();
    if !ids.is_empty() {
        let get = request(
            sender,
            ids.iter()
                .map(|identifier| Action::Get {
                    identifier: identifier.clone(),
                })
                .collect(),
        );
        let answer = exchange(sender, &url, get).await?;
        let got = outcomes(&answer, ids.len())?;
        for (o, id) in got.iter().zip(&ids) {
            let answered = matches!(
                o,
                Outcome::Get(Object::Unsupported { identifier: Some(i), xsi_type })
                    if i == id && xsi_type.ends_with("AuthorityObject")
            );
            if !answered {
                return Err(bad(format!(
                    "authority {id} was not answered with its object"
                )));
            }
        }
        let mut read = read_authorities(&answer)?;
        for id in &ids {
            let Some(at) = read.iter().position(|(i, _)| i == id) else {
                return Err(bad(format!("authority {id} cannot be read")));
            };
            listed.push(read.swap_remove(at).1);
        }
    }
    let actor = Actor::new(ActorKind::System, "eevidence");
    let refreshed = db
        .run(move |c| crate::authority::listed::refresh(c, &actor, &listed, Utc::now()))
        .await?;
    Ok(refreshed)
}

/// When the registry was last refreshed from the system's list, by any instance: the time of
/// the newest `eevidence.authorities_refreshed` entry.
pub fn last_refreshed(conn: &mut DbConn) -> QueryResult<Option<DateTime<Utc>>> {
    let at: Option<String> = audit_entries::table
        .filter(
            audit_entries::event.eq(crate::audit::Event::EevidenceAuthoritiesRefreshed.as_str()),
        )
        .order(audit_entries::seq.desc())
        .select(audit_entries::at)
        .first(conn)
        .optional()?;
    Ok(at
        .and_then(|a| DateTime::parse_from_rfc3339(&a).ok())
        .map(|t| t.with_timezone(&Utc)))
}

/// Whether a refresh is due at `now`: never refreshed, or last refreshed `every` ago or more.
pub fn due(last: Option<DateTime<Utc>>, now: DateTime<Utc>, every: TimeDelta) -> bool {
    last.is_none_or(|at| now - at >= every)
}

/// Looks for a due refresh at most this often.
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// After a failed refresh, the next try waits at most this long.
const RETRY_AT_MOST: Duration = Duration::from_secs(15 * 60);

/// The refresh `writ serve` runs with the e-Evidence calls: every
/// `[etsi] eevidence_authorities_refresh_secs` (0: never), counted from the newest refresh any
/// instance (or the command) made, so that instances behind one database do not each refresh
/// (two that look at the same moment may both refresh: a second refresh of the same list
/// changes nothing but adds its audit entry). It looks once a minute (or once an interval, if
/// shorter); a refresh that fails is logged and tried again after an interval, at most 15
/// minutes.
#[derive(Debug)]
pub struct Periodic {
    every: Option<Duration>,
    next_look: Instant,
}

impl Periodic {
    /// The refresh `settings` ask for, first looked at straight away.
    pub fn new(settings: &crate::settings::EtsiSettings) -> Self {
        Self {
            every: (settings.eevidence_authorities_refresh_secs > 0)
                .then(|| Duration::from_secs(settings.eevidence_authorities_refresh_secs)),
            next_look: Instant::now(),
        }
    }

    /// Refreshes if it is time to look and a refresh is due; returns what happened, if it tried.
    pub async fn run_if_due(
        &mut self,
        db: &Db,
        sender: &Sender,
    ) -> Option<Result<Refreshed, RefreshError>> {
        let every = self.every?;
        let now = Instant::now();
        if now < self.next_look {
            return None;
        }
        self.next_look = now + every.min(LOOK_EVERY);
        let every_delta = TimeDelta::from_std(every).unwrap_or(TimeDelta::MAX);
        let is_due = db
            .run(move |c| {
                last_refreshed(c)
                    .map(|last| due(last, Utc::now(), every_delta))
                    .map_err(crate::db::DbError::Query)
            })
            .await;
        match is_due {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell when the authorities were last refreshed");
                return None;
            }
        }
        let result = refresh(db, sender).await;
        match &result {
            Ok(r) => tracing::info!(
                listed = r.listed,
                added = r.added,
                changed = r.changed,
                removed = r.removed,
                "the registry was refreshed from the national system's authority list"
            ),
            Err(e) => {
                self.next_look = now + every.min(RETRY_AT_MOST);
                tracing::warn!(error = %e, "the periodic authorities refresh failed; trying again later");
            }
        }
        Some(result)
    }
}

#[cfg(test)]
mod periodic_tests {
    use super::*;

    #[test]
    fn a_refresh_is_due_when_never_made_or_an_interval_old() {
        let now = Utc::now();
        let day = TimeDelta::days(1);
        assert!(due(None, now, day));
        assert!(!due(Some(now - TimeDelta::hours(23)), now, day));
        assert!(due(Some(now - day), now, day));
        assert!(due(Some(now - TimeDelta::days(3)), now, day));
        // A clock that went back: not due until the interval has passed.
        assert!(!due(Some(now + TimeDelta::hours(1)), now, day));
    }
}
