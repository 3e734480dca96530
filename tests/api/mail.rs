//! Outgoing e-mail through the outbox: notices reach exactly the right people over a real SMTP
//! exchange (a tiny SMTP server the tests run themselves), the file transport writes `.eml`
//! files, a failing relay is retried with backoff and then given up on, nobody is mailed when
//! there is nobody to mail, and concurrent senders never send a message twice.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use writ::audit::{Actor, ActorKind};
use writ::authority::NewAuthority;
use writ::db::schema::{mail_outbox, orders, target_holds};
use writ::db::{Db, DbConn, migrations, write_tx};
use writ::mail::{self, MailError, Notice, Recipients};
use writ::policy::IssuerKind;
use writ::settings::Settings;

use crate::both_backends;
use crate::helpers::{Backend, TestDb};

both_backends!(
    notices_reach_exactly_their_recipients_over_smtp,
    the_file_transport_writes_one_eml_file_per_message,
    a_failing_relay_is_retried_with_backoff_then_failed_and_retried_by_hand,
    nobody_is_mailed_when_there_is_nobody_to_mail,
    concurrent_senders_never_send_a_message_twice,
);

const PARIS: &str = "fr-parquet-paris";
const LYON: &str = "fr-police-lyon";
const PARIS_CONTACTS: [&str; 2] = ["parquet@justice.example", "greffe@justice.example"];
const LYON_CONTACT: &str = "police@lyon.example";
const LEGAL: [&str; 2] = ["legal@provider.example", "oncall@provider.example"];
const AUDITOR: &str = "auditor@audit.example";
/// A target identifier of the orders below: no message may ever contain it.
const TARGET: &str = "+33612345678";
const ORDER_A: &str = "0b4f8f2e-1111-4a55-9d0e-000000000001";
const ORDER_B: &str = "0b4f8f2e-1111-4a55-9d0e-000000000002";

// ---------------------------------------------------------------------------------------------
// A tiny SMTP server: enough of RFC 5321 for lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA,
// RSET, NOOP, QUIT), recording each envelope and its data.

/// One message as the server received it.
#[derive(Clone, Debug)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

impl Received {
    /// A header's value, unfolded.
    fn header(&self, name: &str) -> String {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} header in {}", self.data))
    }

    fn recipients(&self) -> BTreeSet<String> {
        self.rcpt_to.iter().cloned().collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    /// Answers every MAIL FROM with 554.
    Reject,
}

struct SmtpServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// MAIL FROM commands seen (attempts, accepted or not).
    attempts: Arc<AtomicUsize>,
}

