//! EU e-Evidence over `/eevidence/*`: a stand-in national system (test code, playing the
//! issuing and enforcing authorities) sends each workflow, and every message Writ sends back is
//! checked against the TS 103 120 schemas and the profile's dictionaries.
//!
//! The issuing authority here is a French public prosecutor's office (`XX/ACTOR05`, signing with
//! the HI-1 tests' DOJ key), and the validating authority an investigating judge (`XX/VALID01`).
//! Each EPOC carries what Form 1 says (the approvals with their roles, the legal provisions, the
//! offence, the priority and flags) and is decided under `eu.epoc`; each EPOC-PR under
//! `eu.epoc_pr`; Writ, established in Ireland, is bound by both.

use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::StatusCode;
use writ::audit::{Actor, ActorKind};
use writ::authority::{KeyAlgorithm, NewAuthority};
use writ::etsi::model::{ActionResponse, EndpointId, Header, Message, Outcome, Payload};
use writ::etsi::{Limits, parse};
use writ::policy::IssuerKind;

use crate::both_backends;
use crate::etsi::{DOJ, Reply, envelope, error_of, identity};
use crate::etsi_schema::assert_valid;
use crate::helpers::Backend;
use crate::orders::{Api, public_pem};
use crate::workspace::{Browser, PASSWORD, add_users, hash_in, seed_alice};

both_backends!(
    a_national_epoc_is_delivered_redelivered_and_closed,
    a_notified_epoc_waits_for_the_enforcing_authority,
    an_unknown_authority_goes_to_human_judgement,
    form3_suspends_the_clock_until_clarified_and_withdrawal_needs_a_person,
    an_epoc_pr_is_preserved_extended_followed_and_another_lapses,
    a_new_deadline_replaces_the_due_date,
    immunities_are_maintained_and_a_conflict_of_laws_goes_to_court,
    endpreservation_lifts_the_hold,
    withdrawal_after_preparation_halts_the_release,
    the_system_authenticates_by_pinned_certificate_or_token,
    calls_out_present_writs_client_certificate,
    an_outcome_above_the_inline_limit_goes_by_reference,
    datapreserved_waits_until_the_holds_are_placed,
    form3_is_in_the_orders_language,
    the_systems_authority_list_refreshes_the_registry,
    a_registered_validator_is_judged_on_its_registered_kind,
    the_registry_follows_the_list_periodically_and_from_the_command,
    a_preservation_ended_while_its_holds_resolve_does_not_deadlock,
    holds_resolved_by_a_process_that_stopped_are_confirmed_by_the_jobs,
);

/// The stand-in national system: what Writ sent, how many calls to refuse first, and the
/// authorities it lists at `/eevidence/authorities` (object id, identifier, name, type), the
/// objects sent without a name when `malformed`.
#[derive(Default)]
struct System {
    received: Vec<(String, String)>,
    refuse_first: usize,
    /// The audience of Writ's request tokens: when set, the stand-in fetches every package an
    /// `outcome` sends by reference, as the DOJ office (the issuing authority of the tests).
    fetch_audience: Option<String>,
    /// Each fetch: the URL, the HTTP status, the body, and whether its SHA-256 is the
    /// DeliveryObject's checksum.
    fetched: Vec<(String, u16, Vec<u8>, bool)>,
    authorities: Vec<(String, String, String, String)>,
    malformed: bool,
}

/// The packages an `outcome` sends by reference: (URL, checksum).
fn by_reference(xml: &str) -> Vec<(String, Option<String>)> {
    let m = parse(xml.as_bytes(), &Limits::default()).unwrap();
    let Payload::Requests(actions) = m.payload else {
        return Vec::new();
    };
    actions
        .into_iter()
        .filter_map(|a| match a.action {
            writ::etsi::model::Action::Deliver {
                object: writ::etsi::model::Object::Delivery(d),
                ..
            } => d.url.map(|u| (u.url, u.checksum)),
            _ => None,
        })
        .collect()
}

/// GET `url` as the DOJ office (a request token bound to GET, the path and the empty body).
async fn fetch_as(signer: crate::orders::Signer, audience: &str, url: &str) -> reqwest::Response {
    let path = reqwest::Url::parse(url).unwrap().path().to_owned();
    let token = writ::authority::client::sign_request(
        KeyAlgorithm::EdDSA,
        &crate::orders::private_pem(signer.seed),
        signer.kid,
        &writ::authority::client::TokenRequest {
            issuer: signer.iss,
            audience,
            method: "GET",
            path: &path,
            body: b"",
            now: chrono::Utc::now().timestamp(),
            lifetime_secs: 120,
        },
    )
    .unwrap();
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The stand-in's answer at `/eevidence/authorities`: a LISTResponse of its authorities, or a
/// GETResponse with the AuthorityObject of each GET (the object's schema is not public: the
/// elements Writ reads, in a namespace of the stand-in's).
fn authorities_answer(m: &Message, s: &System) -> String {
    use writ::etsi::model::Action;
    let Payload::Requests(actions) = &m.payload else {
        panic!("not a request")
    };
    let mut responses = String::new();
    for a in actions {
        let body = match &a.action {
            Action::List(_) => {
                let records: String = s
                    .authorities
                    .iter()
                    .map(|(oid, ..)| format!(
                        "<ListResponseRecord><ObjectType><common:Owner>EU</common:Owner><common:Name>EPOCObjectType</common:Name><common:Value>Authority</common:Value></ObjectType><Identifier>{oid}</Identifier><Generation>1</Generation></ListResponseRecord>"
                    ))
                    .collect();
                format!("<LISTResponse>{records}</LISTResponse>")
            }
            Action::Get { identifier } => {
                let (oid, unique, name, kind) = s
                    .authorities
                    .iter()
                    .find(|a| a.0 == *identifier)
                    .expect("a listed authority");
                let name = if s.malformed {
                    String::new()
                } else {
                    format!("<dis:AuthorityName>{name}</dis:AuthorityName>")
                };
                format!(
                    r#"<GETResponse><HI1Object xsi:type="dis:AuthorityObject" xmlns:dis="urn:example:dis:authority"><ObjectIdentifier>{oid}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>DIS</OwnerIdentifier><dis:AuthorityIdentifier><dis:CountryCode>XX</dis:CountryCode><dis:UniqueIdentifier>{unique}</dis:UniqueIdentifier></dis:AuthorityIdentifier>{name}<dis:AuthorityCountry>FR</dis:AuthorityCountry><dis:AuthorityType><common:Owner>EU</common:Owner><common:Name>EPOCAuthorityType</common:Name><common:Value>{kind}</common:Value></dis:AuthorityType></HI1Object></GETResponse>"#
                )
            }
            other => panic!("Writ sent {other:?} to /eevidence/authorities"),
        };
        responses.push_str(&format!(
            "<ActionResponse><ActionIdentifier>{}</ActionIdentifier>{body}</ActionResponse>",
            a.id
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<HI1Message xmlns="http://uri.etsi.org/03120/common/2019/10/Core" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:common="http://uri.etsi.org/03120/common/2016/02/Common">
<Header><SenderIdentifier><CountryCode>{sc}</CountryCode><UniqueIdentifier>{si}</UniqueIdentifier></SenderIdentifier><ReceiverIdentifier><CountryCode>{rc}</CountryCode><UniqueIdentifier>{ri}</UniqueIdentifier></ReceiverIdentifier><TransactionIdentifier>{tx}</TransactionIdentifier><Timestamp>{now}</Timestamp><Version><ETSIVersion>V1.23.1</ETSIVersion><NationalProfileOwner>EU</NationalProfileOwner><NationalProfileVersion>v1.3.1</NationalProfileVersion></Version></Header>
<Payload><ResponsePayload><ActionResponses>{responses}</ActionResponses></ResponsePayload></Payload>
</HI1Message>"#,
        sc = m.header.receiver.country,
        si = m.header.receiver.id,
        rc = m.header.sender.country,
        ri = m.header.sender.id,
        tx = m.header.transaction_id,
        now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )
}

async fn start_system(state: Arc<Mutex<System>>) -> String {
    start_system_on(state, None).await
}

/// The stand-in, over mutual TLS when `tls` is given (its URL is then `https://localhost`).
async fn start_system_on(state: Arc<Mutex<System>>, tls: Option<rustls::ServerConfig>) -> String {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    async fn take(
        req: HttpRequest,
        body: web::Bytes,
        state: web::Data<Arc<Mutex<System>>>,
    ) -> HttpResponse {
        let text = String::from_utf8(body.to_vec()).unwrap();
        let (refuse, audience) = {
            let mut s = state.lock().unwrap();
            s.received.push((req.path().to_owned(), text.clone()));
            let audience = s.fetch_audience.clone();
            if s.refuse_first > 0 {
                s.refuse_first -= 1;
                (true, audience)
            } else {
                (false, audience)
            }
        };
        if refuse {
            return HttpResponse::ServiceUnavailable().finish();
        }
        // A package sent by reference is fetched from Writ before the outcome is answered.
        if let Some(audience) = audience.filter(|_| req.path() == "/eevidence/outcome") {
            for (url, checksum) in by_reference(&text) {
                let resp = fetch_as(DOJ, &audience, &url).await;
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap().to_vec();
                let matches =
                    checksum.as_deref() == Some(writ::digest::sha256_hex(&bytes).as_str());
                state
                    .lock()
                    .unwrap()
                    .fetched
                    .push((url, status, bytes, matches));
            }
        }
        let m = parse(text.as_bytes(), &Limits::default()).unwrap();
        if req.path() == "/eevidence/authorities" {
            let answer = authorities_answer(&m, &state.lock().unwrap());
            return HttpResponse::Ok()
                .content_type("application/xml")
                .body(answer);
        }
        let Payload::Requests(actions) = &m.payload else {
            panic!("not a request")
        };
        let responses = actions
            .iter()
            .map(|a| ActionResponse {
                id: a.id,
                outcome: match &a.action {
                    writ::etsi::model::Action::Deliver { identifier, .. } => Outcome::Deliver {
                        identifier: identifier.clone(),
                    },
                    writ::etsi::model::Action::Create(o) => Outcome::Create {
                        identifier: o.identifier().unwrap_or_default().to_owned(),
                    },
                    other => panic!("Writ sent {other:?}"),
                },
            })
            .collect();
        let answer = Message {
            header: Header {
                sender: m.header.receiver.clone(),
                receiver: m.header.sender.clone(),
                transaction_id: m.header.transaction_id.clone(),
                timestamp: chrono::Utc::now().fixed_offset(),
                version: m.header.version.clone(),
                workflow_identifier: None,
            },
            payload: Payload::Responses(responses),
            signed: false,
        };
        HttpResponse::Ok()
            .content_type("application/xml")
            .body(writ::etsi::write(&answer))
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::post().to(take))
    })
    .workers(1);
    let (server, url) = match tls {
        Some(config) => (
            server.listen_rustls_0_23(listener, config).unwrap(),
            format!("https://localhost:{port}"),
        ),
        None => (
            server.listen(listener).unwrap(),
            format!("http://127.0.0.1:{port}"),
        ),
    };
    tokio::spawn(server.run());
    url
}

struct World {
    api: Api,
    system: Arc<Mutex<System>>,
    /// The stand-in's base URL.
    url: String,
}

/// Writ (`XX/ACTOR02`) with its calls going to the stand-in; the DOJ office registered as
/// `XX/ACTOR05`, and a second authority `XX/VALID01` as a validating authority.
async fn start(backend: Backend) -> World {
    let system = Arc::new(Mutex::new(System::default()));
    let url = start_system(system.clone()).await;
    start_with(backend, system, &[("WRIT_ETSI__EEVIDENCE_URL", &url)]).await
}

/// [`start`] with these further settings (the stand-in's URL among them).
async fn start_with(backend: Backend, system: Arc<Mutex<System>>, extra: &[(&str, &str)]) -> World {
    let mut settings = vec![
        ("WRIT_ETSI__UNIQUE_IDENTIFIER", "ACTOR02"),
        ("WRIT_API__JOBS_INTERVAL_SECS", "1"),
        ("WRIT_ETSI__DELIVERY_BACKOFF_SECS", "0"),
        // The periodic authorities refresh would add calls and audit entries to every test;
        // the tests of it turn it on.
        ("WRIT_ETSI__EEVIDENCE_AUTHORITIES_REFRESH_SECS", "0"),
    ];
    settings.extend_from_slice(extra);
    let url = extra
        .iter()
        .find(|(k, _)| *k == "WRIT_ETSI__EEVIDENCE_URL")
        .map(|(_, v)| (*v).to_owned())
        .unwrap_or_default();
    let api = Api::start(backend, &settings).await;
    api.app.pool.run(register).await.unwrap();
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    World { api, system, url }
}

/// Registers the issuing authority, a French public prosecutor's office (`XX/ACTOR05`, with the
/// DOJ key of the HI-1 tests), and the validating authority `XX/VALID01`, an investigating
/// judge.
fn register(conn: &mut writ::db::DbConn) -> Result<(), writ::db::DbError> {
    let actor = Actor::new(ActorKind::System, "test");
    for (id, name, kind) in [
        (DOJ.iss, "Parquet de Paris", IssuerKind::Prosecutor),
        (
            "xx-validator",
            "Juge d'instruction de Paris",
            IssuerKind::InvestigatingJudge,
        ),
    ] {
        writ::authority::add(
            conn,
            &actor,
            &NewAuthority {
                id: id.into(),
                name: name.into(),
                country: "FR".into(),
                kind,
                contacts: vec!["parquet@justice.example".into()],
            },
        )
        .unwrap();
    }
    writ::authority::add_key(
        conn,
        &actor,
        DOJ.iss,
        DOJ.kid,
        KeyAlgorithm::EdDSA,
        &public_pem(DOJ.seed),
    )
    .unwrap();
    // The instrument registered for plain HI-1 does not decide an EPOC: its legal type does.
    writ::authority::set_etsi(
        conn,
        &actor,
        &identity(DOJ.iss, "ACTOR05", "fr.requisition", None),
    )
    .unwrap();
    writ::authority::set_etsi(
        conn,
        &actor,
        &identity("xx-validator", "VALID01", "fr.requisition", None),
    )
    .unwrap();
    Ok(())
}

async fn post(api: &Api, endpoint: &str, xml: &str) -> Reply {
    let path = format!("/eevidence/{endpoint}");
    let token = api.token(DOJ, "POST", &path, xml.as_bytes());
    let resp = api
        .app
        .client
        .post(format!("{}{path}", api.app.address))
        .header("content-type", "application/xml")
        .bearer_auth(token)
        .body(xml.to_owned())
        .send()
        .await
        .unwrap();
    crate::etsi::reply_of(resp).await
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn eu(name: &str, value: &str) -> String {
    format!(
        "<common:Owner>EU</common:Owner><common:Name>{name}</common:Name><common:Value>{value}</common:Value>"
    )
}

/// The e-Evidence profile's version block in place of the HI-1 tests' one.
fn profiled(xml: String) -> String {
    xml.replace(
        "<NationalProfileOwner>XX</NationalProfileOwner><NationalProfileVersion>v1.0</NationalProfileVersion>",
        "<NationalProfileOwner>EU</NationalProfileOwner><NationalProfileVersion>v1.3.1</NationalProfileVersion>",
    )
}

/// An EPOC (or, with `pr`, an EPOC-PR) for the subscriber data of Alice's phone number, one
/// task per id in `tasks`, as Form 1 (Form 2) says it: issued by the prosecutor (approval role
/// `IssuingAuthority`, naming `ACTOR05`), with the legal provisions, the offence, the priority,
/// the flags and the form's PDF; `approvals` adds further approvals (a validating authority).
struct Order<'a> {
    auth: &'a str,
    tasks: &'a [String],
    pr: bool,
    priority: &'a str,
    flags: &'a [&'a str],
    approvals: &'a str,
    task_associated: &'a str,
}

