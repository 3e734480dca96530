//! ETSI TS 103 120 (HI-1) over `POST /etsi/hi1`: ETSI's own example messages answered, a task
//! taken in, reviewed, released and DELIVERed to a listener the test starts, and the trust and
//! parsing rules (sender identity, strictness, retransmission) it must hold to. Every message
//! Writ produces here is validated against ETSI's schemas.

use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::StatusCode;
use writ::audit::{Actor, ActorKind};
use writ::authority::{EtsiIdentity, KeyAlgorithm, NewAuthority};
use writ::etsi::model::{Action, Message, Object, Outcome, Payload};
use writ::etsi::{Limits, parse};
use writ::policy::IssuerKind;

use crate::both_backends;
use crate::etsi_schema::assert_valid;
use crate::helpers::Backend;
use crate::orders::{Api, PARIS, POLICE_SIGNER, Signer, public_pem};
use crate::workspace::{Browser, PASSWORD, add_users, hash_in, seed_alice};

both_backends!(
    etsi_examples_are_answered_action_by_action,
    an_hi1_task_is_reviewed_released_and_delivered,
    hi1_messages_must_come_from_the_signer_and_parse_strictly,
    a_release_is_picked_up_for_delivery_exactly_once,
);

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/etsi/examples");

/// A US authority for the round trip (its orders fall under us.subpoena).
pub(crate) const DOJ: Signer = Signer {
    iss: "us-usao-sdny",
    kid: "sdny-1",
    seed: 9,
};

pub(crate) fn identity(
    authority: &str,
    unique: &str,
    instrument: &str,
    url: Option<String>,
) -> EtsiIdentity {
    EtsiIdentity {
        authority_id: authority.into(),
        country_code: "XX".into(),
        unique_identifier: unique.into(),
        disclosure_instrument: instrument.into(),
        preservation_instrument: Some("eu.epoc_pr".into()),
        delivery_url: url,
        updated_at: chrono::Utc::now().timestamp_micros(),
    }
}

/// Writ is `XX/ACTOR02` here, the receiver in ETSI's examples; Paris is `XX/ACTOR01`, their
/// sender; the Lyon police `XX/ACTOR03`; the DOJ office `XX/ACTOR05`.
pub(crate) async fn start(backend: Backend, delivery_url: Option<String>) -> Api {
    start_with(backend, delivery_url, "1", &[]).await
}