impl SmtpServer {
    fn start(mode: Mode, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (r, a) = (received.clone(), attempts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (r, a) = (r.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = session(stream, mode, delay, &r, &a);
                });
            }
        });
        Self {
            port,
            received,
            attempts,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

fn session(
    stream: TcpStream,
    mode: Mode,
    delay: Duration,
    received: &Mutex<Vec<Received>>,
    attempts: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 mx.test.example ESMTP ready\r\n")?;
    let mut current: Option<Received> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let path = |c: &str| {
            c.split_once(':')
                .map(|(_, rest)| rest.trim())
                .and_then(|rest| rest.strip_prefix('<'))
                .and_then(|rest| rest.split_once('>'))
                .map(|(addr, _)| addr.to_owned())
                .unwrap_or_default()
        };
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 mx.test.example\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            attempts.fetch_add(1, Ordering::SeqCst);
            if mode == Mode::Reject {
                b"554 5.7.1 Relay access denied\r\n"
            } else {
                current = Some(Received {
                    mail_from: path(&command),
                    rcpt_to: Vec::new(),
                    data: String::new(),
                });
                b"250 2.1.0 Ok\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            match current.as_mut() {
                Some(m) => {
                    m.rcpt_to.push(path(&command));
                    b"250 2.1.5 Ok\r\n"
                }
                None => b"503 5.5.1 MAIL first\r\n",
            }
        } else if upper == "DATA" {
            let Some(mut m) = current.take() else {
                out.write_all(b"503 5.5.1 MAIL first\r\n")?;
                continue;
            };
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 §4.5.2).
                m.data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            std::thread::sleep(delay);
            received.lock().unwrap().push(m);
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper == "RSET" {
            current = None;
            b"250 2.0.0 Ok\r\n"
        } else if upper == "NOOP" {
            b"250 2.0.0 Ok\r\n"
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        out.write_all(reply)?;
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// Set-up.

/// A migrated database (no server: nothing else sends mail behind the test's back), the pool,
/// and settings with the legal team and auditors set.
fn setup(backend: Backend, extra: &[(&str, &str)]) -> (TestDb, Db, Settings) {
    let db = TestDb::new(backend);
    let mut settings = db.settings(extra);
    settings.mail.legal_team = LEGAL.iter().map(|s| s.to_string()).collect();
    settings.mail.auditors = vec![AUDITOR.to_owned()];
    let pool = Db::open(&settings.database).unwrap();
    migrations::run_pending(&mut pool.conn().unwrap()).unwrap();
    writ::audit::service::install_entry_key(&pool, &settings.audit, true).unwrap();
    (db, pool, settings)
}

fn smtp_settings(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("WRIT_MAIL__TRANSPORT", "smtp".into()),
        ("WRIT_MAIL__SMTP_HOST", "127.0.0.1".into()),
        ("WRIT_MAIL__SMTP_PORT", port.to_string()),
        ("WRIT_MAIL__FROM", "writ@provider.example".into()),
    ]
}

fn with_smtp(backend: Backend, port: u16, extra: &[(&str, &str)]) -> (TestDb, Db, Settings) {
    let vars = smtp_settings(port);
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    setup(backend, &all)
}

/// Registers Paris and Lyon, and two orders from Paris (A an emergency) holding TARGET.
fn seed(conn: &mut DbConn) {
    let actor = Actor::new(ActorKind::System, "test");
    for (id, kind, contacts) in [
        (PARIS, IssuerKind::Prosecutor, PARIS_CONTACTS.to_vec()),
        (LYON, IssuerKind::Police, vec![LYON_CONTACT]),
    ] {
        writ::authority::add(
            conn,
            &actor,
            &NewAuthority {
                id: id.into(),
                name: id.into(),
                country: "FR".into(),
                kind,
                contacts: contacts.iter().map(|s| s.to_string()).collect(),
            },
        )
        .unwrap();
    }
    let now = Utc::now().timestamp_micros();
    for (id, reference, emergency) in [
        (ORDER_A, "PN-2026-001", true),
        (ORDER_B, "PN-2026-002", false),
    ] {
        diesel::insert_into(orders::table)
            .values((
                orders::id.eq(id),
                orders::authority_id.eq(PARIS),
                orders::reference.eq(reference),
                orders::instrument.eq("eu-epoc"),
                orders::emergency.eq(emergency),
                orders::status.eq("under_review"),
                orders::version.eq(1),
                orders::outcome.eq("review"),
                orders::received_at.eq(now),
                orders::updated_at.eq(now),
            ))
            .execute(conn)
            .unwrap();
        diesel::insert_into(target_holds::table)
            .values((
                target_holds::order_id.eq(id),
                target_holds::target_kind.eq("phone"),
                target_holds::target_value.eq(TARGET),
                target_holds::categories.eq("subscriber"),
                target_holds::data_from.eq(0_i64),
                target_holds::data_to.eq(now),
                target_holds::created_at.eq(now),
            ))
            .execute(conn)
            .unwrap();
    }
}

fn new_order(order_id: &str, reference: &str, emergency: bool) -> Notice {
    Notice::NewOrder {
        order_id: order_id.into(),
        reference: reference.into(),
        instrument: "eu-epoc".into(),
        emergency,
        deadline: Some(
            DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
                .unwrap()
                .to_utc(),
        ),
    }
}

fn clarification(order_id: &str) -> Notice {
    Notice::ClarificationRequested {
        order_id: order_id.into(),
        reference: "PN-2026-001".into(),
    }
}

fn checkpoint() -> Notice {
    Notice::Checkpoint {
        origin: "writ.example/audit".into(),
        size: 42,
        root_hash: "3f1a".repeat(16),
        note: "writ.example/audit\n42\nPxo=\n\n— writ.example/audit AAAA\n".into(),
    }
}

fn row(conn: &mut DbConn, id: i64) -> mail::OutboxMessage {
    mail::list(conn, None, 1000)
        .unwrap()
        .into_iter()
        .find(|m| m.id == id)
        .unwrap()
}

fn set(strings: &[&str]) -> BTreeSet<String> {
    strings.iter().map(|s| s.to_string()).collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

// ---------------------------------------------------------------------------------------------

async fn notices_reach_exactly_their_recipients_over_smtp(backend: Backend) {
    let server = SmtpServer::start(Mode::Accept, Duration::ZERO);
    let (_db, pool, settings) = with_smtp(backend, server.port, &[]);
    let (received, ids) = blocking(move || {
        let mut conn = pool.conn().unwrap();
        seed(&mut conn);
        let now = Utc::now();
        let m = &settings.mail;
        // Queued inside the workflow step's own transaction, as the order workflow will.
        let ids = write_tx(&mut conn, |c| {
            let ids = [
                mail::enqueue(
                    c,
                    m,
                    Recipients::LegalTeam,
                    &new_order(ORDER_B, "PN-2026-002", false),
                    now,
                )?,
                mail::enqueue(
                    c,
                    m,
                    Recipients::LegalTeam,
                    &new_order(ORDER_A, "PN-2026-001", true),
                    now,
                )?,
                mail::enqueue(
                    c,
                    m,
                    Recipients::Authority(PARIS),
                    &clarification(ORDER_A),
                    now,
                )?,
                mail::enqueue(c, m, Recipients::Auditors, &checkpoint(), now)?,
            ];
            Ok::<_, MailError>(ids.map(Option::unwrap))
        })
        .unwrap();

        // What may not be queued: another authority's order, workspace notices to an
        // authority, authority notices to the legal team, unknown authorities or orders.
        let refused = [
            mail::enqueue(
                &mut conn,
                m,
                Recipients::Authority(LYON),
                &clarification(ORDER_A),
                now,
            ),
            mail::enqueue(
                &mut conn,
                m,
                Recipients::Authority(PARIS),
                &new_order(ORDER_A, "PN-2026-001", true),
                now,
            ),
            mail::enqueue(
                &mut conn,
                m,
                Recipients::Authority(PARIS),
                &checkpoint(),
                now,
            ),
            mail::enqueue(
                &mut conn,
                m,
                Recipients::LegalTeam,
                &Notice::ResponseReady {
                    order_id: ORDER_A.into(),
                    reference: "PN-2026-001".into(),
                },
                now,
            ),
            mail::enqueue(
                &mut conn,
                m,
                Recipients::Authority("nobody"),
                &clarification(ORDER_A),
                now,
            ),
            mail::enqueue(
                &mut conn,
                m,
                Recipients::Authority(PARIS),
                &clarification("no-such-order"),
                now,
            ),
        ];
        for r in refused {
            let err = r.unwrap_err();
            assert!(
                matches!(err, MailError::WrongRecipients(_) | MailError::NotFound(_)),
                "{err:?}"
            );
        }
        assert_eq!(mail::list(&mut conn, None, 100).unwrap().len(), 4);

        let report = mail::send_due(&mut conn, m, now).unwrap();
        assert_eq!(
            (report.claimed, report.sent, report.failed),
            (4, 4, 0),
            "{report:?}"
        );
        // Nothing is sent twice.
        let again = mail::send_due(&mut conn, m, now + TimeDelta::hours(1)).unwrap();
        assert_eq!(again.claimed, 0);

        let sent = mail::list(&mut conn, Some("sent"), 100).unwrap();
        assert_eq!(sent.len(), 4);
        assert!(
            sent.iter()
                .all(|m| m.sent_at.is_some() && m.attempts == 1 && m.last_error.is_none())
        );
        // Emergencies are listed first.
        assert_eq!(sent[0].id, ids[1]);
        assert!(sent[0].urgent);
        (server.received(), ids)
    })
    .await;

    assert_eq!(received.len(), 4, "{received:#?}");
    for r in &received {
        assert_eq!(r.mail_from, "writ@provider.example");
        assert!(
            !r.data.contains(TARGET),
            "a target identifier in {}",
            r.data
        );
        assert!(!r.data.contains("33612345678"), "{}", r.data);
        assert!(
            r.data.contains("Auto-Submitted: auto-generated"),
            "{}",
            r.data
        );
    }
    // The emergency went first, although queued second.
    let first = &received[0];
    assert!(
        first
            .header("Subject")
            .starts_with("[EMERGENCY] Writ: new order PN-2026-001"),
        "{}",
        first.header("Subject")
    );
    assert!(
        first
            .header("Message-ID")
            .starts_with(&format!("<writ.mail.{}.", ids[1]))
    );
    assert_eq!(first.recipients(), set(&LEGAL));
    assert!(
        first.data.contains(&format!("/orders/{ORDER_A}")),
        "{}",
        first.data
    );

    let by_subject = |prefix: &str| {
        let found: Vec<&Received> = received
            .iter()
            .filter(|r| r.header("Subject").starts_with(prefix))
            .collect();
        assert_eq!(found.len(), 1, "{prefix}: {received:#?}");
        found[0]
    };
    let normal = by_subject("Writ: new order PN-2026-002");
    assert_eq!(normal.recipients(), set(&LEGAL));
    assert!(!normal.data.contains("EMERGENCY"));

    let to_paris = by_subject("Clarification requested on your order PN-2026-001");
    // The authority's registered contacts, and nobody else.
    assert_eq!(to_paris.recipients(), set(&PARIS_CONTACTS));
    assert!(
        to_paris
            .data
            .contains(&format!("GET /api/v1/orders/{ORDER_A}/messages")),
        "{}",
        to_paris.data
    );
    assert!(
        !to_paris
            .data
            .contains("/orders/0b4f8f2e-1111-4a55-9d0e-000000000002")
    );

    let to_auditors = by_subject("Writ audit checkpoint: writ.example/audit at size 42");
    assert_eq!(to_auditors.recipients(), set(&[AUDITOR]));

    // No message reached an address that was not meant for it.
    let everyone: BTreeSet<String> = received.iter().flat_map(|r| r.recipients()).collect();
    assert!(!everyone.contains(LYON_CONTACT));
}

async fn the_file_transport_writes_one_eml_file_per_message(backend: Backend) {
    let (db, pool, settings) = setup(backend, &[]);
    let outbox = settings.mail.outbox_dir.clone();
    assert!(outbox.starts_with(db.dir()));
    assert!(!outbox.exists());
    let (pool, ids) = blocking(move || {
        let mut conn = pool.conn().unwrap();
        seed(&mut conn);
        let now = Utc::now();
        let m = &settings.mail;
        let a = mail::enqueue(
            &mut conn,
            m,
            Recipients::LegalTeam,
            &new_order(ORDER_A, "PN-2026-001", true),
            now,
        )
        .unwrap()
        .unwrap();
        let b = mail::enqueue(
            &mut conn,
            m,
            Recipients::Authority(PARIS),
            &Notice::Refusal {
                order_id: ORDER_B.into(),
                reference: "PN-2026-002".into(),
                reason: "The order does not state the offence it concerns.\nNo data is released."
                    .into(),
            },
            now,
        )
        .unwrap()
        .unwrap();
        let report = mail::send_due(&mut conn, m, now).unwrap();
        assert_eq!(report.sent, 2, "{report:?}");
        (pool, [a, b])
    })
    .await;

    let mut names: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![format!("{}.eml", ids[0]), format!("{}.eml", ids[1])];
    expected.sort();
    assert_eq!(
        names, expected,
        "one file per message and no temporary file left"
    );

    let urgent = std::fs::read_to_string(outbox.join(format!("{}.eml", ids[0]))).unwrap();
    assert!(
        urgent.contains("\r\nSubject: [EMERGENCY] Writ: new order PN-2026-001"),
        "{urgent}"
    );
    assert!(
        urgent.contains("legal@provider.example") && urgent.contains("oncall@provider.example")
    );
    assert!(urgent.contains("From: writ@localhost"), "{urgent}");
    assert!(
        urgent.contains(&format!("Message-ID: <writ.mail.{}.", ids[0])),
        "{urgent}"
    );
    let refusal = std::fs::read_to_string(outbox.join(format!("{}.eml", ids[1]))).unwrap();
    assert!(
        refusal.contains("Subject: Your order PN-2026-002 cannot be complied with"),
        "{refusal}"
    );
    assert!(
        refusal.contains("parquet@justice.example") && refusal.contains("greffe@justice.example")
    );
    assert!(refusal.contains("does not state the offence"), "{refusal}");
    assert!(!refusal.contains("legal@provider.example"));
    for text in [&urgent, &refusal] {
        assert!(!text.contains(TARGET));
    }

    // The background job sends what is queued later, on its own.
    let mut settings = db.settings(&[]);
    settings.mail.legal_team = vec![LEGAL[0].to_owned()];
    let job = tokio::spawn(mail::run_sender(
        pool.clone(),
        settings.mail.clone(),
        Duration::from_millis(100),
    ));
    let id = pool
        .run(move |c| {
            mail::enqueue(
                c,
                &settings.mail,
                Recipients::LegalTeam,
                &new_order(ORDER_B, "PN-2026-002", false),
                Utc::now(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    let file = outbox.join(format!("{id}.eml"));
    for _ in 0..100 {
        if file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    job.abort();
    let text = std::fs::read_to_string(&file).expect("the sender job wrote the message");
    assert!(
        text.contains("Subject: Writ: new order PN-2026-002"),
        "{text}"
    );
}

async fn a_failing_relay_is_retried_with_backoff_then_failed_and_retried_by_hand(backend: Backend) {
    let refusing = SmtpServer::start(Mode::Reject, Duration::ZERO);
    let (_db, pool, mut settings) = with_smtp(
        backend,
        refusing.port,
        &[
            ("WRIT_MAIL__MAX_ATTEMPTS", "3"),
            ("WRIT_MAIL__RETRY_BACKOFF_SECS", "60"),
        ],
    );
    blocking(move || {
        let mut conn = pool.conn().unwrap();
        seed(&mut conn);
        let t0 = Utc::now();
        let micros = |t: DateTime<Utc>| t.timestamp_micros();
        // The workflow step commits even though the relay refuses everything.
        let id = write_tx(&mut conn, |c| {
            diesel::update(orders::table.find(ORDER_A))
                .set(orders::status.eq("awaiting_clarification"))
                .execute(c)?;
            mail::enqueue(
                c,
                &settings.mail,
                Recipients::Authority(PARIS),
                &clarification(ORDER_A),
                t0,
            )
        })
        .unwrap()
        .unwrap();

        // Attempt 1 fails: queued again, due after the backoff.
        let r = mail::send_due(&mut conn, &settings.mail, t0).unwrap();
        assert_eq!((r.claimed, r.retrying, r.failed), (1, 1, 0), "{r:?}");
        let m = row(&mut conn, id);
        assert_eq!((m.status.as_str(), m.attempts), ("queued", 1));
        assert_eq!(m.next_attempt_at, micros(t0 + TimeDelta::seconds(60)));
        let error = m.last_error.clone().unwrap();
        assert!(error.contains("554"), "{error}");
        assert!(
            !error.contains("question") && !error.contains("/api/v1"),
            "{error}"
        );
        let status: String = orders::table
            .find(ORDER_A)
            .select(orders::status)
            .first(&mut conn)
            .unwrap();
        assert_eq!(status, "awaiting_clarification");

        // Not due before the backoff ends.
        let r = mail::send_due(&mut conn, &settings.mail, t0 + TimeDelta::seconds(59)).unwrap();
        assert_eq!(r.claimed, 0);
        // Attempt 2: the delay doubles.
        let t1 = t0 + TimeDelta::seconds(60);
        mail::send_due(&mut conn, &settings.mail, t1).unwrap();
        let m = row(&mut conn, id);
        assert_eq!((m.status.as_str(), m.attempts), ("queued", 2));
        assert_eq!(m.next_attempt_at, micros(t1 + TimeDelta::seconds(120)));
        // Attempt 3 is the last: failed, and left alone afterwards.
        let t2 = t1 + TimeDelta::seconds(120);
        let r = mail::send_due(&mut conn, &settings.mail, t2).unwrap();
        assert_eq!((r.claimed, r.failed), (1, 1), "{r:?}");
        let m = row(&mut conn, id);
        assert_eq!((m.status.as_str(), m.attempts), ("failed", 3));
        assert!(m.sent_at.is_none());
        let r = mail::send_due(&mut conn, &settings.mail, t2 + TimeDelta::days(30)).unwrap();
        assert_eq!(r.claimed, 0);
        assert_eq!(refusing.attempts(), 3);
        assert!(refusing.received().is_empty());
        assert_eq!(mail::list(&mut conn, Some("failed"), 10).unwrap().len(), 1);

        // Retried by hand: queued, due now, with its attempts reset; only failed ones can be.
        let t3 = t2 + TimeDelta::hours(1);
        mail::retry(&mut conn, &writ::audit::Actor::system(), id, t3).unwrap();
        // The retry is audited with it, once (the refused retries below write nothing).
        let retried = |conn: &mut writ::db::DbConn| {
            writ::audit::log::entries(conn, 0, 100_000)
                .unwrap()
                .iter()
                .filter(|e| e.event == "mail.retried")
                .count()
        };
        assert_eq!(retried(&mut conn), 1);
        let m = row(&mut conn, id);
        assert_eq!(
            (m.status.as_str(), m.attempts, m.next_attempt_at),
            ("queued", 0, micros(t3))
        );
        assert!(matches!(
            mail::retry(&mut conn, &writ::audit::Actor::system(), id, t3),
            Err(MailError::Conflict(_))
        ));
        assert!(matches!(
            mail::retry(&mut conn, &writ::audit::Actor::system(), 999_999, t3),
            Err(MailError::NotFound(_))
        ));
        assert_eq!(retried(&mut conn), 1);
        assert!(matches!(
            mail::list(&mut conn, Some("lost"), 10),
            Err(MailError::Invalid(_))
        ));

        // A relay that is not there at all: a connection error, retried.
        settings.mail.smtp_port = closed_port();
        let r = mail::send_due(&mut conn, &settings.mail, t3).unwrap();
        assert_eq!(r.retrying, 1, "{r:?}");
        let m = row(&mut conn, id);
        assert_eq!((m.status.as_str(), m.attempts), ("queued", 1));
        assert!(m.last_error.is_some());

        // The relay is back: the message goes out, once.
        let working = SmtpServer::start(Mode::Accept, Duration::ZERO);
        settings.mail.smtp_port = working.port;
        let t4 = t3 + TimeDelta::seconds(60);
        let r = mail::send_due(&mut conn, &settings.mail, t4).unwrap();
        assert_eq!(r.sent, 1, "{r:?}");
        let m = row(&mut conn, id);
        assert_eq!((m.status.as_str(), m.attempts), ("sent", 2));
        assert_eq!(m.sent_at, Some(micros(t4)));
        assert!(m.last_error.is_none());
        assert_eq!(working.received().len(), 1);
        assert_eq!(working.received()[0].recipients(), set(&PARIS_CONTACTS));

        // A sender that died mid-delivery: its lease expires and another sender takes the
        // message over; with its attempts used up, it is marked failed instead.
        let again = mail::enqueue(
            &mut conn,
            &settings.mail,
            Recipients::Auditors,
            &checkpoint(),
            t4,
        )
        .unwrap()
        .unwrap();
        let stuck = mail::enqueue(
            &mut conn,
            &settings.mail,
            Recipients::Auditors,
            &checkpoint(),
            t4,
        )
        .unwrap()
        .unwrap();
        for (id, attempts) in [(again, 1), (stuck, 3)] {
            diesel::update(mail_outbox::table.find(id))
                .set((
                    mail_outbox::status.eq("sending"),
                    mail_outbox::attempts.eq(attempts),
                    mail_outbox::next_attempt_at.eq(micros(t4 + TimeDelta::minutes(15))),
                ))
                .execute(&mut conn)
                .unwrap();
        }
        // Leased: left alone.
        let r = mail::send_due(&mut conn, &settings.mail, t4 + TimeDelta::minutes(1)).unwrap();
        assert_eq!(r.claimed + r.failed, 0, "{r:?}");
        // Lease over.
        let r = mail::send_due(&mut conn, &settings.mail, t4 + TimeDelta::minutes(16)).unwrap();
        assert_eq!((r.sent, r.failed), (1, 1), "{r:?}");
        assert_eq!(row(&mut conn, again).status, "sent");
        let m = row(&mut conn, stuck);
        assert_eq!(m.status, "failed");
        assert!(m.last_error.unwrap().contains("lease"));
        assert_eq!(working.received().len(), 2);
    })
    .await;
}

async fn nobody_is_mailed_when_there_is_nobody_to_mail(backend: Backend) {
    let server = SmtpServer::start(Mode::Accept, Duration::ZERO);
    let (_db, pool, mut settings) = with_smtp(backend, server.port, &[]);
    blocking(move || {
        let mut conn = pool.conn().unwrap();
        seed(&mut conn);
        let now = Utc::now();
        let actor = Actor::new(ActorKind::System, "test");

        // No legal team, no auditors configured (the defaults): nothing is queued.
        let mut empty = settings.mail.clone();
        empty.legal_team.clear();
        empty.auditors.clear();
        let notice = new_order(ORDER_A, "PN-2026-001", true);
        assert_eq!(
            mail::enqueue(&mut conn, &empty, Recipients::LegalTeam, &notice, now).unwrap(),
            None
        );
        assert_eq!(
            mail::enqueue(&mut conn, &empty, Recipients::Auditors, &checkpoint(), now).unwrap(),
            None
        );

        // A suspended authority gets nothing; reactivated, it does.
        writ::authority::set_active(&mut conn, &actor, PARIS, false).unwrap();
        for notice in [
            clarification(ORDER_A),
            Notice::ResponseReady {
                order_id: ORDER_A.into(),
                reference: "PN-2026-001".into(),
            },
        ] {
            let queued = mail::enqueue(
                &mut conn,
                &settings.mail,
                Recipients::Authority(PARIS),
                &notice,
                now,
            );
            assert_eq!(queued.unwrap(), None);
        }
        assert!(mail::list(&mut conn, None, 100).unwrap().is_empty());
        assert_eq!(
            mail::send_due(&mut conn, &settings.mail, now)
                .unwrap()
                .claimed,
            0
        );

        writ::authority::set_active(&mut conn, &actor, PARIS, true).unwrap();
        assert!(
            mail::enqueue(
                &mut conn,
                &settings.mail,
                Recipients::Authority(PARIS),
                &clarification(ORDER_A),
                now
            )
            .unwrap()
            .is_some()
        );

        // A configured address that is not one is refused, without echoing it.
        settings.mail.legal_team = vec!["legal@provider.example".into(), "not an address".into()];
        let err = mail::enqueue(
            &mut conn,
            &settings.mail,
            Recipients::LegalTeam,
            &notice,
            now,
        )
        .unwrap_err();
        assert!(matches!(err, MailError::InvalidAddress(_)), "{err:?}");
        assert!(err.to_string().contains("mail.legal_team") && !err.to_string().contains("not an"));

        // send_due refuses to run inside a transaction (it must commit its claims first).
        let inside = write_tx(&mut conn, |c| mail::send_due(c, &settings.mail, now));
        assert!(
            matches!(inside, Err(MailError::InTransaction)),
            "{inside:?}"
        );

        let r = mail::send_due(&mut conn, &settings.mail, now).unwrap();
        assert_eq!(r.sent, 1);
        assert_eq!(server.received().len(), 1);
        assert_eq!(server.received()[0].recipients(), set(&PARIS_CONTACTS));
    })
    .await;
}

async fn concurrent_senders_never_send_a_message_twice(backend: Backend) {
    const MESSAGES: usize = 24;
    const SENDERS: usize = 4;
    // A slow relay, so that the senders overlap.
    let server = SmtpServer::start(Mode::Accept, Duration::from_millis(25));
    let (_db, pool, settings) = with_smtp(backend, server.port, &[]);
    let now = Utc::now();
    let ids: Vec<i64> = {
        let (pool, settings) = (pool.clone(), settings.clone());
        blocking(move || {
            let mut conn = pool.conn().unwrap();
            seed(&mut conn);
            (0..MESSAGES)
                .map(|i| {
                    let notice = new_order(ORDER_A, &format!("PN-{i:03}"), i % 5 == 0);
                    mail::enqueue(
                        &mut conn,
                        &settings.mail,
                        Recipients::LegalTeam,
                        &notice,
                        now,
                    )
                    .unwrap()
                    .unwrap()
                })
                .collect()
        })
        .await
    };

    let barrier = Arc::new(Barrier::new(SENDERS));
    let workers: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (pool, settings, barrier) = (pool.clone(), settings.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut conn = pool.conn().unwrap();
                barrier.wait();
                let mut total = mail::SendReport::default();
                // Each sender keeps going until nothing is due, like the job does.
                loop {
                    let r = mail::send_due(&mut conn, &settings.mail, now).unwrap();
                    total.claimed += r.claimed;
                    total.sent += r.sent;
                    if r.claimed == 0 {
                        return total;
                    }
                }
            })
        })
        .collect();
    let reports: Vec<mail::SendReport> =
        blocking(move || workers.into_iter().map(|w| w.join().unwrap()).collect()).await;

    assert_eq!(
        reports.iter().map(|r| r.sent).sum::<usize>(),
        MESSAGES,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.claimed).sum::<usize>(),
        MESSAGES,
        "{reports:?}"
    );
    // The senders overlapped: claims are short, delivery happens outside the transaction.
    assert!(
        reports.iter().filter(|r| r.sent > 0).count() >= 2,
        "{reports:?}"
    );
    let received = server.received();
    assert_eq!(received.len(), MESSAGES);
    let message_ids: BTreeSet<String> = received.iter().map(|r| r.header("Message-ID")).collect();
    assert_eq!(message_ids.len(), MESSAGES, "a message was sent twice");
    let expected: BTreeSet<String> = ids
        .iter()
        .map(|id| {
            format!(
                "<writ.mail.{id}.{}@provider.example>",
                now.timestamp_micros()
            )
        })
        .collect();
    assert_eq!(message_ids, expected);
    let sent =
        blocking(move || mail::list(&mut pool.conn().unwrap(), Some("sent"), 1000).unwrap()).await;
    assert_eq!(sent.len(), MESSAGES);
    assert!(sent.iter().all(|m| m.attempts == 1));
}