impl Default for Order<'_> {
    fn default() -> Self {
        Order {
            auth: "",
            tasks: &[],
            pr: false,
            priority: "TenDaysASAP",
            flags: &[],
            approvals: "",
            task_associated: "",
        }
    }
}

fn order_xml(o: &Order<'_>) -> String {
    let now = chrono::Utc::now();
    let t = |d: chrono::Duration| (now + d).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let doc = id();
    let pdf = base64::engine::general_purpose::STANDARD.encode(crate::orders::PDF);
    let flags: String = o
        .flags
        .iter()
        .map(|f| {
            format!(
                "<auth:AuthorisationFlag>{}</auth:AuthorisationFlag>",
                eu("EPOCAuthorisationFlag", f)
            )
        })
        .collect();
    let priority = if o.pr {
        String::new()
    } else {
        format!(
            "<auth:AuthorisationPriority>{}</auth:AuthorisationPriority>",
            eu("EPOCPriority", o.priority)
        )
    };
    let mut actions = format!(
        r#"<ActionRequest><ActionIdentifier>0</ActionIdentifier><CREATE>
<HI1Object xsi:type="auth:AuthorisationObject">
  <ObjectIdentifier>{auth}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier>
  <AssociatedObjects><AssociatedObject>{doc}</AssociatedObject></AssociatedObjects>
  <auth:AuthorisationReference>EPOC-2026-117</auth:AuthorisationReference>
  <auth:AuthorisationLegalType>{legal}</auth:AuthorisationLegalType>{priority}
  <auth:AuthorisationDesiredStatus><common:Owner>ETSI</common:Owner><common:Name>AuthorisationDesiredStatus</common:Name><common:Value>SubmittedToCSP</common:Value></auth:AuthorisationDesiredStatus>
  <auth:AuthorisationTimespan><auth:StartTime>{start}</auth:StartTime><auth:EndTime>{end}</auth:EndTime></auth:AuthorisationTimespan>
  <auth:AuthorisationCreationTimestamp>{start}</auth:AuthorisationCreationTimestamp>
  <auth:AuthorisationApprovalDetails><common:ApprovalReference>ACTOR05</common:ApprovalReference><common:ApproverDetails><common:ApproverName>M. Durand, procureur de la République</common:ApproverName><common:ApproverRole>IssuingAuthority</common:ApproverRole></common:ApproverDetails><common:ApprovalTimestamp>{start}</common:ApprovalTimestamp></auth:AuthorisationApprovalDetails>{approvals}
  <auth:AuthorisationFlags>{provisions}{flags}</auth:AuthorisationFlags>
  <auth:AuthorisationManualInformation>The account was used to defraud elderly people; where the order is urgent, a victim's life is threatened.</auth:AuthorisationManualInformation>
  <auth:AuthorisationTypeOfCase><common:Owner>ACTOR05</common:Owner><common:Name>TypeOfCase</common:Name><common:Value>Escroquerie en bande organisée (fraud by an organised group)</common:Value></auth:AuthorisationTypeOfCase>
</HI1Object></CREATE></ActionRequest>
<ActionRequest><ActionIdentifier>1</ActionIdentifier><CREATE>
<HI1Object xsi:type="doc:DocumentObject">
  <ObjectIdentifier>{doc}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier>
  <doc:DocumentReference>{form}</doc:DocumentReference>
  <doc:DocumentType>{form_type}</doc:DocumentType>
  <doc:DocumentBody><doc:Contents>{pdf}</doc:Contents><doc:ContentType>application/pdf</doc:ContentType></doc:DocumentBody>
</HI1Object></CREATE></ActionRequest>"#,
        auth = o.auth,
        legal = eu("EPOCLegalType", if o.pr { "EPOCPR" } else { "EPOC" }),
        start = t(-chrono::Duration::days(1)),
        end = t(chrono::Duration::days(30)),
        approvals = o.approvals,
        provisions = [
            "Regulation (EU) 2023/1543 Art 4(1), 5(3)",
            "Code pénal art 313-2",
        ]
        .iter()
        .map(|p| format!(
            "<auth:AuthorisationFlag><common:Owner>ACTOR02</common:Owner><common:Name>WritLegalProvision</common:Name><common:Value>{p}</common:Value></auth:AuthorisationFlag>"
        ))
        .collect::<String>(),
        form = if o.pr { "Form2" } else { "Form1" },
        form_type = eu("EPOCDocumentType", if o.pr { "Form2" } else { "Form1" }),
    );
    for (i, task) in o.tasks.iter().enumerate() {
        let (kind, details) = if o.pr {
            (
                "task:LPTaskObject",
                "<task:DesiredStatus><common:Owner>ETSI</common:Owner><common:Name>LPTaskDesiredStatus</common:Name><common:Value>AwaitingPreservation</common:Value></task:DesiredStatus>",
            )
        } else {
            (
                "task:LDTaskObject",
                "<task:Reference>XX-ACTOR05-0042</task:Reference><task:DesiredStatus><common:Owner>ETSI</common:Owner><common:Name>LDTaskDesiredStatus</common:Name><common:Value>AwaitingDisclosure</common:Value></task:DesiredStatus>",
            )
        };
        actions.push_str(&format!(
            r#"<ActionRequest><ActionIdentifier>{n}</ActionIdentifier><CREATE>
<HI1Object xsi:type="{kind}">
  <ObjectIdentifier>{task}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier>
  <AssociatedObjects><AssociatedObject>{auth}</AssociatedObject>{assoc}</AssociatedObjects>{details}
  <task:RequestDetails>
    <task:Type><common:Owner>ETSI</common:Owner><common:Name>RequestType</common:Name><common:Value>SubscriberData</common:Value></task:Type>
    <task:RequestValues><task:RequestValue><task:FormatType><task:FormatOwner>ETSI</task:FormatOwner><task:FormatName>InternationalE164</task:FormatName></task:FormatType><task:Value>33612345678</task:Value></task:RequestValue></task:RequestValues>
  </task:RequestDetails>
</HI1Object></CREATE></ActionRequest>"#,
            n = i + 2,
            auth = o.auth,
            assoc = o.task_associated,
        ));
    }
    profiled(envelope("ACTOR05", &actions))
}

fn document_xml(endpoint_doc: &str, kind: &str, associated: &[&str], text: &str) -> String {
    let assoc: String = associated
        .iter()
        .map(|a| format!("<AssociatedObject>{a}</AssociatedObject>"))
        .collect();
    let body = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    envelope(
        "ACTOR05",
        &format!(
            r#"<ActionRequest><ActionIdentifier>0</ActionIdentifier><CREATE>
<HI1Object xsi:type="doc:DocumentObject">
  <ObjectIdentifier>{endpoint_doc}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier>
  <AssociatedObjects>{assoc}</AssociatedObjects>
  <doc:DocumentType>{t}</doc:DocumentType>
  <doc:DocumentBody><doc:Contents>{body}</doc:Contents><doc:ContentType>text/plain</doc:ContentType></doc:DocumentBody>
</HI1Object></CREATE></ActionRequest>"#,
            t = eu("EPOCDocumentType", kind)
        ),
    )
}

fn update_xml(object: &str) -> String {
    envelope(
        "ACTOR05",
        &format!(
            "<ActionRequest><ActionIdentifier>0</ActionIdentifier><UPDATE>{object}</UPDATE></ActionRequest>"
        ),
    )
}

fn all_created(r: &Reply) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (_, o) in r.outcomes() {
        assert!(
            matches!(o, Outcome::Create { .. } | Outcome::Update { .. }),
            "{}",
            r.text
        );
    }
}

/// The orders of e-Evidence tasks, by task id.
async fn order_of(api: &Api, task: &str) -> String {
    let task = task.to_owned();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::eevidence_orders;
            eevidence_orders::table
                .filter(eevidence_orders::task_id.eq(&task))
                .select(eevidence_orders::order_id)
                .first::<String>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
}

/// The instrument an order was decided under and the engine's outcome.
async fn decided(api: &Api, order: &str) -> (String, String) {
    let order = order.to_owned();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            orders::table
                .find(&order)
                .select((orders::instrument, orders::outcome))
                .first::<(String, String)>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
}

async fn state_of(api: &Api, order: &str) -> writ::orders::eevidence::Lifecycle {
    let order = order.to_owned();
    api.app
        .pool
        .run(move |conn| writ::orders::eevidence::load(conn, &order))
        .await
        .unwrap()
        .expect("an e-Evidence order")
}