/// [`start`], with the background jobs (and the deliverer) running every `jobs_interval_secs`,
/// and `extra` settings.
async fn start_with(
    backend: Backend,
    delivery_url: Option<String>,
    jobs_interval_secs: &str,
    extra: &[(&str, &str)],
) -> Api {
    let mut settings = vec![
        ("WRIT_ETSI__UNIQUE_IDENTIFIER", "ACTOR02"),
        ("WRIT_API__JOBS_INTERVAL_SECS", jobs_interval_secs),
        ("WRIT_ETSI__DELIVERY_BACKOFF_SECS", "0"),
    ];
    settings.extend_from_slice(extra);
    let api = Api::start(backend, &settings).await;
    api.app
        .pool
        .run(move |conn| {
            let actor = Actor::new(ActorKind::System, "test");
            writ::authority::add(
                conn,
                &actor,
                &NewAuthority {
                    id: DOJ.iss.into(),
                    name: "U.S. Attorney's Office, S.D.N.Y.".into(),
                    country: "US".into(),
                    kind: IssuerKind::Prosecutor,
                    contacts: vec!["sdny@justice.example".into()],
                },
            )
            .unwrap();
            writ::authority::add_key(
                conn,
                &actor,
                DOJ.iss,
                DOJ.kid,
                KeyAlgorithm::EdDSA,
                &public_pem(DOJ.seed),
            )
            .unwrap();
            for id in [
                identity(PARIS.iss, "ACTOR01", "eu.epoc", None),
                identity(POLICE_SIGNER.iss, "ACTOR03", "eu.epoc", None),
                identity(DOJ.iss, "ACTOR05", "us.subpoena", delivery_url),
            ] {
                writ::authority::set_etsi(conn, &actor, &id).unwrap();
            }
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
    api
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) text: String,
    message: Option<Message>,
    pub(crate) replayed: bool,
}

impl Reply {
    fn message(&self) -> &Message {
        self.message
            .as_ref()
            .unwrap_or_else(|| panic!("not an HI1Message ({}): {}", self.status, self.text))
    }

    /// The outcome of each action, in order.
    pub(crate) fn outcomes(&self) -> Vec<(u64, Outcome)> {
        match &self.message().payload {
            Payload::Responses(r) => r.iter().map(|r| (r.id, r.outcome.clone())).collect(),
            other => panic!("not action responses: {other:?}\n{}", self.text),
        }
    }

    /// The message-level error, when the whole message was refused.
    fn refusal(&self) -> (u64, String) {
        match &self.message().payload {
            Payload::Error(e) => (e.code, e.description.clone()),
            other => panic!("not refused: {other:?}"),
        }
    }
}

pub(crate) async fn hi1(api: &Api, who: Signer, xml: &str) -> Reply {
    let token = api.token(who, "POST", "/etsi/hi1", xml.as_bytes());
    hi1_with(api, Some(&token), "application/xml", xml).await
}

async fn hi1_with(api: &Api, token: Option<&str>, content_type: &str, xml: &str) -> Reply {
    let mut req = api
        .app
        .client
        .post(format!("{}/etsi/hi1", api.app.address))
        .header("content-type", content_type)
        .body(xml.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    reply_of(req.send().await.unwrap()).await
}

/// The HI-1 answer of a response.
pub(crate) async fn reply_of(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let replayed = resp.headers().contains_key("idempotent-replayed");
    let text = resp.text().await.unwrap();
    let message = parse(text.as_bytes(), &Limits::default()).ok();
    Reply {
        status,
        text,
        message,
        replayed,
    }
}

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The example with every UUID replaced by a fresh one (consistently within the file), so that
/// examples which share identifiers can all be sent to one Writ.
fn fresh_ids(xml: &str) -> String {
    let bytes = xml.as_bytes();
    let mut map = std::collections::HashMap::new();
    let mut out = String::with_capacity(xml.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            let old = &xml[i..i + 36];
            let new = map
                .entry(old.to_owned())
                .or_insert_with(|| uuid::Uuid::new_v4().to_string());
            out.push_str(new);
            i += 36;
        } else {
            let ch = xml[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The example with an approver named in its authorisation.
pub(crate) fn with_approver(xml: &str) -> String {
    let end = "</auth:AuthorisationTimespan>";
    assert!(xml.contains(end));
    xml.replacen(
        end,
        &format!("{end}<auth:AuthorisationApprovalDetails><common:ApproverDetails><common:ApproverName>M. Dupont</common:ApproverName></common:ApproverDetails></auth:AuthorisationApprovalDetails>"),
        1,
    )
}

pub(crate) fn example(name: &str) -> String {
    fresh_ids(&std::fs::read_to_string(format!("{EXAMPLES}/{name}")).unwrap())
}

pub(crate) fn error_of(outcome: &Outcome) -> (u64, String) {
    match outcome {
        Outcome::Error(e) => (e.code, e.description.clone()),
        other => panic!("not an error: {other:?}"),
    }
}

async fn order_targets(api: &Api, authority: &str) -> Vec<(String, serde_json::Value)> {
    let authority = authority.to_owned();
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::{order_versions, orders};
            let rows: Vec<(String, String)> = orders::table
                .inner_join(order_versions::table.on(order_versions::order_id.eq(orders::id)))
                .filter(orders::authority_id.eq(&authority))
                .order(orders::received_at)
                .select((orders::id, order_versions::order_json))
                .load(conn)
                .map_err(writ::db::DbError::Query)?;
            Ok::<_, writ::db::DbError>(
                rows.into_iter()
                    .map(|(id, json)| (id, serde_json::from_str(&json).unwrap()))
                    .collect(),
            )
        })
        .await
        .unwrap()
}

async fn etsi_examples_are_answered_action_by_action(backend: Backend) {
    let api = start(backend, None).await;
    let mut produced: Vec<(String, String)> = Vec::new();

    // request4: subscriber data by phone number. As ETSI wrote it, nobody is named as issuing
    // the order: the authorisation is created, the task refused naming what to add.
    let r = hi1(&api, PARIS, &example("request4.xml")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let outcomes = r.outcomes();
    assert_eq!(outcomes.len(), 2);
    assert!(
        matches!(outcomes[0].1, Outcome::Create { .. }),
        "{}",
        r.text
    );
    let (code, text) = error_of(&outcomes[1].1);
    assert_eq!(code, 422);
    assert!(text.contains("ApproverName"), "{text}");
    assert!(order_targets(&api, PARIS.iss).await.is_empty());
    produced.push(("request4-refused-task.xml".into(), r.text.clone()));
    // With the approver named, the task becomes an order.
    let r = hi1(&api, PARIS, &with_approver(&example("request4.xml"))).await;
    let outcomes = r.outcomes();
    assert!(
        matches!(outcomes[0].1, Outcome::Create { .. }),
        "{}",
        r.text
    );
    assert!(
        matches!(outcomes[1].1, Outcome::Create { .. }),
        "{}",
        r.text
    );
    let orders = order_targets(&api, PARIS.iss).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].1["targets"],
        serde_json::json!([{"phone_number": "+442079460223"}])
    );
    assert_eq!(orders[0].1["categories"], serde_json::json!(["subscriber"]));
    assert_eq!(orders[0].1["instrument"], "eu.epoc");
    assert_eq!(orders[0].1["issuer"]["file_number"], "W000001");
    produced.push(("request4-answer.xml".into(), r.text.clone()));

    // request6: an IP address at three observed times.
    let r = hi1(&api, PARIS, &with_approver(&example("request6.xml"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.outcomes()
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Create { .. })),
        "{}",
        r.text
    );
    let orders = order_targets(&api, PARIS.iss).await;
    let targets = orders[1].1["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert_eq!(targets[0]["ip"]["address"], "192.0.2.23");
    assert_eq!(targets[2]["ip"]["timestamp"], "2021-10-03T13:37:00Z");
    produced.push(("request6-answer.xml".into(), r.text.clone()));

    // request8: preservation. ETSI's example carries the task alone, with nobody named as
    // issuing it: refused with the element to add. With an authorisation naming the approver,
    // the task becomes a preservation order under the sender's registered instrument.
    let bare = example("request8_LPTaskObject.xml");
    let r = hi1(&api, PARIS, &bare).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        error_of(&r.outcomes()[0].1).1.contains("ApproverName"),
        "{}",
        r.text
    );
    produced.push(("request8-refused-task.xml".into(), r.text.clone()));
    let auth_id = uuid::Uuid::new_v4().to_string();
    let task_xml = {
        let start = bare.find("<ActionRequest>").unwrap();
        let end = bare.rfind("</ActionRequest>").unwrap() + "</ActionRequest>".len();
        bare[start..end]
            .replacen("<ActionIdentifier>0</ActionIdentifier>", "<ActionIdentifier>1</ActionIdentifier>", 1)
            .replacen(
                "<OwnerIdentifier>ACTOR01</OwnerIdentifier>",
                &format!("<OwnerIdentifier>ACTOR01</OwnerIdentifier><AssociatedObjects><AssociatedObject>{auth_id}</AssociatedObject></AssociatedObjects>"),
                1,
            )
    };
    let with_auth = envelope(
        "ACTOR01",
        &format!(
            r#"<ActionRequest><ActionIdentifier>0</ActionIdentifier><CREATE><HI1Object xsi:type="auth:AuthorisationObject"><ObjectIdentifier>{auth_id}</ObjectIdentifier><auth:AuthorisationReference>PR-2023-7</auth:AuthorisationReference><auth:AuthorisationApprovalDetails><common:ApproverDetails><common:ApproverName>M. Dupont</common:ApproverName></common:ApproverDetails></auth:AuthorisationApprovalDetails></HI1Object></CREATE></ActionRequest>{task_xml}"#
        ),
    );
    let r = hi1(&api, PARIS, &with_auth).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.outcomes()
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Create { .. })),
        "{}",
        r.text
    );
    let orders = order_targets(&api, PARIS.iss).await;
    assert_eq!(orders[2].1["instrument"], "eu.epoc_pr");
    let lp_order = orders[2].0.clone();
    let holds: i64 = api
        .app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::target_holds;
            target_holds::table
                .filter(target_holds::order_id.eq(&lp_order))
                .count()
                .get_result(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    assert_eq!(holds, 1, "the preservation order holds its target");
    produced.push(("request8-answer.xml".into(), r.text.clone()));

    // The configuration requests.
    for name in ["request_config.xml", "request_ee_config.xml"] {
        let r = hi1(&api, PARIS, &example(name)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let Outcome::CspConfig(config) = &r.outcomes()[0].1 else {
            panic!("{}", r.text)
        };
        let names: Vec<&str> = config
            .dictionaries
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert!(names.contains(&"WritInstrument"), "{names:?}");
        let instruments = &config.dictionaries[0].entries;
        assert!(instruments.iter().any(|e| e.value == "eu.epoc"));
        assert!(config.formats.iter().any(|f| f.name == "WritUsername"));
        assert!(config.targeting.iter().any(|t| {
            t.format_name == "InternationalE164"
                && t.ld_request_types
                    .iter()
                    .any(|e| e.value == "SubscriberData")
        }));
        produced.push((format!("{name}-answer.xml"), r.text.clone()));
    }

    // LI tasks are not Writ's business: each gets its own error; the authorisation is created.
    // (Its parties are named `Sender` and `Receiver`: put in the registered ones.)
    let multi = example("mutliple-auth-example-request.xml")
        .replace(">Sender<", ">ACTOR01<")
        .replace(">Receiver<", ">ACTOR02<");
    let r = hi1(&api, PARIS, &multi).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (_, o) in r.outcomes() {
        let (code, text) = error_of(&o);
        assert_eq!(code, 501);
        assert!(text.contains("LITaskObject"), "{text}");
    }
    produced.push(("multiple-auth-answer.xml".into(), r.text.clone()));
    let r = hi1(&api, PARIS, &example("request1.xml")).await;
    let outcomes = r.outcomes();
    assert!(
        matches!(outcomes[0].1, Outcome::Create { .. }),
        "{}",
        r.text
    );
    assert_eq!(error_of(&outcomes[1].1).0, 501);

    // request2: GETs of objects this sender does not hold.
    let r = hi1(&api, PARIS, &example("request2.xml")).await;
    for (_, o) in r.outcomes() {
        assert_eq!(error_of(&o).0, 404, "{}", r.text);
    }
    produced.push(("request2-answer.xml".into(), r.text.clone()));

    // request3: a document is created; UPDATE is answered as not supported.
    let r = hi1(&api, PARIS, &example("request3.xml")).await;
    let outcomes = r.outcomes();
    assert_eq!(outcomes.len(), 2, "{}", r.text);
    assert!(
        outcomes.iter().any(|(_, o)| matches!(o, Outcome::Error(e) if e.code == 501 && e.description.contains("UPDATE"))),
        "{}",
        r.text
    );

    // A format Writ does not serve, a destination object, a takedown: named, never dropped.
    let r = hi1(
        &api,
        PARIS,
        &with_approver(&example("request4-TargetIdentifierSubtype.xml")),
    )
    .await;
    let (code, text) = error_of(&r.outcomes()[1].1);
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("ServiceAccessIdentifier"), "{text}");
    let r = hi1(&api, PARIS, &example("request10_LDDestinationObject.xml")).await;
    assert!(
        r.outcomes().iter().any(
            |(_, o)| matches!(o, Outcome::Error(e) if e.description.contains("LDDestinationObject"))
        ),
        "{}",
        r.text
    );
    let r = hi1(&api, PARIS, &example("request_takedown.xml")).await;
    assert!(
        r.outcomes()
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Error(e) if e.description.contains("TDTaskObject"))),
        "{}",
        r.text
    );
    // request5 is a provider's delivery to an authority (ACTOR2 to ACTOR1): from Paris it is
    // refused as a whole; addressed to Writ, its DELIVER is answered as not taken.
    let delivery = example("request5-Binary-Delivery.xml");
    let r = hi1(&api, PARIS, &delivery).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let delivery = delivery
        .replace(">ACTOR1<", ">ACTOR02<")
        .replace(">ACTOR2<", ">ACTOR01<");
    let r = hi1(&api, PARIS, &delivery).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 501, "{}", r.text);

    // Responses sent to Writ are refused as a whole, with a response message.
    for name in ["response1.xml", "response_config.xml"] {
        let r = hi1(&api, PARIS, &example(name)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.refusal().1.contains("requests"), "{}", r.text);
        produced.push((format!("{name}-refusal.xml"), r.text.clone()));
    }

    // LIST shows what this sender created; another sender sees none of it.
    let list = list_request("ACTOR01");
    let r = hi1(&api, PARIS, &list).await;
    let Outcome::List(records) = &r.outcomes()[0].1 else {
        panic!("{}", r.text)
    };
    let tasks: Vec<_> = records
        .iter()
        .filter(|r| r.object_type.value == "LDTask" || r.object_type.value == "LPTask")
        .collect();
    assert_eq!(tasks.len(), 3, "{}", r.text);
    produced.push(("list-answer.xml".into(), r.text.clone()));
    let r = hi1(&api, POLICE_SIGNER, &list_request("ACTOR03")).await;
    let Outcome::List(records) = &r.outcomes()[0].1 else {
        panic!("{}", r.text)
    };
    assert!(records.is_empty());

    let refs: Vec<(&str, &str)> = produced
        .iter()
        .map(|(n, x)| (n.as_str(), x.as_str()))
        .collect();
    assert_valid(&refs);
}

pub(crate) fn envelope(sender: &str, actions: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<HI1Message xmlns="http://uri.etsi.org/03120/common/2019/10/Core" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:common="http://uri.etsi.org/03120/common/2016/02/Common" xmlns:task="http://uri.etsi.org/03120/common/2020/09/Task" xmlns:auth="http://uri.etsi.org/03120/common/2020/09/Authorisation" xmlns:doc="http://uri.etsi.org/03120/common/2020/09/Document">
    <Header>
        <SenderIdentifier><CountryCode>XX</CountryCode><UniqueIdentifier>{sender}</UniqueIdentifier></SenderIdentifier>
        <ReceiverIdentifier><CountryCode>XX</CountryCode><UniqueIdentifier>ACTOR02</UniqueIdentifier></ReceiverIdentifier>
        <TransactionIdentifier>{tx}</TransactionIdentifier>
        <Timestamp>{now}</Timestamp>
        <Version><ETSIVersion>V1.18.1</ETSIVersion><NationalProfileOwner>XX</NationalProfileOwner><NationalProfileVersion>v1.0</NationalProfileVersion></Version>
    </Header>
    <Payload><RequestPayload><ActionRequests>{actions}</ActionRequests></RequestPayload></Payload>
</HI1Message>"#,
        tx = uuid::Uuid::new_v4(),
        now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )
}