/// Runs the hold resolver (the background jobs run it every second as well) until the
/// EPOC-PR's target holds are placed and it is preserved.
async fn preserved(api: &Api, order: &str) {
    for _ in 0..150 {
        api.app
            .pool
            .run(|conn| writ::orders::holds::resolve_all(conn, chrono::Utc::now()))
            .await
            .unwrap();
        if state_of(api, order).await.state.as_str() == "preserved" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{order} was not preserved");
}

/// Sets a lifecycle time column into the past (as if the clock had run), for the window and
/// period tests.
async fn age(api: &Api, order: &str, column: &'static str) {
    let order = order.to_owned();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::eevidence_orders as e;
            let past = chrono::Utc::now().timestamp_micros() - 1;
            let q = diesel::update(e::table.find(&order));
            match column {
                "ea_until" => q.set(e::ea_until.eq(Some(past))).execute(conn),
                _ => q.set(e::preserve_until.eq(Some(past))).execute(conn),
            }
            .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
}

/// Prepares and approves (two people) an order's package; returns the second approval's
/// answer (status, body): 303 when released.
async fn release(api: &Api, order: &str) -> (StatusCode, String) {
    let mut alex = Browser::new(&api.app);
    let mut bea = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    bea.sign_in("bea", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (s, preview, _) = alex
        .post_follow(&format!("/orders/{order}/package"), &[("csrf", &csrf)])
        .await;
    if s != StatusCode::OK {
        return (s, preview);
    }
    let hash = hash_in(&preview);
    let (s, body, _) = alex
        .post(
            &format!("/orders/{order}/approve"),
            &[
                ("csrf", &csrf),
                ("snapshot_sha256", &hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    if s != StatusCode::SEE_OTHER {
        return (s, body);
    }
    let csrf_b = bea.session_csrf().await;
    let (s, body, _) = bea
        .post(
            &format!("/orders/{order}/approve"),
            &[
                ("csrf", &csrf_b),
                ("snapshot_sha256", &hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    (s, body)
}

/// Waits until the order's calls to `endpoint` number `n`, all acknowledged.
async fn acknowledged(api: &Api, order: &str, endpoint: &str, n: usize) -> Vec<String> {
    for _ in 0..150 {
        let o = order.to_owned();
        let calls = api
            .app
            .pool
            .run(move |conn| writ::eevidence::outbox::calls_of(conn, &o))
            .await
            .unwrap();
        let mine: Vec<_> = calls.iter().filter(|c| c.endpoint == endpoint).collect();
        if mine.len() == n && mine.iter().all(|c| c.status == "acknowledged") {
            return mine.iter().map(|c| c.id.clone()).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the {endpoint} calls of {order} were not acknowledged");
}

fn staff() -> writ::staff::Staff {
    writ::staff::Staff {
        username: "alex".into(),
        display_name: "Alex".into(),
        role: writ::staff::Role::LegalApprover,
        csrf_token: String::new(),
        unread_notifications: 0,
        time_zone: "UTC".into(),
    }
}

/// Every message the stand-in received validates against the schemas and uses the profile's
/// dictionaries as EEVIDENCE.md lists them.
fn check_sent(system: &Arc<Mutex<System>>) -> Vec<(String, String)> {
    let received = system.lock().unwrap().received.clone();
    let named: Vec<(String, String)> = received
        .iter()
        .enumerate()
        .map(|(i, (path, xml))| {
            (
                format!("sent-{i}-{}.xml", path.replace('/', "_")),
                xml.clone(),
            )
        })
        .collect();
    let docs: Vec<(&str, &str)> = named
        .iter()
        .map(|(n, x)| (n.as_str(), x.as_str()))
        .collect();
    if !docs.is_empty() {
        assert_valid(&docs);
    }
    for (path, xml) in &received {
        let m = parse(xml.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.header.version.national_profile_owner, "EU");
        assert_eq!(
            m.header.sender,
            EndpointId {
                country: "XX".into(),
                id: "ACTOR02".into()
            }
        );
        let wanted = match path.as_str() {
            "/eevidence/datapreserved" => Some("DataPreserved"),
            "/eevidence/confirmwithdrawal" => Some("ConfirmationOfWithdrawal"),
            "/eevidence/nonexecution" => Some("NonExecution"),
            "/eevidence/outcome" | "/eevidence/authorities" => None,
            other => panic!("Writ called {other}"),
        };
        let compact: String = xml.lines().map(str::trim).collect();
        if let Some(kind) = wanted {
            assert!(
                compact.contains(&format!(
                    "<notification:NotificationType><common:Owner>EU</common:Owner><common:Name>EPOCNotificationType</common:Name><common:Value>{kind}</common:Value>"
                )),
                "{xml}"
            );
        }
    }
    received
}

async fn a_national_epoc_is_delivered_redelivered_and_closed(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    w.system.lock().unwrap().refuse_first = 1;
    let (auth, task) = (id(), id());
    let xml = order_xml(&Order {
        auth: &auth,
        tasks: std::slice::from_ref(&task),
        ..Order::default()
    });
    let r = post(api, "production", &xml).await;
    all_created(&r);
    // A replayed message gets the first answer and creates nothing more.
    let again = post(api, "production", &xml).await;
    assert_eq!(again.text, r.text);
    let order = order_of(api, &task).await;
    // Decided under the Regulation (whatever is registered for plain HI-1), complete and
    // issued by an authority that may: for review.
    assert_eq!(
        decided(api, &order).await,
        ("eu.epoc".to_owned(), "acceptable_for_review".to_owned())
    );
    let lc = state_of(api, &order).await;
    assert_eq!(lc.state.as_str(), "executing");
    assert_eq!(
        lc.due_at.unwrap() - lc.received_at,
        writ::orders::eevidence::TEN_DAYS
    );
    // A production message at the preservation endpoint is refused, naming why.
    let other = order_xml(&Order {
        auth: &id(),
        tasks: &[id()],
        ..Order::default()
    });
    let r = post(api, "preservation", &other).await;
    let (code, text) = error_of(&r.outcomes()[0].1);
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("EPOCPR"), "{text}");

    let (s, body) = release(api, &order).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(state_of(api, &order).await.state.as_str(), "delivered");
    // Refused once, retried, acknowledged.
    let calls = acknowledged(api, &order, "outcome", 1).await;
    // The IA reports an error: the outcome goes again; then Received closes it.
    let status = |s: &str| {
        update_xml(&format!(
            r#"<HI1Object xsi:type="delivery:DeliveryObject" xmlns:delivery="http://uri.etsi.org/03120/common/2019/10/Delivery"><ObjectIdentifier>{}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR02</OwnerIdentifier><delivery:DeliveryStatus><common:Owner>ETSI</common:Owner><common:Name>DeliveryStatus</common:Name><common:Value>{s}</common:Value></delivery:DeliveryStatus></HI1Object>"#,
            calls[0]
        ))
    };
    all_created(&post(api, "deliverystatus", &status("Error")).await);
    acknowledged(api, &order, "outcome", 2).await;
    all_created(&post(api, "deliverystatus", &status("Received")).await);
    assert_eq!(state_of(api, &order).await.state.as_str(), "closed");
    let sent = check_sent(&w.system);
    let outcomes: Vec<_> = sent
        .iter()
        .filter(|(p, _)| p == "/eevidence/outcome")
        .collect();
    assert_eq!(
        outcomes.len(),
        3,
        "one refused, one acknowledged, one redelivered"
    );
    let first = parse(outcomes[0].1.as_bytes(), &Limits::default()).unwrap();
    let second = parse(outcomes[1].1.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(first.header.transaction_id, second.header.transaction_id);
    assert!(outcomes[1].1.contains("writ-package-"));
}

async fn a_notified_epoc_waits_for_the_enforcing_authority(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    // Two tasks; the enforcing authority refuses the second.
    let (auth, t1, t2) = (id(), id(), id());
    let r = post(
        api,
        "production",
        &order_xml(&Order {
            auth: &auth,
            tasks: &[t1.clone(), t2.clone()],
            priority: "TenDaysSubjectToEA",
            flags: &["EnforcingAuthorityNotified"],
            ..Order::default()
        }),
    )
    .await;
    all_created(&r);
    let (o1, o2) = (order_of(api, &t1).await, order_of(api, &t2).await);
    assert_eq!(state_of(api, &o1).await.state.as_str(), "ea_hold");
    let (s, body) = release(api, &o1).await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "released during the EA window: {body}"
    );
    assert!(body.contains("review window"), "{body}");
    let r = post(
        api,
        "groundsforrefusal",
        &document_xml(
            &id(),
            "PartialGroundsForRefusal",
            &[&auth, &t2],
            "Art 12(1)(a)",
        ),
    )
    .await;
    all_created(&r);
    assert_eq!(state_of(api, &o1).await.state.as_str(), "releasable");
    assert_eq!(state_of(api, &o2).await.state.as_str(), "refused_by_ea");
    // Day 10 passing never releases refused data.
    age(api, &o2, "ea_until").await;
    let (s, body) = release(api, &o2).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("never released"), "{body}");
    let (s, body) = release(api, &o1).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");

    // Full grounds: nothing, ever.
    let (auth, t3) = (id(), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&t3),
                priority: "TenDaysSubjectToEA",
                ..Order::default()
            }),
        )
        .await,
    );
    let o3 = order_of(api, &t3).await;
    all_created(
        &post(
            api,
            "groundsforrefusal",
            &document_xml(&id(), "FullGroundsForRefusal", &[&auth], ""),
        )
        .await,
    );
    age(api, &o3, "ea_until").await;
    assert_eq!(release(api, &o3).await.0, StatusCode::CONFLICT);

    // No grounds: released at once; a window that ends without a decision releases too.
    let (auth, t4, t5) = (id(), id(), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&t4),
                priority: "TenDaysSubjectToEA",
                ..Order::default()
            }),
        )
        .await,
    );
    all_created(
        &post(
            api,
            "groundsforrefusal",
            &document_xml(&id(), "NoGroundsForRefusal", &[&auth], ""),
        )
        .await,
    );
    let o4 = order_of(api, &t4).await;
    assert_eq!(release(api, &o4).await.0, StatusCode::SEE_OTHER);
    let auth5 = id();
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth5,
                tasks: std::slice::from_ref(&t5),
                priority: "TenDaysSubjectToEA",
                ..Order::default()
            }),
        )
        .await,
    );
    let o5 = order_of(api, &t5).await;
    age(api, &o5, "ea_until").await;
    assert_eq!(release(api, &o5).await.0, StatusCode::SEE_OTHER);

    // An emergency releases inside its 8 hours; a later objection is only recorded.
    let (auth, t6) = (id(), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&t6),
                priority: "EightHours",
                flags: &["EnforcingAuthorityNotified"],
                ..Order::default()
            }),
        )
        .await,
    );
    let o6 = order_of(api, &t6).await;
    let lc = state_of(api, &o6).await;
    assert_eq!(
        lc.due_at.unwrap() - lc.received_at,
        writ::orders::eevidence::EIGHT_HOURS
    );
    assert_eq!(release(api, &o6).await.0, StatusCode::SEE_OTHER);
    all_created(
        &post(
            api,
            "groundsforrefusal",
            &document_xml(&id(), "FullGroundsForRefusal", &[&auth], ""),
        )
        .await,
    );
    assert_eq!(state_of(api, &o6).await.state.as_str(), "delivered");
    for o in [&o1, &o4, &o5, &o6] {
        acknowledged(api, o, "outcome", 1).await;
    }
    check_sent(&w.system);
}