pub(crate) fn list_request(sender: &str) -> String {
    envelope(
        sender,
        "<ActionRequest><ActionIdentifier>0</ActionIdentifier><LIST/></ActionRequest>",
    )
}

pub(crate) fn get_request(sender: &str, id: &str) -> String {
    envelope(
        sender,
        &format!(
            "<ActionRequest><ActionIdentifier>0</ActionIdentifier><GET><Identifier>{id}</Identifier></GET></ActionRequest>"
        ),
    )
}

/// A subpoena for the subscriber data of a phone number: authorisation, its signed document
/// and the task, with current dates.
pub(crate) fn subpoena(
    sender: &str,
    auth: &str,
    doc: &str,
    task: &str,
    value: &str,
    extra_task_xml: &str,
) -> String {
    let now = chrono::Utc::now();
    let t = |d: chrono::Duration| (now + d).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let pdf = base64::engine::general_purpose::STANDARD.encode(crate::orders::PDF);
    envelope(
        sender,
        &format!(
            r#"<ActionRequest><ActionIdentifier>0</ActionIdentifier><CREATE>
<HI1Object xsi:type="auth:AuthorisationObject">
  <ObjectIdentifier>{auth}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>{sender}</OwnerIdentifier>
  <AssociatedObjects><AssociatedObject>{doc}</AssociatedObject></AssociatedObjects>
  <auth:AuthorisationReference>GJ-2026-117</auth:AuthorisationReference>
  <auth:AuthorisationLegalType><common:Owner>ACTOR02</common:Owner><common:Name>WritInstrument</common:Name><common:Value>us.subpoena</common:Value></auth:AuthorisationLegalType>
  <auth:AuthorisationTimespan><auth:StartTime>{start}</auth:StartTime><auth:EndTime>{end}</auth:EndTime></auth:AuthorisationTimespan>
  <auth:AuthorisationCreationTimestamp>{start}</auth:AuthorisationCreationTimestamp>
  <auth:AuthorisationApprovalDetails><common:ApproverDetails><common:ApproverName>AUSA J. Rivera</common:ApproverName></common:ApproverDetails></auth:AuthorisationApprovalDetails>
  <auth:AuthorisationFlags><auth:AuthorisationFlag><common:Owner>ACTOR02</common:Owner><common:Name>WritStatutoryBasis</common:Name><common:Value>grand_jury_subpoena|Fed. R. Crim. P. 17</common:Value></auth:AuthorisationFlag></auth:AuthorisationFlags>
</HI1Object></CREATE></ActionRequest>
<ActionRequest><ActionIdentifier>1</ActionIdentifier><CREATE>
<HI1Object xsi:type="doc:DocumentObject">
  <ObjectIdentifier>{doc}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>{sender}</OwnerIdentifier>
  <doc:DocumentReference>GJ-2026-117-subpoena</doc:DocumentReference>
  <doc:DocumentBody><doc:Contents>{pdf}</doc:Contents><doc:ContentType>application/pdf</doc:ContentType></doc:DocumentBody>
</HI1Object></CREATE></ActionRequest>
<ActionRequest><ActionIdentifier>2</ActionIdentifier><CREATE>
<HI1Object xsi:type="task:LDTaskObject">
  <ObjectIdentifier>{task}</ObjectIdentifier><CountryCode>XX</CountryCode><OwnerIdentifier>{sender}</OwnerIdentifier>
  <AssociatedObjects><AssociatedObject>{auth}</AssociatedObject></AssociatedObjects>
  <task:Reference>XX-ACTOR05-0042</task:Reference>
  <task:RequestDetails>
    <task:Type><common:Owner>ETSI</common:Owner><common:Name>RequestType</common:Name><common:Value>SubscriberData</common:Value></task:Type>
    <task:RequestValues><task:RequestValue><task:FormatType><task:FormatOwner>ETSI</task:FormatOwner><task:FormatName>InternationalE164</task:FormatName></task:FormatType><task:Value>{value}</task:Value></task:RequestValue></task:RequestValues>
  </task:RequestDetails>{extra_task_xml}
</HI1Object></CREATE></ActionRequest>"#,
            start = t(chrono::Duration::hours(-2)),
            end = t(chrono::Duration::days(30)),
        ),
    )
}

/// The test's HI-1 destination: the first DELIVER gets a 503 (so the retry is tested), later
/// ones are checked (token signed by Writ's package key over these bytes) and acknowledged.
#[derive(Default)]
struct Listener {
    received: Vec<(Option<String>, String)>,
}

async fn start_listener(state: Arc<Mutex<Listener>>) -> String {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    async fn take(
        req: HttpRequest,
        body: web::Bytes,
        state: web::Data<Arc<Mutex<Listener>>>,
    ) -> HttpResponse {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start_matches("Bearer ").to_owned());
        let text = String::from_utf8(body.to_vec()).unwrap();
        let first = {
            let mut s = state.lock().unwrap();
            s.received.push((token, text.clone()));
            s.received.len() == 1
        };
        if first {
            return HttpResponse::ServiceUnavailable().finish();
        }
        let m = parse(text.as_bytes(), &Limits::default()).unwrap();
        let Payload::Requests(actions) = &m.payload else {
            panic!("not a request")
        };
        let Action::Deliver { identifier, .. } = &actions[0].action else {
            panic!("not DELIVER")
        };
        let answer = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<HI1Message xmlns="http://uri.etsi.org/03120/common/2019/10/Core"><Header><SenderIdentifier><CountryCode>XX</CountryCode><UniqueIdentifier>ACTOR05</UniqueIdentifier></SenderIdentifier><ReceiverIdentifier><CountryCode>XX</CountryCode><UniqueIdentifier>ACTOR02</UniqueIdentifier></ReceiverIdentifier><TransactionIdentifier>{tx}</TransactionIdentifier><Timestamp>2026-11-28T10:00:00.000000Z</Timestamp><Version><ETSIVersion>V1.18.1</ETSIVersion><NationalProfileOwner>XX</NationalProfileOwner><NationalProfileVersion>v1.0</NationalProfileVersion></Version></Header><Payload><ResponsePayload><ActionResponses><ActionResponse><ActionIdentifier>0</ActionIdentifier><DELIVERResponse><Identifier>{identifier}</Identifier></DELIVERResponse></ActionResponse></ActionResponses></ResponsePayload></Payload></HI1Message>"#,
            tx = m.header.transaction_id
        );
        HttpResponse::Ok()
            .content_type("application/xml")
            .body(answer)
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hi1/deliveries", web::post().to(take))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/hi1/deliveries")
}

async fn an_hi1_task_is_reviewed_released_and_delivered(backend: Backend) {
    hi1_task_round_trip(backend, &[]).await;
}