async fn an_unknown_authority_goes_to_human_judgement(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    let approval = |reference: &str| validated_by(reference, "JI-2026-0042");
    let (unknown, t1) = (approval("NOBODY99"), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &id(),
                tasks: std::slice::from_ref(&t1),
                approvals: &unknown,
                ..Order::default()
            }),
        )
        .await,
    );
    let o1 = order_of(api, &t1).await;
    let (s, body) = release(api, &o1).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("NOBODY99"), "{body}");
    // A known validating authority goes through.
    let (known, t2) = (approval("VALID01"), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &id(),
                tasks: std::slice::from_ref(&t2),
                approvals: &known,
                ..Order::default()
            }),
        )
        .await,
    );
    let o2 = order_of(api, &t2).await;
    assert_eq!(release(api, &o2).await.0, StatusCode::SEE_OTHER);
    // The workspace shows the badge; a reviewer may not clear it, an approver may (CSRF
    // checked); then the order is released too.
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let (s, page, _) = alex.get(&format!("/orders/{o1}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("authority check: unknown authority"),
        "{page}"
    );
    let path = format!("/orders/{o1}/eevidence/confirm-authorities");
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;
    assert_eq!(
        rita.post(&path, &[("csrf", &csrf)]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_ne!(
        alex.post(&path, &[("csrf", "forged")]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(release(api, &o1).await.0, StatusCode::CONFLICT);
    let csrf = alex.session_csrf().await;
    assert_eq!(
        alex.post(&path, &[("csrf", &csrf)]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(release(api, &o1).await.0, StatusCode::SEE_OTHER);
}

async fn form3_suspends_the_clock_until_clarified_and_withdrawal_needs_a_person(backend: Backend) {
    use writ::orders::eevidence::Form3Reason;
    let w = start(backend).await;
    let api = &w.api;
    let (auth, task) = (id(), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&task),
                ..Order::default()
            }),
        )
        .await,
    );
    let order = order_of(api, &task).await;
    let before = state_of(api, &order).await;
    let o = order.clone();
    api.app
        .pool
        .run(move |conn| {
            writ::orders::eevidence::send_form3(
                conn,
                &staff(),
                &o,
                Form3Reason::Incomplete,
                "Box C (the time zone of the IP address) is empty.",
                chrono::Utc::now(),
            )
        })
        .await
        .unwrap();
    let lc = state_of(api, &order).await;
    assert_eq!(lc.state.as_str(), "clarifying");
    assert_eq!(release(api, &order).await.0, StatusCode::CONFLICT);
    acknowledged(api, &order, "nonexecution", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    all_created(
        &post(
            api,
            "correspondence",
            &document_xml(&id(), "ProvideAdditionalInformation", &[&auth], "UTC."),
        )
        .await,
    );
    let after = state_of(api, &order).await;
    assert_eq!(after.state.as_str(), "executing");
    let suspended = after.due_at.unwrap() - before.due_at.unwrap();
    assert!(
        suspended >= 300_000,
        "the suspended time is added: {suspended}"
    );
    let o = order.clone();
    let thread = api
        .app
        .pool
        .run(move |conn| writ::orders::eevidence::thread(conn, &o))
        .await
        .unwrap();
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[0].direction, "out");
    assert_eq!(thread[1].body, "UTC.");

    // Data not held: objected, nothing released, the clock not touched.
    let (auth2, task2) = (id(), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth2,
                tasks: std::slice::from_ref(&task2),
                ..Order::default()
            }),
        )
        .await,
    );
    let o2 = order_of(api, &task2).await;
    // From the workspace: the page offers the reasons with their deadline effect; an auditor
    // may not send it.
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let (_, page, _) = alex.get(&format!("/orders/{o2}")).await;
    assert!(page.contains("DataNotHeld"), "{page}");
    assert!(
        page.contains("suspended until the issuing authority clarifies"),
        "{page}"
    );
    let path = format!("/orders/{o2}/eevidence/form3");
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let csrf = olga.session_csrf().await;
    let form = [("reason", "DataNotHeld"), ("text", "No such account.")];
    let with = |csrf: &str| -> Vec<(String, String)> {
        std::iter::once(("csrf".to_owned(), csrf.to_owned()))
            .chain(form.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())))
            .collect()
    };
    let pairs = with(&csrf);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(olga.post(&path, &refs).await.0, StatusCode::FORBIDDEN);
    let csrf = alex.session_csrf().await;
    let pairs = with(&csrf);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(alex.post(&path, &refs).await.0, StatusCode::SEE_OTHER);
    assert_eq!(state_of(api, &o2).await.state.as_str(), "objected");
    acknowledged(api, &o2, "nonexecution", 1).await;
    assert_eq!(release(api, &o2).await.0, StatusCode::CONFLICT);

    // Withdrawal: halted at once, confirmed by a person, then `confirmwithdrawal`.
    let withdraw = update_xml(&format!(
        r#"<HI1Object xsi:type="auth:AuthorisationObject"><ObjectIdentifier>{auth2}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier><auth:AuthorisationDesiredStatus><common:Owner>ETSI</common:Owner><common:Name>AuthorisationDesiredStatus</common:Name><common:Value>Cancelled</common:Value></auth:AuthorisationDesiredStatus></HI1Object>"#
    ));
    all_created(&post(api, "withdraw", &withdraw).await);
    assert_eq!(state_of(api, &o2).await.state.as_str(), "withdrawing");
    assert_eq!(release(api, &o2).await.0, StatusCode::CONFLICT);
    let csrf = alex.session_csrf().await;
    let (s, body, _) = alex
        .post(
            &format!("/orders/{o2}/eevidence/confirm-withdrawal"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(state_of(api, &o2).await.state.as_str(), "withdrawn");
    acknowledged(api, &o2, "confirmwithdrawal", 1).await;
    check_sent(&w.system);
}

async fn an_epoc_pr_is_preserved_extended_followed_and_another_lapses(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    let (auth, lp) = (id(), id());
    all_created(
        &post(
            api,
            "preservation",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&lp),
                pr: true,
                ..Order::default()
            }),
        )
        .await,
    );
    let pr = order_of(api, &lp).await;
    preserved(api, &pr).await;
    assert_eq!(decided(api, &pr).await.0, "eu.epoc_pr");
    let lc = state_of(api, &pr).await;
    assert_eq!(lc.state.as_str(), "preserved");
    assert_eq!(
        lc.preserve_until.unwrap() - lc.received_at,
        writ::orders::eevidence::SIXTY_DAYS
    );
    acknowledged(api, &pr, "datapreserved", 1).await;
    let lp_update = |extra: &str| {
        update_xml(&format!(
            r#"<HI1Object xsi:type="task:LPTaskObject"><ObjectIdentifier>{lp}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier>{extra}</HI1Object>"#
        ))
    };
    let until = (chrono::Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%dT%H:%M:%SZ");
    let extend = lp_update(&format!(
        "<task:DesiredPreservationExpiration>{until}</task:DesiredPreservationExpiration>"
    ));
    all_created(&post(api, "preservationextension", &extend).await);
    let extended = state_of(api, &pr).await;
    assert_eq!(
        extended.preserve_until.unwrap() - lc.preserve_until.unwrap(),
        writ::orders::eevidence::THIRTY_DAYS
    );
    // Once only.
    let again = lp_update(&format!(
        "<task:DesiredPreservationExpiration>{until}</task:DesiredPreservationExpiration>"
    ));
    let r = post(api, "preservationextension", &again).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 409, "{}", r.text);
    // Form 5: kept until the production order comes; it names the EPOC-PR and ends it.
    all_created(&post(api, "subsequentproduction", &lp_update("")).await);
    assert_eq!(
        state_of(api, &pr).await.state.as_str(),
        "held_for_production"
    );
    let (auth2, ld) = (id(), id());
    let assoc = format!("<AssociatedObject>{lp}</AssociatedObject>");
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth2,
                tasks: std::slice::from_ref(&ld),
                task_associated: &assoc,
                ..Order::default()
            }),
        )
        .await,
    );
    let epoc = order_of(api, &ld).await;
    assert_eq!(release(api, &epoc).await.0, StatusCode::SEE_OTHER);
    assert_eq!(state_of(api, &pr).await.state.as_str(), "ended");

    // Another lapses at the end of its period; its holds end.
    let (auth3, lp3) = (id(), id());
    all_created(
        &post(
            api,
            "preservation",
            &order_xml(&Order {
                auth: &auth3,
                tasks: std::slice::from_ref(&lp3),
                pr: true,
                ..Order::default()
            }),
        )
        .await,
    );
    let pr3 = order_of(api, &lp3).await;
    preserved(api, &pr3).await;
    age(api, &pr3, "preserve_until").await;
    // The clock runs in the background every second; running it here as well moves it once.
    api.app
        .pool
        .run(|conn| writ::eevidence::inbound::tick(conn, chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(state_of(api, &pr3).await.state.as_str(), "expired");
    // A further extension of an expired one is refused.
    let r = post(
        api,
        "endpreservation",
        &update_xml(&format!(
            r#"<HI1Object xsi:type="task:LPTaskObject"><ObjectIdentifier>{lp3}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier></HI1Object>"#
        )),
    )
    .await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 409, "{}", r.text);
    acknowledged(api, &epoc, "outcome", 1).await;
    check_sent(&w.system);
}

/// An UPDATE of the LDTask `task` with a new due date (`newdeadline`).
fn new_deadline_xml(task: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    update_xml(&format!(
        r#"<HI1Object xsi:type="task:LDTaskObject"><ObjectIdentifier>{task}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier><task:Deadlines><task:LDDeadline><task:DateTime>{}</task:DateTime></task:LDDeadline></task:Deadlines></HI1Object>"#,
        at.format("%Y-%m-%dT%H:%M:%SZ")
    ))
}

/// The withdrawal (`withdraw`) of the authorisation `auth`.
fn withdraw_xml(auth: &str) -> String {
    update_xml(&format!(
        r#"<HI1Object xsi:type="auth:AuthorisationObject"><ObjectIdentifier>{auth}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier><auth:AuthorisationDesiredStatus><common:Owner>ETSI</common:Owner><common:Name>AuthorisationDesiredStatus</common:Name><common:Value>Cancelled</common:Value></auth:AuthorisationDesiredStatus></HI1Object>"#
    ))
}

/// A new EPOC (one task) with the default priority; its authorisation, task and order ids.
async fn new_epoc(api: &Api) -> (String, String, String) {
    let (auth, task) = (id(), id());
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&task),
                ..Order::default()
            }),
        )
        .await,
    );
    let order = order_of(api, &task).await;
    (auth, task, order)
}

/// Sends a Form 3 for `order` as the legal team would.
async fn form3(api: &Api, order: &str, reason: writ::orders::eevidence::Form3Reason) {
    let o = order.to_owned();
    api.app
        .pool
        .run(move |conn| {
            writ::orders::eevidence::send_form3(
                conn,
                &staff(),
                &o,
                reason,
                "The account is held for a member of parliament.",
                chrono::Utc::now(),
            )
        })
        .await
        .unwrap();
}

/// The order's target holds not yet lifted.
async fn open_holds(api: &Api, order: &str) -> i64 {
    let order = order.to_owned();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::target_holds as t;
            t::table
                .filter(t::order_id.eq(&order))
                .filter(t::released_at.is_null())
                .count()
                .get_result::<i64>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
}