/// An HI-1 task taken in, released by two approvers and DELIVERed to the test's listener, which
/// checks the request token against `/packages/public-key`; with `extra` settings (the `hsm`
/// tests put the package key in a PKCS#11 token).
pub(crate) async fn hi1_task_round_trip(backend: Backend, extra: &[(&str, &str)]) {
    let state = Arc::new(Mutex::new(Listener::default()));
    let url = start_listener(state.clone()).await;
    let api = start_with(backend, Some(url), "1", extra).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (auth, doc, task) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let create = subpoena("ACTOR05", &auth, &doc, &task, "33612345678", "");
    let r = hi1(&api, DOJ, &create).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.outcomes()
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Create { .. })),
        "{}",
        r.text
    );
    let mut produced = vec![("create-answer.xml".to_owned(), r.text.clone())];

    // A retransmission gets the same answer and creates nothing more.
    let again = hi1(&api, DOJ, &create).await;
    assert!(again.replayed);
    assert_eq!(again.text, r.text);
    let orders = order_targets(&api, DOJ.iss).await;
    assert_eq!(orders.len(), 1);
    let (order_id, order) = &orders[0];
    assert_eq!(order["instrument"], "us.subpoena");
    assert_eq!(order["issuer"]["person"], "AUSA J. Rivera");
    assert_eq!(
        order["issuer"]["authority"],
        "U.S. Attorney's Office, S.D.N.Y."
    );

    // The task awaits approval; the order carries the signed document.
    let status = |r: &Reply| match &r.outcomes()[0].1 {
        Outcome::Get(Object::LdTask(t)) => t.status.as_ref().unwrap().value.clone(),
        other => panic!("{other:?}"),
    };
    let r = hi1(&api, DOJ, &get_request("ACTOR05", &task)).await;
    assert_eq!(status(&r), "AwaitingApproval", "{}", r.text);
    produced.push(("get-awaiting.xml".into(), r.text.clone()));
    let (_, view) = crate::orders::json_of(
        api.send(DOJ, "GET", &format!("/api/v1/orders/{order_id}"), b"")
            .await,
    )
    .await;
    assert_eq!(view["document"]["media_type"], "application/pdf", "{view}");

    // Two approvers release it in the workspace.
    let mut alex = Browser::new(&api.app);
    let mut bea = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    bea.sign_in("bea", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (s, preview, _) = alex
        .post_follow(&format!("/orders/{order_id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    let hash = hash_in(&preview);
    let (s, body, _) = alex
        .post(
            &format!("/orders/{order_id}/approve"),
            &[
                ("csrf", &csrf),
                ("snapshot_sha256", &hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let csrf_b = bea.session_csrf().await;
    let (s, body, _) = bea
        .post(
            &format!("/orders/{order_id}/approve"),
            &[
                ("csrf", &csrf_b),
                ("snapshot_sha256", &hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");

    let r = hi1(&api, DOJ, &get_request("ACTOR05", &task)).await;
    assert_eq!(status(&r), "Disclosed", "{}", r.text);
    produced.push(("get-disclosed.xml".into(), r.text.clone()));

    // The DELIVER reaches the listener, is refused once, retried and acknowledged.
    let order = order_id.clone();
    let mut delivered = None;
    let mut seen = Vec::new();
    for _ in 0..100 {
        let o = order.clone();
        let d = api
            .app
            .pool
            .run(move |conn| writ::etsi::deliver::deliveries_of(conn, &o))
            .await
            .unwrap();
        if d.first().is_some_and(|(_, s)| s.status == "acknowledged") {
            delivered = d.into_iter().next();
            break;
        }
        seen = d;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (delivery_id, state_now) =
        delivered.unwrap_or_else(|| panic!("the delivery was not acknowledged: {seen:?}"));
    assert_eq!(state_now.attempts, 2, "{state_now:?}");
    let received = state.lock().unwrap().received.clone();
    assert_eq!(received.len(), 2);
    let (token, xml) = &received[1];
    let first = parse(received[0].1.as_bytes(), &Limits::default()).unwrap();
    let second = parse(xml.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        first.header.transaction_id, second.header.transaction_id,
        "a retry is the same transaction"
    );
    assert!(
        first.payload == second.payload,
        "a retry sends the same delivery"
    );
    // Signed by Writ's package key, bound to these bytes.
    let key_pem = api
        .app
        .get("/packages/public-key")
        .await
        .text()
        .await
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_pem(key_pem.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[url_origin(&api, &received)]);
    let claims =
        jsonwebtoken::decode::<serde_json::Value>(token.as_deref().unwrap(), &key, &validation)
            .unwrap()
            .claims;
    use sha2::Digest;
    let bsh = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(xml.as_bytes()));
    assert_eq!(claims["bsh"], bsh);
    assert_eq!(claims["htu"], "/hi1/deliveries");
    let m = parse(xml.as_bytes(), &Limits::default()).unwrap();
    let Payload::Requests(actions) = &m.payload else {
        panic!()
    };
    let Action::Deliver {
        identifier,
        object: Object::Delivery(d),
    } = &actions[0].action
    else {
        panic!()
    };
    assert_eq!(*identifier, delivery_id);
    assert_eq!(d.base.associated, vec![task.clone()]);
    assert_eq!(d.ldid.as_deref(), Some("XX-ACTOR05-0042"));
    let binary = d.binary.as_ref().unwrap();
    assert_eq!(
        binary.checksum.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&binary.data)).as_str())
    );
    // The package verifies offline and holds exactly the subscriber record asked for.
    let public = writ::disclosure::keys::parse_public_pem(&key_pem).unwrap();
    let verified = writ::disclosure::package::verify(&binary.data, &public).unwrap();
    assert_eq!(
        verified.record_counts.get("subscriber"),
        Some(&1),
        "{:?}",
        verified.record_counts
    );
    assert!(
        verified.audit_proof.is_some(),
        "the delivery carries the release's inclusion proof"
    );
    produced.push(("deliver.xml".into(), xml.clone()));

    // LIST filters by status without reading the objects back.
    let disclosed = envelope(
        "ACTOR05",
        "<ActionRequest><ActionIdentifier>0</ActionIdentifier><LIST><Status><common:Owner>ETSI</common:Owner><common:Name>LDTaskStatus</common:Name><common:Value>Disclosed</common:Value></Status></LIST></ActionRequest>",
    );
    let r = hi1(&api, DOJ, &disclosed).await;
    let Outcome::List(records) = &r.outcomes()[0].1 else {
        panic!("{}", r.text)
    };
    assert_eq!(records.len(), 1, "{}", r.text);
    assert_eq!(records[0].identifier, task);

    // The delivery is listed and can be fetched on request too.
    let r = hi1(&api, DOJ, &list_request("ACTOR05")).await;
    let Outcome::List(records) = &r.outcomes()[0].1 else {
        panic!()
    };
    assert!(
        records
            .iter()
            .any(|r| r.object_type.value == "Delivery" && r.identifier == delivery_id)
    );
    let r = hi1(&api, DOJ, &get_request("ACTOR05", &delivery_id)).await;
    let Outcome::Get(Object::Delivery(fetched)) = &r.outcomes()[0].1 else {
        panic!("{}", r.text)
    };
    assert_eq!(fetched.status.as_ref().unwrap().value, "Acknowledged");
    produced.push(("get-delivery.xml".into(), r.text.clone()));
    // Another sender cannot fetch it.
    let r = hi1(&api, PARIS, &get_request("ACTOR01", &delivery_id)).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 404);

    // The whole exchange is in the audit log, which still verifies.
    let pool = api.app.pool.clone();
    let settings = api.app.db.settings(&[]).audit;
    let live = tokio::task::spawn_blocking(move || {
        let signer =
            writ::audit::service::load_signer(&settings, &mut pool.conn().unwrap(), false).unwrap();
        writ::audit::service::verify_live(&pool, &signer)
    })
    .await
    .unwrap();
    assert!(live.is_ok(), "{live:?}");
    let events: String = api
        .app
        .pool
        .run(|conn| {
            let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
            Ok::<_, writ::db::DbError>(all.into_iter().map(|e| e.leaf).collect())
        })
        .await
        .unwrap();
    for e in [
        "etsi.message_answered",
        "order.received",
        "order.released",
        "etsi.delivery_queued",
        "etsi.delivery_acknowledged",
    ] {
        assert!(events.contains(e), "{e} missing");
    }
    let refs: Vec<(&str, &str)> = produced
        .iter()
        .map(|(n, x)| (n.as_str(), x.as_str()))
        .collect();
    assert_valid(&refs);
}

fn url_origin(_api: &Api, received: &[(Option<String>, String)]) -> String {
    // The audience is the destination's origin; read it back from the token itself (unverified)
    // to compare with the listener's own address below.
    let token = received[1].0.as_deref().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let aud = claims["aud"].as_str().unwrap().to_owned();
    assert!(aud.starts_with("http://127.0.0.1:"), "{aud}");
    aud
}

async fn hi1_messages_must_come_from_the_signer_and_parse_strictly(backend: Backend) {
    let api = start(backend, None).await;
    let ids = || {
        (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        )
    };
    let mut produced = Vec::new();

    // Paris signs a message claiming to come from the Lyon police: refused as a whole.
    let (a, d, t) = ids();
    let r = hi1(
        &api,
        PARIS,
        &subpoena("ACTOR03", &a, &d, &t, "33612345678", ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.refusal().1.contains("not the one registered"),
        "{}",
        r.text
    );
    produced.push(("forbidden.xml".to_owned(), r.text.clone()));
    // An authority with no HI-1 identity cannot use the endpoint.
    let berlin = crate::orders::Signer {
        iss: "de-ag-berlin",
        kid: "berlin-1",
        seed: 4,
    };
    let r = hi1(&api, berlin, &list_request("ACTOR01")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // A message for another receiver.
    let other = list_request("ACTOR01").replace("ACTOR02", "ACTOR99");
    let r = hi1(&api, PARIS, &other).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.refusal().1.contains("ACTOR99"), "{}", r.text);

    // Authentication is the API's: no token, a token for other bytes, the wrong media type.
    let body = list_request("ACTOR01");
    assert_eq!(
        hi1_with(&api, None, "application/xml", &body).await.status,
        StatusCode::UNAUTHORIZED
    );
    let token = api.token(PARIS, "POST", "/etsi/hi1", b"<other/>");
    assert_eq!(
        hi1_with(&api, Some(&token), "application/xml", &body)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let token = api.token(PARIS, "POST", "/etsi/hi1", body.as_bytes());
    assert_eq!(
        hi1_with(&api, Some(&token), "application/json", &body)
            .await
            .status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    // No DTDs (so no external entities), and unknown elements are named by path.
    let xxe = list_request("ACTOR01").replacen(
        "<HI1Message",
        "<!DOCTYPE HI1Message [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<HI1Message",
        1,
    );
    let r = hi1(&api, PARIS, &xxe).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(!r.text.contains("root:"), "{}", r.text);
    produced.push(("xxe-refusal.xml".into(), r.text.clone()));
    let (a, d, t) = ids();
    let unknown = subpoena(
        "ACTOR05",
        &a,
        &d,
        &t,
        "33612345678",
        "\n  <task:Surprise>1</task:Surprise>",
    );
    let r = hi1(&api, DOJ, &unknown).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let (_, reason) = r.refusal();
    assert!(
        reason.contains("Surprise") && reason.contains("LDTaskObject")
            || reason.contains("HI1Object"),
        "{reason}"
    );
    assert!(
        order_targets(&api, DOJ.iss).await.is_empty(),
        "nothing of a refused message is kept as an order"
    );

    // A bad value fails its action only, with the element named; nothing is half-written.
    let (a, d, t) = ids();
    let r = hi1(&api, DOJ, &subpoena("ACTOR05", &a, &d, &t, "+33 6 12", "")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let outcomes = r.outcomes();
    let (code, text) = error_of(&outcomes[2].1);
    assert_eq!(code, 422);
    assert!(text.contains("RequestValue[1]/task:Value"), "{text}");
    assert!(order_targets(&api, DOJ.iss).await.is_empty());
    produced.push(("action-error.xml".into(), r.text.clone()));
    // The same task identifier cannot be created twice.
    let (a, d, t) = ids();
    let ok = hi1(
        &api,
        DOJ,
        &subpoena("ACTOR05", &a, &d, &t, "33612345678", ""),
    )
    .await;
    assert!(
        ok.outcomes()
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Create { .. })),
        "{}",
        ok.text
    );
    let (a2, d2, _) = ids();
    let twice = hi1(
        &api,
        DOJ,
        &subpoena("ACTOR05", &a2, &d2, &t, "33612345678", ""),
    )
    .await;
    assert_eq!(error_of(&twice.outcomes()[2].1).0, 409, "{}", twice.text);
    // A transaction identifier reused for other bytes is refused.
    let tx = ok.message().header.transaction_id.clone();
    let reused = list_request("ACTOR05");
    let reused = {
        let start =
            reused.find("<TransactionIdentifier>").unwrap() + "<TransactionIdentifier>".len();
        let end = reused.find("</TransactionIdentifier>").unwrap();
        format!("{}{tx}{}", &reused[..start], &reused[end..])
    };
    let r = hi1(&api, DOJ, &reused).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // Another authority cannot read the task.
    let r = hi1(&api, PARIS, &get_request("ACTOR01", &t)).await;
    assert_eq!(error_of(&r.outcomes()[0].1).0, 404);

    // One message cannot create the same object twice.
    let (a, d, t) = ids();
    let doubled = subpoena("ACTOR05", &a, &d, &t, "33612345678", "").replace(&d, &a);
    let r = hi1(&api, DOJ, &doubled).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.refusal().1.contains("created twice"), "{}", r.text);

    // Delivery destinations: https, or plain http to the local machine only, no credentials.
    let refused = api
        .app
        .pool
        .run(|conn| {
            let actor = Actor::new(ActorKind::System, "test");
            let mut out = Vec::new();
            for url in [
                "http://deliveries.example.org/hi1",
                "https://user:secret@deliveries.example.org/hi1",
                "ftp://deliveries.example.org/",
            ] {
                let id = identity(DOJ.iss, "ACTOR05", "us.subpoena", Some(url.into()));
                out.push(
                    writ::authority::set_etsi(conn, &actor, &id)
                        .unwrap_err()
                        .to_string(),
                );
            }
            let ok = identity(
                DOJ.iss,
                "ACTOR05",
                "us.subpoena",
                Some("https://deliveries.example.org/hi1".into()),
            );
            writ::authority::set_etsi(conn, &actor, &ok).unwrap();
            Ok::<_, writ::db::DbError>(out)
        })
        .await
        .unwrap();
    assert!(refused[0].contains("https"), "{refused:?}");
    assert!(refused[1].contains("credentials"), "{refused:?}");
    assert!(refused[2].contains("scheme"), "{refused:?}");

    // Every refused message is kept by hash and size, and audited.
    let kept: Vec<(String, i64, Option<Vec<u8>>)> = api
        .app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::etsi_messages;
            etsi_messages::table
                .filter(etsi_messages::status.eq("refused"))
                .select((
                    etsi_messages::body_sha256,
                    etsi_messages::size,
                    etsi_messages::body,
                ))
                .load(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 7, "{kept:?}");
    assert!(
        kept.iter()
            .all(|(h, n, b)| h.len() == 64 && *n > 0 && b.is_none())
    );
    let refs: Vec<(&str, &str)> = produced
        .iter()
        .map(|(n, x)| (n.as_str(), x.as_str()))
        .collect();
    assert_valid(&refs);
}

/// Approval puts the released order on the release queue, not into the ETSI tables; the
/// deliverer takes it off exactly once, however many instances pick up at the same moment.
async fn a_release_is_picked_up_for_delivery_exactly_once(backend: Backend) {
    use diesel::prelude::*;
    use writ::db::schema::{audit_entries, etsi_deliveries, release_queue};
    // The deliverer runs once at start-up, then not again during the test.
    let api = start_with(backend, None, "3600", &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let r = hi1(
        &api,
        DOJ,
        &subpoena("ACTOR05", &ids[0], &ids[1], &ids[2], "33612345678", ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let order = crate::access::order_of(&api.app, DOJ.iss).await;
    crate::access::release(&api.app, &order).await;

    let counts = |order: String| {
        move |conn: &mut writ::db::DbConn| {
            let queued: i64 = release_queue::table
                .filter(release_queue::order_id.eq(&order))
                .count()
                .get_result(conn)?;
            let deliveries: i64 = etsi_deliveries::table
                .filter(etsi_deliveries::order_id.eq(&order))
                .count()
                .get_result(conn)?;
            let entries: i64 = audit_entries::table
                .filter(audit_entries::order_id.eq(&order))
                .filter(audit_entries::event.eq("etsi.delivery_queued"))
                .count()
                .get_result(conn)?;
            Ok::<_, writ::db::DbError>((queued, deliveries, entries))
        }
    };
    let before = api.app.pool.run(counts(order.clone())).await.unwrap();
    assert_eq!(before, (1, 0, 0), "released, not yet picked up");

    let takers: Vec<_> = (0..4)
        .map(|_| {
            let pool = api.app.pool.clone();
            tokio::spawn(async move {
                pool.run(|conn| writ::etsi::deliver::take_released(conn, chrono::Utc::now()))
                    .await
            })
        })
        .collect();
    let mut taken = 0;
    for t in takers {
        taken += t.await.unwrap().unwrap();
    }
    assert_eq!(taken, 1, "one instance takes the release");
    let after = api.app.pool.run(counts(order.clone())).await.unwrap();
    assert_eq!(
        after,
        (0, 1, 1),
        "one delivery, queued once and audited once"
    );
}