/// One approval of the previewed package `hash` of `order` by the signed-in `b`.
async fn approve_as(b: &mut Browser, order: &str, hash: &str) -> (StatusCode, String) {
    let csrf = b.session_csrf().await;
    let (s, body, _) = b
        .post(
            &format!("/orders/{order}/approve"),
            &[
                ("csrf", &csrf),
                ("snapshot_sha256", hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    (s, body)
}

async fn a_new_deadline_replaces_the_due_date(backend: Backend) {
    use writ::orders::eevidence::Form3Reason;
    let w = start(backend).await;
    let api = &w.api;
    // While executing: the due date is replaced, the state kept.
    let (_, task, order) = new_epoc(api).await;
    let before = state_of(api, &order).await;
    let due = chrono::Utc::now() + chrono::Duration::days(20);
    all_created(&post(api, "newdeadline", &new_deadline_xml(&task, due)).await);
    let after = state_of(api, &order).await;
    assert_eq!(after.state.as_str(), "executing");
    assert_eq!(after.due_at, Some(due.timestamp() * 1_000_000));
    assert_ne!(after.due_at, before.due_at);
    // A due date in the past, and a task this sender never sent, are refused, naming why.
    let r = post(
        api,
        "newdeadline",
        &new_deadline_xml(&task, chrono::Utc::now() - chrono::Duration::hours(1)),
    )
    .await;
    let (code, text) = error_of(&r.outcomes()[0].1);
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("past"), "{text}");
    let r = post(api, "newdeadline", &new_deadline_xml(&id(), due)).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 404, "{}", r.text);
    assert_eq!(state_of(api, &order).await.due_at, after.due_at);

    // After a Form 3 that stops nothing (de facto impossibility): the new deadline answers
    // it, the order is worked on again and may be released.
    let (_, task2, o2) = new_epoc(api).await;
    form3(api, &o2, Form3Reason::DeFactoImpossibility).await;
    assert_eq!(state_of(api, &o2).await.state.as_str(), "objected");
    assert_eq!(release(api, &o2).await.0, StatusCode::CONFLICT);
    let due2 = chrono::Utc::now() + chrono::Duration::days(3);
    all_created(&post(api, "newdeadline", &new_deadline_xml(&task2, due2)).await);
    let lc = state_of(api, &o2).await;
    assert_eq!(lc.state.as_str(), "executing");
    assert_eq!(lc.due_at, Some(due2.timestamp() * 1_000_000));
    assert_eq!(release(api, &o2).await.0, StatusCode::SEE_OTHER);

    // During a clarification (clock suspended): the new deadline replaces the suspended one.
    let (_, task3, o3) = new_epoc(api).await;
    form3(api, &o3, Form3Reason::ManifestErrors).await;
    assert!(state_of(api, &o3).await.suspended_since.is_some());
    all_created(&post(api, "newdeadline", &new_deadline_xml(&task3, due2)).await);
    let lc = state_of(api, &o3).await;
    assert_eq!(lc.state.as_str(), "executing");
    assert_eq!(lc.suspended_since, None);
    assert_eq!(lc.due_at, Some(due2.timestamp() * 1_000_000));
    // A closed order takes no new deadline.
    let o2_calls = acknowledged(api, &o2, "outcome", 1).await;
    let received = update_xml(&format!(
        r#"<HI1Object xsi:type="delivery:DeliveryObject" xmlns:delivery="http://uri.etsi.org/03120/common/2019/10/Delivery"><ObjectIdentifier>{}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR02</OwnerIdentifier><delivery:DeliveryStatus><common:Owner>ETSI</common:Owner><common:Name>DeliveryStatus</common:Name><common:Value>Received</common:Value></delivery:DeliveryStatus></HI1Object>"#,
        o2_calls[0]
    ));
    all_created(&post(api, "deliverystatus", &received).await);
    let r = post(api, "newdeadline", &new_deadline_xml(&task2, due)).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 409, "{}", r.text);
    assert_eq!(state_of(api, &o2).await.state.as_str(), "closed");
    acknowledged(api, &o3, "nonexecution", 1).await;
    check_sent(&w.system);
}

async fn immunities_are_maintained_and_a_conflict_of_laws_goes_to_court(backend: Backend) {
    use writ::orders::eevidence::Form3Reason;
    let w = start(backend).await;
    let api = &w.api;
    // Immunities (Art 10(5)): nothing is released until the issuing authority maintains the
    // order; the clock was never suspended.
    let (auth, _, order) = new_epoc(api).await;
    let due = state_of(api, &order).await.due_at;
    form3(api, &order, Form3Reason::ImmunitiesOrPrivileges).await;
    let lc = state_of(api, &order).await;
    assert_eq!(lc.state.as_str(), "objected");
    assert_eq!((lc.due_at, lc.suspended_since), (due, None));
    let (s, body) = release(api, &order).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("objected"), "{body}");
    acknowledged(api, &order, "nonexecution", 1).await;
    all_created(
        &post(
            api,
            "correspondence",
            &document_xml(&id(), "Maintain", &[&auth], "Art 10(5) does not apply."),
        )
        .await,
    );
    assert_eq!(state_of(api, &order).await.state.as_str(), "executing");
    assert_eq!(release(api, &order).await.0, StatusCode::SEE_OTHER);

    // Conflict of laws (Art 17): the issuing authority goes to court; nothing is released,
    // a later Maintain does not move it, a withdrawal still ends it.
    let (auth2, _, o2) = new_epoc(api).await;
    form3(api, &o2, Form3Reason::ConflictOfLaw).await;
    assert_eq!(state_of(api, &o2).await.state.as_str(), "objected");
    all_created(
        &post(
            api,
            "correspondence",
            &document_xml(
                &id(),
                "ProceedingToCourt",
                &[&auth2],
                "Referred to the court.",
            ),
        )
        .await,
    );
    assert_eq!(state_of(api, &o2).await.state.as_str(), "contested");
    assert_eq!(release(api, &o2).await.0, StatusCode::CONFLICT);
    all_created(
        &post(
            api,
            "correspondence",
            &document_xml(&id(), "Maintain", &[&auth2], "Upheld."),
        )
        .await,
    );
    assert_eq!(state_of(api, &o2).await.state.as_str(), "contested");
    assert_eq!(release(api, &o2).await.0, StatusCode::CONFLICT);
    let o = o2.clone();
    let thread = api
        .app
        .pool
        .run(move |conn| writ::orders::eevidence::thread(conn, &o))
        .await
        .unwrap();
    let kinds: Vec<&str> = thread.iter().map(|l| l.document_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["Form3:ConflictOfLaw", "ProceedingToCourt", "Maintain"]
    );
    all_created(&post(api, "withdraw", &withdraw_xml(&auth2)).await);
    assert_eq!(state_of(api, &o2).await.state.as_str(), "withdrawing");
    acknowledged(api, &o2, "nonexecution", 1).await;
    acknowledged(api, &order, "outcome", 1).await;
    let sent = check_sent(&w.system);
    let form3s: Vec<_> = sent
        .iter()
        .filter(|(p, _)| p == "/eevidence/nonexecution")
        .collect();
    assert_eq!(form3s.len(), 2);
    assert!(
        form3s
            .iter()
            .any(|(_, x)| x.contains("ImmunitiesOrPrivileges"))
    );
    assert!(form3s.iter().any(|(_, x)| x.contains("ConflictOfLaw")));
    // Each carries the rendered form, its structured information and a detached signature of
    // each by the package key, which verifies offline with the published key; a flipped byte
    // does not.
    let pem = api
        .app
        .get("/packages/public-key")
        .await
        .text()
        .await
        .unwrap();
    let key = writ::disclosure::keys::parse_public_pem(&pem).unwrap();
    for (_, xml) in &form3s {
        let docs = documents_of(xml);
        let body = |name: &str| {
            docs.iter()
                .find(|d| d.name.as_deref() == Some(name))
                .and_then(|d| d.body.clone())
                .unwrap_or_else(|| panic!("no {name} in {xml}"))
        };
        let pdf = body("Form3.pdf");
        assert_eq!(pdf.content_type.as_deref(), Some("application/pdf"));
        assert!(pdf.contents.starts_with(b"%PDF-"));
        let form = docs
            .iter()
            .find(|d| d.name.as_deref() == Some("Form3.pdf"))
            .unwrap();
        assert_eq!(form.document_type.as_ref().unwrap().value, "Form3");
        let info = body("Form3Information.json");
        let parsed: serde_json::Value = serde_json::from_slice(&info.contents).unwrap();
        let reason = parsed["reason"].as_str().unwrap();
        assert!(
            ["ImmunitiesOrPrivileges", "ConflictOfLaw"].contains(&reason),
            "{parsed}"
        );
        assert_eq!(parsed["data_preserved"], true, "{parsed}");
        for (file, sig) in [
            ("Form3.pdf", "Form3.pdf.sig"),
            ("Form3Information.json", "Form3Information.json.sig"),
        ] {
            let (data, signature) = (body(file).contents, body(sig).contents);
            assert!(
                writ::eevidence::form3::verify(&data, &signature, &key),
                "{file} verifies"
            );
            let mut flipped = data.clone();
            flipped[data.len() / 2] ^= 0x01;
            assert!(!writ::eevidence::form3::verify(&flipped, &signature, &key));
        }
        // The same with a plain Ed25519 verifier: nothing of Writ's is needed.
        let raw = ed25519_dalek::Signature::from_slice(&body("Form3.pdf.sig").contents).unwrap();
        use ed25519_dalek::Verifier;
        assert!(key.verify(&pdf.contents, &raw).is_ok());
    }
}

/// The DocumentObjects a message Writ sent creates.
fn documents_of(xml: &str) -> Vec<writ::etsi::model::Document> {
    let m = parse(xml.as_bytes(), &Limits::default()).unwrap();
    let Payload::Requests(actions) = m.payload else {
        panic!("not a request: {xml}")
    };
    actions
        .into_iter()
        .filter_map(|a| match a.action {
            writ::etsi::model::Action::Create(writ::etsi::model::Object::Document(d)) => Some(d),
            _ => None,
        })
        .collect()
}

async fn endpreservation_lifts_the_hold(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    let lp_update = |lp: &str| {
        update_xml(&format!(
            r#"<HI1Object xsi:type="task:LPTaskObject"><ObjectIdentifier>{lp}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>ACTOR05</OwnerIdentifier></HI1Object>"#
        ))
    };
    let preserve = |auth: String, lp: String| async move {
        all_created(
            &post(
                api,
                "preservation",
                &order_xml(&Order {
                    auth: &auth,
                    tasks: std::slice::from_ref(&lp),
                    pr: true,
                    ..Order::default()
                }),
            )
            .await,
        );
        let order = order_of(api, &lp).await;
        preserved(api, &order).await;
        order
    };
    // Preserved: ended at once, its holds lifted.
    let lp = id();
    let pr = preserve(id(), lp.clone()).await;
    assert_eq!(state_of(api, &pr).await.state.as_str(), "preserved");
    assert!(
        open_holds(api, &pr).await > 0,
        "the EPOC-PR holds its target"
    );
    let end = lp_update(&lp);
    let r = post(api, "endpreservation", &end).await;
    all_created(&r);
    assert_eq!(state_of(api, &pr).await.state.as_str(), "ended");
    assert_eq!(open_holds(api, &pr).await, 0);
    // The same message again is answered as before (a replay), not as a second end.
    let again = post(api, "endpreservation", &end).await;
    assert!(again.replayed);
    assert_eq!(again.text, r.text);
    // A new message to end it again is a conflict.
    let r = post(api, "endpreservation", &lp_update(&lp)).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 409, "{}", r.text);
    // Held for production after Form 5: ended too.
    let lp2 = id();
    let pr2 = preserve(id(), lp2.clone()).await;
    all_created(&post(api, "subsequentproduction", &lp_update(&lp2)).await);
    assert_eq!(
        state_of(api, &pr2).await.state.as_str(),
        "held_for_production"
    );
    all_created(&post(api, "endpreservation", &lp_update(&lp2)).await);
    assert_eq!(state_of(api, &pr2).await.state.as_str(), "ended");
    assert_eq!(open_holds(api, &pr2).await, 0);
    // An EPOC's task is no preservation task.
    let (_, ld, _) = new_epoc(api).await;
    let r = post(api, "endpreservation", &lp_update(&ld)).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 404, "{}", r.text);
    acknowledged(api, &pr, "datapreserved", 1).await;
    acknowledged(api, &pr2, "datapreserved", 1).await;
    check_sent(&w.system);
}

async fn withdrawal_after_preparation_halts_the_release(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    // Before preparation: halted at once.
    let (auth, _, order) = new_epoc(api).await;
    all_created(&post(api, "withdraw", &withdraw_xml(&auth)).await);
    assert_eq!(state_of(api, &order).await.state.as_str(), "withdrawing");
    assert_eq!(release(api, &order).await.0, StatusCode::CONFLICT);

    // After preparation and the first approval: the second approval is refused.
    let (auth2, _, o2) = new_epoc(api).await;
    let mut alex = Browser::new(&api.app);
    let mut bea = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    bea.sign_in("bea", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (s, preview, _) = alex
        .post_follow(&format!("/orders/{o2}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    let hash = hash_in(&preview);
    let (s, body) = approve_as(&mut alex, &o2, &hash).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let r = post(api, "withdraw", &withdraw_xml(&auth2)).await;
    all_created(&r);
    assert_eq!(state_of(api, &o2).await.state.as_str(), "withdrawing");
    let (s, body) = approve_as(&mut bea, &o2, &hash).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("withdrawing"), "{body}");
    // A second withdrawal is a conflict naming the state.
    let again = post(api, "withdraw", &withdraw_xml(&auth2)).await;
    assert_eq!(error_of(&again.outcomes()[0].1).0, 409, "{}", again.text);
    // Nothing goes out until a person confirms; then the order is withdrawn, its holds end,
    // and `confirmwithdrawal` goes out once.
    assert!(
        w.system
            .lock()
            .unwrap()
            .received
            .iter()
            .all(|(p, _)| p != "/eevidence/confirmwithdrawal")
    );
    let csrf = alex.session_csrf().await;
    let (s, body, _) = alex
        .post(
            &format!("/orders/{o2}/eevidence/confirm-withdrawal"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(state_of(api, &o2).await.state.as_str(), "withdrawn");
    assert_eq!(open_holds(api, &o2).await, 0);
    let (s, _) = approve_as(&mut bea, &o2, &hash).await;
    assert_eq!(s, StatusCode::CONFLICT);
    acknowledged(api, &o2, "confirmwithdrawal", 1).await;
    let calls = {
        let o = o2.clone();
        api.app
            .pool
            .run(move |conn| writ::eevidence::outbox::calls_of(conn, &o))
            .await
            .unwrap()
    };
    assert!(calls.iter().all(|c| c.endpoint != "outcome"), "{calls:?}");
    check_sent(&w.system);
}

/// Inbound trust: a client certificate pinned to the sending authority, or the request token,
/// each suffices; neither is 401; a certificate pinned to another authority is refused, with or
/// without the sender's token. Real handshakes against Writ's own TLS listener.
async fn the_system_authenticates_by_pinned_certificate_or_token(backend: Backend) {
    use crate::tls::{MtlsSetup, https, problem_type};
    use writ::authority::pins::{self, PinKind};
    let db = crate::helpers::TestDb::new(backend);
    let dir = db.dir().to_owned();
    let pki = MtlsSetup::new(&dir);
    let doj_cert = pki.client_ca.issue(&dir, "doj-system", &[], true);
    let validator_cert = pki.client_ca.issue(&dir, "validator-system", &[], true);
    let settings = db.settings(&[
        ("WRIT_SERVER__TLS__CERTIFICATE_FILE", &pki.server.cert_file),
        ("WRIT_SERVER__TLS__PRIVATE_KEY_FILE", &pki.server.key_file),
        ("WRIT_SERVER__TLS__CLIENT_CA_FILE", &pki.client_ca_file),
        ("WRIT_ETSI__UNIQUE_IDENTIFIER", "ACTOR02"),
    ]);
    let app = crate::helpers::spawn_with_settings(db, settings).await;
    let pinned = [
        (DOJ.iss, doj_cert.cert_file.clone()),
        ("xx-validator", validator_cert.cert_file.clone()),
    ];
    app.pool
        .run(move |conn| {
            register(conn)?;
            let actor = Actor::new(ActorKind::System, "test");
            for (authority, file) in &pinned {
                let pin = writ::pki::fingerprints_of_pem_file("test", file)
                    .unwrap()
                    .certificate;
                pins::add(conn, &actor, authority, PinKind::Certificate, &pin).unwrap();
            }
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
    let base = https(&app.address);
    let anonymous = pki.client(None);
    let info: serde_json::Value = anonymous
        .get(format!("{base}/api/v1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let audience = info["audience"].as_str().unwrap().to_owned();
    let path = "/eevidence/production";
    let send = |client: reqwest::Client, token: bool| {
        let xml = order_xml(&Order {
            auth: &id(),
            tasks: &[id()],
            ..Order::default()
        });
        let audience = audience.clone();
        let url = format!("{base}{path}");
        async move {
            let mut req = client
                .post(url)
                .header("content-type", "application/xml")
                .body(xml.clone());
            if token {
                let token = writ::authority::client::sign_request(
                    KeyAlgorithm::EdDSA,
                    &crate::orders::private_pem(DOJ.seed),
                    DOJ.kid,
                    &writ::authority::client::TokenRequest {
                        issuer: DOJ.iss,
                        audience: &audience,
                        method: "POST",
                        path,
                        body: xml.as_bytes(),
                        now: chrono::Utc::now().timestamp(),
                        lifetime_secs: 120,
                    },
                )
                .unwrap();
                req = req.bearer_auth(token);
            }
            req.send().await.unwrap()
        }
    };
    // The token alone (no certificate): taken.
    let r = crate::etsi::reply_of(send(anonymous.clone(), true).await).await;
    all_created(&r);
    // The pinned certificate alone (no token): taken.
    let r = crate::etsi::reply_of(send(pki.client(Some(&doj_cert)), false).await).await;
    all_created(&r);
    // Both, naming the same authority: taken.
    let r = crate::etsi::reply_of(send(pki.client(Some(&doj_cert)), true).await).await;
    all_created(&r);
    // Neither: 401.
    let (status, kind) = problem_type(send(anonymous.clone(), false).await).await;
    assert_eq!(status, 401, "{kind}");
    // A certificate pinned to another authority: the message's sender (the DOJ office) is not
    // the authority the connection stands for; and with the DOJ's token, the two disagree.
    let res = send(pki.client(Some(&validator_cert)), false).await;
    assert_eq!(res.status(), 403, "{}", res.text().await.unwrap());
    let (status, kind) = problem_type(send(pki.client(Some(&validator_cert)), true).await).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "urn:writ:problem:client-certificate-mismatch")
    );
    let orders = app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::eevidence_orders as e;
            e::table
                .filter(e::authority_id.eq(DOJ.iss))
                .count()
                .get_result::<i64>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    assert_eq!(orders, 3, "one order per message taken");
}

/// Outbound trust: Writ's calls to the national system go through the mutual-TLS client of
/// `[etsi.outbound_tls]`: a stand-in that requires a client certificate from Writ's CA
/// acknowledges them.
async fn calls_out_present_writs_client_certificate(backend: Backend) {
    use crate::tls::{Ca, mtls_server_config};
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let system_ca = Ca::new("Decentralised system CA");
    let writ_ca = Ca::new("Provider client CA");
    let server = system_ca.issue(dir, "national-system", &["localhost"], false);
    let writ_client = writ_ca.issue(dir, "writ-provider", &[], true);
    let system = Arc::new(Mutex::new(System::default()));
    let url = start_system_on(
        system.clone(),
        Some(mtls_server_config(&server, &writ_ca.pem)),
    )
    .await;
    let ca_file = system_ca.write(dir, "system-ca.pem");
    let w = start_with(
        backend,
        system,
        &[
            ("WRIT_ETSI__EEVIDENCE_URL", &url),
            ("WRIT_ETSI__OUTBOUND_TLS__CA_FILE", &ca_file),
            (
                "WRIT_ETSI__OUTBOUND_TLS__CERTIFICATE_FILE",
                &writ_client.cert_file,
            ),
            (
                "WRIT_ETSI__OUTBOUND_TLS__PRIVATE_KEY_FILE",
                &writ_client.key_file,
            ),
        ],
    )
    .await;
    let api = &w.api;
    let (auth, lp) = (id(), id());
    all_created(
        &post(
            api,
            "preservation",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&lp),
                pr: true,
                ..Order::default()
            }),
        )
        .await,
    );
    let pr = order_of(api, &lp).await;
    acknowledged(api, &pr, "datapreserved", 1).await;
    let sent = check_sent(&w.system);
    assert_eq!(sent.len(), 1, "acknowledged at the first attempt");
}

/// The audit events of the log, in order.
async fn events(api: &Api) -> Vec<String> {
    api.app
        .pool
        .run(|conn| {
            let all = writ::audit::log::entries(conn, 0, 1_000_000).unwrap();
            Ok::<_, writ::db::DbError>(
                all.into_iter()
                    .map(|e| {
                        let leaf: serde_json::Value = serde_json::from_str(&e.leaf).unwrap();
                        leaf["event"].as_str().unwrap_or_default().to_owned()
                    })
                    .collect(),
            )
        })
        .await
        .unwrap()
}

/// Profile cl. 6.3.3: a package above the inline limit (set tiny here) goes out in the
/// `outcome` as a URL to `GET /eevidence/packages/{id}` on Writ; the stand-in fetches it as the
/// issuing authority, and the bytes hash to the DeliveryObject's checksum and are the signed
/// package. Another authority, or nobody, is refused; every fetch is audited.
async fn an_outcome_above_the_inline_limit_goes_by_reference(backend: Backend) {
    let system = Arc::new(Mutex::new(System::default()));
    let url = start_system(system.clone()).await;
    // Writ's own base URL must be known before it starts: a port picked now.
    let port = crate::cli::free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let w = start_with(
        backend,
        system,
        &[
            ("WRIT_ETSI__EEVIDENCE_URL", &url),
            ("WRIT_SERVER__PORT", &port),
            ("WRIT_ETSI__EEVIDENCE_INLINE_LIMIT_BYTES", "1024"),
            ("WRIT_ETSI__EEVIDENCE_PACKAGE_URL", &base),
        ],
    )
    .await;
    let api = &w.api;
    assert_eq!(api.app.address, base);
    w.system.lock().unwrap().fetch_audience = Some(api.audience.clone());
    let (_, _, order) = new_epoc(api).await;
    // Not delivered yet: nothing to fetch, whatever the id.
    let r = fetch_as(
        DOJ,
        &api.audience,
        &format!("{base}/eevidence/packages/{}", id()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // An id that is no package id (control characters, far too long): 404 like any other,
    // refused and audited without the id itself (schemathesis found a 500 here).
    for bad in ["%09%0A%C2%BE", &"x".repeat(600)] {
        let r = fetch_as(
            DOJ,
            &api.audience,
            &format!("{base}/eevidence/packages/{bad}"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    let (s, body) = release(api, &order).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    acknowledged(api, &order, "outcome", 1).await;
    let sent = check_sent(&w.system);
    let outcomes: Vec<_> = sent
        .iter()
        .filter(|(p, _)| p == "/eevidence/outcome")
        .collect();
    assert_eq!(outcomes.len(), 1);
    let m = parse(outcomes[0].1.as_bytes(), &Limits::default()).unwrap();
    let Payload::Requests(actions) = m.payload else {
        panic!("not a request")
    };
    let writ::etsi::model::Action::Deliver {
        object: writ::etsi::model::Object::Delivery(delivery),
        ..
    } = &actions[0].action
    else {
        panic!("not a DELIVER: {}", outcomes[0].1)
    };
    assert!(delivery.binary.is_none(), "no inline data above the limit");
    let reference = delivery.url.clone().expect("a URL");
    assert!(
        reference
            .url
            .starts_with(&format!("{base}/eevidence/packages/")),
        "{reference:?}"
    );
    assert!(reference.content_length.unwrap() > 1024);
    assert_eq!(reference.checksum_type.as_deref(), Some("SHA-256"));
    // The URL expires 30 days (the default) after the outcome was queued.
    let expiry = reference
        .expiry
        .expect("an Expiry")
        .with_timezone(&chrono::Utc);
    let left = expiry - chrono::Utc::now();
    assert!(
        left > chrono::TimeDelta::days(29) && left <= chrono::TimeDelta::days(30),
        "{expiry}"
    );
    // The stand-in fetched it before answering: the bytes are the package, as the checksum
    // and the released package's own hash say, and its signature verifies.
    let fetched = w.system.lock().unwrap().fetched.clone();
    assert_eq!(fetched.len(), 1);
    let (fetched_url, status, tar, matches) = &fetched[0];
    assert_eq!(
        (fetched_url, *status, *matches),
        (&reference.url, 200, true)
    );
    assert_eq!(Some(tar.len() as u64), reference.content_length);
    let o = order.clone();
    let released: String = api
        .app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::packages as p;
            p::table
                .filter(p::order_id.eq(&o))
                .filter(p::status.eq("released"))
                .select(p::package_sha256.assume_not_null())
                .first::<String>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    assert_eq!(writ::digest::sha256_hex(tar), released);
    let pem = api
        .app
        .get("/packages/public-key")
        .await
        .text()
        .await
        .unwrap();
    let key = writ::disclosure::keys::parse_public_pem(&pem).unwrap();
    writ::disclosure::package::verify(tar, &key).expect("the signed package verifies");
    // Another registered authority, with a valid token of its own: not told the package
    // exists. Nobody: 401.
    let r = fetch_as(crate::orders::PARIS, &api.audience, &reference.url).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reqwest::get(&reference.url).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The issuing authority may fetch it again; each fetch is audited, served or refused.
    let again = fetch_as(DOJ, &api.audience, &reference.url).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again.headers()["x-package-sha256"].to_str().unwrap(),
        released
    );
    assert_eq!(&again.bytes().await.unwrap()[..], &tar[..]);
    let events = events(api).await;
    let count = |name: &str| events.iter().filter(|e| *e == name).count();
    assert_eq!(count("eevidence.package_fetched"), 2);
    assert_eq!(count("eevidence.package_refused"), 4);
    // 31 days later the URL has expired: the issuing authority gets 410, audited.
    let o = order.clone();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::eevidence_outbox as x;
            let month_ago = (chrono::Utc::now() - chrono::TimeDelta::days(31)).timestamp_micros();
            diesel::update(x::table.filter(x::order_id.eq(&o)))
                .set(x::created_at.eq(month_ago))
                .execute(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    let expired = fetch_as(DOJ, &api.audience, &reference.url).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    let problem: serde_json::Value = expired.json().await.unwrap();
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("package-url-expired"),
        "{problem}"
    );
    let o = order.clone();
    let reasons = api
        .app
        .pool
        .run(move |conn| {
            let all = writ::audit::log::entries(conn, 0, 1_000_000).unwrap();
            Ok::<_, writ::db::DbError>(
                all.into_iter()
                    .map(|e| serde_json::from_str::<serde_json::Value>(&e.leaf).unwrap())
                    .filter(|e| {
                        e["event"] == "eevidence.package_refused" && e["order"] == o.as_str()
                    })
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    assert!(
        reasons.last().is_some_and(|r| r.contains("expired")),
        "{reasons:?}"
    );
}

/// An EPOC-PR's hold is recorded by identifier at receipt and placed on the accounts by the
/// hold resolver later: `datapreserved` goes out only once every hold is placed, exactly once.
async fn datapreserved_waits_until_the_holds_are_placed(backend: Backend) {
    let system = Arc::new(Mutex::new(System::default()));
    let url = start_system(system.clone()).await;
    // The background jobs (the hold resolver among them) and the sender run once at start-up,
    // long before the order comes, then not for an hour: the test runs both itself.
    let w = start_with(
        backend,
        system,
        &[
            ("WRIT_ETSI__EEVIDENCE_URL", &url),
            ("WRIT_API__JOBS_INTERVAL_SECS", "3600"),
        ],
    )
    .await;
    let api = &w.api;
    let (auth, lp) = (id(), id());
    all_created(
        &post(
            api,
            "preservation",
            &order_xml(&Order {
                auth: &auth,
                tasks: std::slice::from_ref(&lp),
                pr: true,
                ..Order::default()
            }),
        )
        .await,
    );
    let pr = order_of(api, &lp).await;
    let calls = |api: &Api| {
        let o = pr.clone();
        let pool = api.app.pool.clone();
        async move {
            pool.run(move |conn| writ::eevidence::outbox::calls_of(conn, &o))
                .await
                .unwrap()
        }
    };
    // The hold is not placed yet: still preserving, and no confirmation queued or sent.
    assert_eq!(state_of(api, &pr).await.state.as_str(), "preserving");
    assert!(calls(api).await.is_empty());
    let settings = api.app.db.settings(&[
        ("WRIT_ETSI__EEVIDENCE_URL", &url),
        ("WRIT_ETSI__UNIQUE_IDENTIFIER", "ACTOR02"),
        ("WRIT_ETSI__DELIVERY_BACKOFF_SECS", "0"),
    ]);
    let sender = writ::eevidence::outbox::Sender {
        settings: settings.etsi.clone(),
        key: writ::disclosure::keys::signing_key(&settings.package).unwrap(),
        client: reqwest::Client::new(),
        interval: std::time::Duration::from_secs(1),
    };
    let send = || writ::eevidence::outbox::send_due(&api.app.pool, &sender, &sender.client);
    assert_eq!(send().await.unwrap(), 0);
    assert!(w.system.lock().unwrap().received.is_empty());
    // The resolver places it: preserved, and one `datapreserved` queued in that transaction.
    let resolve = || {
        api.app
            .pool
            .run(|conn| writ::orders::holds::resolve_all(conn, chrono::Utc::now()))
    };
    assert!(resolve().await.unwrap() > 0);
    assert_eq!(state_of(api, &pr).await.state.as_str(), "preserved");
    let queued = calls(api).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].endpoint, "datapreserved");
    assert_eq!(send().await.unwrap(), 1);
    // Nothing more on a further run.
    assert_eq!(resolve().await.unwrap(), 0);
    assert_eq!(send().await.unwrap(), 0);
    acknowledged(api, &pr, "datapreserved", 1).await;
    let sent = check_sent(&w.system);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "/eevidence/datapreserved");
    // It says what is kept (the subscriber data the task asks for).
    assert!(
        sent[0].1.contains("Preserved: subscriber."),
        "{}",
        sent[0].1
    );
}

/// Annex III in the order's language: the approvers' contact details give it (TS 103 120's
/// `Languages`); German and French have templates, Italian falls back to English.
async fn form3_is_in_the_orders_language(backend: Backend) {
    use writ::orders::eevidence::Form3Reason;
    let w = start(backend).await;
    let api = &w.api;
    let approval = |language: &str| {
        format!(
            "<auth:AuthorisationApprovalDetails><common:ApproverDetails><common:ApproverName>Juge M.</common:ApproverName><common:ApproverContactDetails><common:Name>Cabinet</common:Name><common:Languages><common:ISO639Set1LanguageIdentifier>{language}</common:ISO639Set1LanguageIdentifier></common:Languages></common:ApproverContactDetails></common:ApproverDetails></auth:AuthorisationApprovalDetails>"
        )
    };
    let mut tasks = Vec::new();
    for language in ["de", "fr", "it"] {
        let (auth, task) = (id(), id());
        let approvals = approval(language);
        all_created(
            &post(
                api,
                "production",
                &order_xml(&Order {
                    auth: &auth,
                    tasks: std::slice::from_ref(&task),
                    approvals: &approvals,
                    ..Order::default()
                }),
            )
            .await,
        );
        let order = order_of(api, &task).await;
        form3(api, &order, Form3Reason::Incomplete).await;
        acknowledged(api, &order, "nonexecution", 1).await;
        tasks.push((language, task));
    }
    let sent = check_sent(&w.system);
    // Latin-1 text as the hex string pdf-writer writes for a line that is not ASCII.
    let hex = |text: &str| -> String {
        text.chars()
            .map(|c| format!("{:02X}", u32::from(c)))
            .collect()
    };
    for (language, task) in tasks {
        let xml = sent
            .iter()
            .filter(|(p, _)| p == "/eevidence/nonexecution")
            .map(|(_, x)| x)
            .find(|x| x.contains(&task))
            .unwrap_or_else(|| panic!("no Form 3 for {language}"));
        let docs = documents_of(xml);
        let body = |name: &str| {
            docs.iter()
                .find(|d| d.name.as_deref() == Some(name))
                .and_then(|d| d.body.clone())
                .unwrap()
                .contents
        };
        let info: serde_json::Value =
            serde_json::from_slice(&body("Form3Information.json")).unwrap();
        let pdf = String::from_utf8_lossy(&body("Form3.pdf")).into_owned();
        match language {
            "de" => {
                assert_eq!(info["language"], "de", "{info}");
                assert_eq!(
                    info["reason_text"],
                    "Die Anordnung ist unvollständig (Art. 10 Abs. 6)."
                );
                assert!(pdf.contains("(A. Die Anordnung)"), "{pdf}");
                assert!(
                    pdf.contains(&hex("Die Anordnung ist unvollständig")),
                    "{pdf}"
                );
            }
            "fr" => {
                assert_eq!(info["language"], "fr", "{info}");
                assert!(
                    pdf.contains(&hex("la décision de l'autorité d'émission")),
                    "{pdf}"
                );
                assert!(pdf.contains(&hex("L'injonction est incomplète")), "{pdf}");
            }
            _ => {
                assert_eq!(info["language"], "en", "{info}");
                assert!(
                    pdf.contains("(The order is incomplete (Art 10(6)).)"),
                    "{pdf}"
                );
                assert!(pdf.contains("(A. The order)"), "{pdf}");
            }
        }
    }
}

/// The review flags (codes) of the order's current decision.
async fn review_flags(api: &Api, order: &str) -> Vec<String> {
    let order = order.to_owned();
    let json = api
        .app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::order_versions;
            order_versions::table
                .filter(order_versions::order_id.eq(&order))
                .order(order_versions::version.desc())
                .select(order_versions::decision_json)
                .first::<String>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    let decision: serde_json::Value = serde_json::from_str(&json).unwrap();
    decision["review_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The `ValidatingAuthority` approval of an EPOC naming the authority `reference` (its
/// identifier in the national system), with the validator's file number.
fn validated_by(reference: &str, file_number: &str) -> String {
    format!(
        "<auth:AuthorisationApprovalDetails><common:ApprovalDescription>{file_number}</common:ApprovalDescription><common:ApprovalReference>{reference}</common:ApprovalReference><common:ApproverDetails><common:ApproverName>Juge M.</common:ApproverName><common:ApproverRole>ValidatingAuthority</common:ApproverRole></common:ApproverDetails></auth:AuthorisationApprovalDetails>"
    )
}

/// Sends a one-task EPOC with these approvals; the order it became.
async fn post_epoc(api: &Api, approvals: &str) -> String {
    let task = id();
    all_created(
        &post(
            api,
            "production",
            &order_xml(&Order {
                auth: &id(),
                tasks: std::slice::from_ref(&task),
                approvals,
                ..Order::default()
            }),
        )
        .await,
    );
    order_of(api, &task).await
}

/// A staff member's question to the authority (the order is decided again).
async fn ask(b: &mut Browser, order: &str, text: &str) {
    let csrf = b.session_csrf().await;
    let (s, body, _) = b
        .post(
            &format!("/orders/{order}/ask"),
            &[("csrf", &csrf), ("text", text)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
}

/// An EPOC whose validating authority the registry knows (by its identifier in the national
/// system) is judged on the validator's registered kind: the legal team is not told that the
/// registry does not know the validator, neither when the order comes in nor when it is decided
/// again (a question to the authority). The validation stays a claim: a validator the registry
/// later suspends is unknown again at the next decision.
async fn a_registered_validator_is_judged_on_its_registered_kind(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    let order = post_epoc(api, &validated_by("VALID01", "JI-2026-0042")).await;
    let not_registered = |flags: &[String]| flags.iter().any(|f| f == "validator_not_registered");
    let flags = review_flags(api, &order).await;
    assert!(!not_registered(&flags), "{flags:?}");

    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    ask(&mut alex, &order, "Please confirm the account's time zone.").await;
    let flags = review_flags(api, &order).await;
    assert!(!not_registered(&flags), "decided again: {flags:?}");

    api.app
        .pool
        .run(|conn| {
            writ::authority::set_active(
                conn,
                &Actor::new(ActorKind::System, "test"),
                "xx-validator",
                false,
            )
            .unwrap();
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
    ask(&mut alex, &order, "Please confirm the validation.").await;
    let flags = review_flags(api, &order).await;
    assert!(not_registered(&flags), "suspended: {flags:?}");
}

/// How many `eevidence.authorities_refreshed` entries the log holds.
async fn refreshes(api: &Api) -> usize {
    events(api)
        .await
        .iter()
        .filter(|e| *e == "eevidence.authorities_refreshed")
        .count()
}

/// Whether the registry knows the authority the national system names `identifier`.
async fn known(api: &Api, identifier: &'static str) -> bool {
    api.app
        .pool
        .run(move |conn| {
            writ::eevidence::epoc::registered(conn, identifier).map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
        .is_some()
}

/// `writ eevidence refresh-authorities` on the test's database, asking the stand-in at `url`.
fn refresh_command(api: &Api, url: &str) -> std::process::Command {
    let mut cmd = crate::cli::writ_for(
        &api.app.db,
        &[
            ("WRIT_ETSI__EEVIDENCE_URL", url),
            ("WRIT_ETSI__UNIQUE_IDENTIFIER", "ACTOR02"),
        ],
    );
    cmd.args(["eevidence", "refresh-authorities"]);
    cmd
}

/// `writ serve` refreshes the registry from the system's list every
/// `eevidence_authorities_refresh_secs`: not from an answer it cannot read (it tries again),
/// then from the list, and again once the interval has passed. `writ eevidence
/// refresh-authorities` does the same from the command line, says what it did, and exits 1,
/// naming the fault, on an answer it cannot read.
async fn the_registry_follows_the_list_periodically_and_from_the_command(backend: Backend) {
    let system = Arc::new(Mutex::new(System {
        authorities: vec![(
            id(),
            "NEWVAL01".to_owned(),
            "Juge d'instruction de Lyon".to_owned(),
            "InvestigatingJudge".to_owned(),
        )],
        malformed: true,
        ..System::default()
    }));
    let url = start_system(system.clone()).await;
    let w = start_with(
        backend,
        system.clone(),
        &[
            ("WRIT_ETSI__EEVIDENCE_URL", &url),
            ("WRIT_ETSI__EEVIDENCE_AUTHORITIES_REFRESH_SECS", "2"),
        ],
    )
    .await;
    let api = &w.api;
    let lists = |s: &Arc<Mutex<System>>| {
        s.lock()
            .unwrap()
            .received
            .iter()
            .filter(|(endpoint, _)| endpoint.ends_with("authorities"))
            .count()
    };
    // The unreadable answer changes nothing, and the refresh is tried again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lists(&system) < 4 {
        assert!(std::time::Instant::now() < deadline, "no retry");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(refreshes(api).await, 0);
    assert!(!known(api, "NEWVAL01").await);
    // Once the list can be read, the registry follows it, and again an interval later.
    system.lock().unwrap().malformed = false;
    while refreshes(api).await < 2 {
        assert!(std::time::Instant::now() < deadline, "not refreshed twice");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(known(api, "NEWVAL01").await);

    // The command.
    system.lock().unwrap().authorities.push((
        id(),
        "NEWVAL02".to_owned(),
        "Tribunal judiciaire de Lyon".to_owned(),
        "Court".to_owned(),
    ));
    let mut cmd = refresh_command(api, &url);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lists 2 authorities"), "{stdout}");
    assert!(known(api, "NEWVAL02").await);

    system.lock().unwrap().malformed = true;
    let before = refreshes(api).await;
    let mut cmd = refresh_command(api, &url);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot be used"), "{stderr}");
    assert_eq!(refreshes(api).await, before);
}

/// `authorities`: the system's list adds an authority the registry did not know, so that an
/// order naming it as validating authority no longer waits for a person; the refresh is
/// audited; a malformed answer changes nothing; an authority the list drops is suspended and
/// unknown again.
async fn the_systems_authority_list_refreshes_the_registry(backend: Backend) {
    let w = start(backend).await;
    let api = &w.api;
    w.system.lock().unwrap().authorities = vec![(
        id(),
        "NEWVAL01".to_owned(),
        "Juge d'instruction de Lyon".to_owned(),
        "InvestigatingJudge".to_owned(),
    )];
    let epoc = |approvals: String| async move {
        let order = post_epoc(api, &approvals).await;
        let o = order.clone();
        let judgement = api
            .app
            .pool
            .run(move |conn| writ::orders::eevidence::judgement(conn, &o))
            .await
            .unwrap();
        (order, judgement)
    };
    let (_, before) = epoc(validated_by("NEWVAL01", "JI-2026-0077")).await;
    let before = before.expect("an unknown validating authority is judged by a person");
    assert!(before.contains("NEWVAL01"), "{before}");

    let settings = api.app.db.settings(&[
        ("WRIT_ETSI__UNIQUE_IDENTIFIER", "ACTOR02"),
        ("WRIT_ETSI__EEVIDENCE_URL", &w.url),
    ]);
    let sender = writ::eevidence::outbox::Sender {
        key: writ::disclosure::keys::signing_key(&settings.package).unwrap(),
        client: writ::etsi::deliver::client(&settings.etsi).unwrap(),
        settings: settings.etsi.clone(),
        interval: std::time::Duration::from_secs(1),
    };
    let refreshed = || async {
        api.app
            .pool
            .run(|conn| {
                let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
                Ok::<_, writ::db::DbError>(
                    all.into_iter()
                        .map(|e| serde_json::from_str::<serde_json::Value>(&e.leaf).unwrap())
                        .filter(|e| e["event"] == "eevidence.authorities_refreshed")
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .unwrap()
    };
    let registered = || async {
        api.app
            .pool
            .run(|conn| {
                writ::eevidence::epoc::registered(conn, "NEWVAL01")
                    .map_err(writ::db::DbError::Query)
            })
            .await
            .unwrap()
    };
    // A malformed answer (an authority without a name) changes nothing.
    w.system.lock().unwrap().malformed = true;
    let e = writ::eevidence::authorities::refresh(&api.app.pool, &sender)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AuthorityName"), "{e}");
    assert!(registered().await.is_none());
    assert!(refreshed().await.is_empty());

    w.system.lock().unwrap().malformed = false;
    let r = writ::eevidence::authorities::refresh(&api.app.pool, &sender)
        .await
        .unwrap();
    assert_eq!((r.listed, r.added, r.changed, r.removed), (1, 1, 0, 0));
    let added = registered()
        .await
        .expect("the listed authority is registered");
    assert_eq!(
        (
            added.name.as_str(),
            added.country.as_str(),
            added.kind.as_str()
        ),
        ("Juge d'instruction de Lyon", "FR", "investigating_judge")
    );
    let events = refreshed().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["refs"]["added"], 1, "{events:?}");
    assert_eq!(events[0]["refs"]["removed"], 0, "{events:?}");
    // Now an order naming it is not held for an unknown authority, and names its validator.
    let (order, after) = epoc(validated_by("NEWVAL01", "JI-2026-0077")).await;
    assert_eq!(after, None);
    assert_eq!(decided(api, &order).await.0, "eu.epoc");
    // The same list again changes nothing; a list without it suspends it: unknown again.
    let r = writ::eevidence::authorities::refresh(&api.app.pool, &sender)
        .await
        .unwrap();
    assert_eq!((r.added, r.changed, r.removed), (0, 0, 0));
    w.system.lock().unwrap().authorities.clear();
    let r = writ::eevidence::authorities::refresh(&api.app.pool, &sender)
        .await
        .unwrap();
    assert_eq!((r.listed, r.removed), (0, 1));
    assert!(registered().await.is_none());
    let (_, again) = epoc(validated_by("NEWVAL01", "JI-2026-0077")).await;
    assert!(again.is_some_and(|j| j.contains("NEWVAL01")));
    assert_eq!(refreshed().await.len(), 3);
    check_sent(&w.system);
}

/// An `endpreservation` (the order's lock, then its transition's audit entry, then the holds
/// lifted) arriving while the hold resolver places the same EPOC-PR's holds. The resolver took
/// the audit append lock, resolved the holds and then, in the same transaction, waited for the
/// order's lock to confirm the preservation, while the end held that lock and waited for the
/// append lock: PostgreSQL found the deadlock and aborted one of them. This plays them in that
/// order (on PostgreSQL the end goes on only once the resolver waits for a lock); both must
/// succeed, and the ended preservation is not confirmed. (SQLite has one writer at a time.)
async fn a_preservation_ended_while_its_holds_resolve_does_not_deadlock(backend: Backend) {
    let (w, pr) = pending_epoc_pr(backend).await;
    let api = &w.api;
    assert_eq!(state_of(api, &pr).await.state.as_str(), "preserving");
    assert!(open_holds(api, &pr).await > 0, "the holds are pending");

    let (locked, after_lock) = std::sync::mpsc::channel::<()>();
    let postgres = backend == Backend::Postgres;
    let watcher = api.app.pool.clone();
    let order = pr.clone();
    let end = api.app.pool.run(move |conn| {
        writ::db::write_tx(conn, |c| {
            writ::orders::lock(c, &order)?;
            locked.send(()).unwrap();
            if postgres {
                crate::concurrency::until_a_lock_is_waited_for(
                    &watcher,
                    "the resolver never waited",
                );
            }
            writ::orders::eevidence::apply(
                c,
                &Actor::new(ActorKind::System, "test"),
                &order,
                writ::orders::eevidence::Trigger::EndPreservation,
                None,
                chrono::Utc::now(),
            )?;
            Ok::<_, writ::orders::OrderError>(())
        })
    });
    let resolve = api.app.pool.run(move |conn| {
        after_lock.recv().unwrap();
        writ::orders::holds::resolve_pending(conn, chrono::Utc::now())
    });
    let (ended, resolved) = tokio::join!(end, resolve);
    ended.expect("the end of the preservation commits");
    resolved.expect("the resolver commits");
    let lc = state_of(api, &pr).await;
    assert_eq!(lc.state.as_str(), "ended");
    assert_eq!(
        queued(api, &pr, "datapreserved").await,
        0,
        "an ended preservation is not confirmed"
    );
}

/// How many calls to `endpoint` were queued for `order`.
async fn queued(api: &Api, order: &str, endpoint: &'static str) -> i64 {
    let order = order.to_owned();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::eevidence_outbox as x;
            x::table
                .filter(x::order_id.eq(&order))
                .filter(x::endpoint.eq(endpoint))
                .count()
                .get_result::<i64>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
}

/// The hold resolver confirms an EPOC-PR in a transaction of its own, right after the one that
/// placed its holds commits; a process that stopped in between leaves the holds placed and the
/// order preserving. The background jobs' sweep (`orders::eevidence::confirm_preserved`)
/// confirms it, exactly once.
async fn holds_resolved_by_a_process_that_stopped_are_confirmed_by_the_jobs(backend: Backend) {
    let (w, pr) = pending_epoc_pr(backend).await;
    let api = &w.api;
    // What the resolver's first transaction leaves: every target hold resolved.
    let o = pr.clone();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::target_holds as t;
            diesel::update(t::table.filter(t::order_id.eq(&o)))
                .set(t::resolved_at.eq(Some(chrono::Utc::now().timestamp_micros())))
                .execute(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    assert_eq!(state_of(api, &pr).await.state.as_str(), "preserving");
    let sweep = || async {
        api.app
            .pool
            .run(|conn| writ::orders::eevidence::confirm_preserved(conn, chrono::Utc::now()))
            .await
            .unwrap()
    };
    assert_eq!(sweep().await, 1);
    assert_eq!(state_of(api, &pr).await.state.as_str(), "preserved");
    assert_eq!(sweep().await, 0, "confirmed once");
    assert_eq!(queued(api, &pr, "datapreserved").await, 1);
}

/// A world whose background jobs do not run (within the test) and an EPOC-PR in it whose target
/// holds are recorded, not yet placed.
async fn pending_epoc_pr(backend: Backend) -> (World, String) {
    let system = Arc::new(Mutex::new(System::default()));
    let url = start_system(system.clone()).await;
    let w = start_with(
        backend,
        system,
        &[
            ("WRIT_ETSI__EEVIDENCE_URL", &url),
            ("WRIT_API__JOBS_INTERVAL_SECS", "3600"),
            ("WRIT_AUDIT__CHECKPOINT_INTERVAL_SECS", "0"),
        ],
    )
    .await;
    let lp = id();
    all_created(
        &post(
            &w.api,
            "preservation",
            &order_xml(&Order {
                auth: &id(),
                tasks: std::slice::from_ref(&lp),
                pr: true,
                ..Order::default()
            }),
        )
        .await,
    );
    let pr = order_of(&w.api, &lp).await;
    (w, pr)
}
