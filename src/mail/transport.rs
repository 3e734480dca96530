//! How a message leaves Writ: an RFC 5322 file in the outbox folder, or an SMTP relay.
//!
//! Errors here are short, one line, and never carry the message body: they are stored as the
//! message's `last_error` and shown in the workspace. Only their [`Failure::class`] is logged.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};

use super::OutboxMessage;
use crate::settings::{MailSettings, MailTransport, SmtpSecurity};

/// How long one SMTP network operation (connect, a command, its reply) may take.
pub(super) const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest stored error text.
const ERROR_MAX_CHARS: usize = 250;

/// Why one delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// A class safe to log (no address, no server text): `smtp-permanent`, `io`, ...
    pub class: &'static str,
    /// One short line for `last_error`.
    pub detail: String,
    /// Retrying cannot help (the stored message itself is unusable).
    pub permanent: bool,
}

impl Failure {
    fn new(class: &'static str, detail: impl std::fmt::Display) -> Self {
        let detail: String = detail
            .to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(ERROR_MAX_CHARS)
            .collect();
        Self {
            class,
            detail,
            permanent: false,
        }
    }
}

/// The open transport of one sending run: SMTP connections are reused across its messages.
pub(super) enum Sender {
    /// `.eml` files in this folder.
    File(std::path::PathBuf),
    /// An SMTP relay (a pooled client).
    Smtp(Box<SmtpTransport>),
}

impl Sender {
    /// Opens the configured transport. Nothing touches the network yet.
    pub fn open(settings: &MailSettings) -> Result<Self, Failure> {
        match settings.transport {
            MailTransport::File => Ok(Self::File(settings.outbox_dir.clone())),
            MailTransport::Smtp => {
                let host = settings.smtp_host.trim();
                let builder = match settings.smtp_security {
                    SmtpSecurity::None => SmtpTransport::builder_dangerous(host),
                    SmtpSecurity::Starttls => SmtpTransport::starttls_relay(host)
                        .map_err(|e| Failure::new("smtp-setup", format!("STARTTLS setup: {e}")))?,
                    SmtpSecurity::Tls => SmtpTransport::relay(host)
                        .map_err(|e| Failure::new("smtp-setup", format!("TLS setup: {e}")))?,
                };
                let mut builder = builder.port(settings.smtp_port).timeout(Some(SMTP_TIMEOUT));
                if !settings.smtp_username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        settings.smtp_username.clone(),
                        settings.smtp_password.expose().to_owned(),
                    ));
                }
                Ok(Self::Smtp(Box::new(builder.build())))
            }
        }
    }

    /// The sender kept in `slot`, opened on first use (a run that finds nothing due opens no
    /// connection).
    pub fn reuse<'a>(
        slot: &'a mut Option<Self>,
        settings: &MailSettings,
    ) -> Result<&'a Self, Failure> {
        if slot.is_none() {
            *slot = Some(Self::open(settings)?);
        }
        slot.as_ref()
            .ok_or_else(|| Failure::new("internal", "no transport"))
    }

    /// Delivers one message.
    pub fn deliver(&self, from: &Mailbox, msg: &OutboxMessage) -> Result<(), Failure> {
        let email = build(from, msg)?;
        match self {
            Self::File(dir) => write_eml(dir, msg.id, &email.formatted()),
            Self::Smtp(transport) => transport
                .send(&email)
                .map(|_| ())
                .map_err(|e| smtp_failure(&e)),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Says QUIT on pooled connections now rather than leaving them to the pool's thread.
        if let Self::Smtp(transport) = self {
            transport.shutdown();
        }
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834 §5): no vacation replies to Writ's notices.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// The RFC 5322 message for an outbox row. Its Message-ID is derived from the row, so a
/// message sent twice (a sender that stopped after sending, before recording it) carries the
/// same id both times and receivers can tell.
fn build(from: &Mailbox, msg: &OutboxMessage) -> Result<Message, Failure> {
    let domain = from.email.domain();
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(msg.subject.clone())
        .message_id(Some(format!(
            "<writ.mail.{}.{}@{domain}>",
            msg.id, msg.created_at
        )))
        .header(ContentType::TEXT_PLAIN)
        .header(AutoSubmitted);
    for address in msg.recipients.split(',').filter(|a| !a.trim().is_empty()) {
        let to: Mailbox = address.trim().parse().map_err(|_| Failure {
            permanent: true,
            ..Failure::new("bad-recipient", "a stored recipient is not a valid address")
        })?;
        builder = builder.to(to);
    }
    builder.body(msg.body.clone()).map_err(|e| Failure {
        permanent: true,
        ..Failure::new("bad-message", format!("cannot build the message: {e}"))
    })
}

/// Writes `bytes` as `<dir>/<id>.eml`: to a temporary file in the same folder, flushed to
/// disk, then renamed, so a reader of the folder never sees half a message.
fn write_eml(dir: &Path, id: i64, bytes: &[u8]) -> Result<(), Failure> {
    let io = |what: &str, e: std::io::Error| Failure::new("io", format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the outbox folder", e))?;
    let tmp = dir.join(format!(".{id}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let target = dir.join(format!("{id}.eml"));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            // Messages name their recipients: readable by Writ's user only.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("cannot write the message file", e));
    }
    Ok(())
}

fn smtp_failure(e: &lettre::transport::smtp::Error) -> Failure {
    let class = if e.is_permanent() {
        "smtp-permanent"
    } else if e.is_transient() {
        "smtp-transient"
    } else if e.is_timeout() {
        "smtp-timeout"
    } else if e.is_tls() {
        "smtp-tls"
    } else {
        "smtp-connection"
    };
    let code = e.status().map(|c| format!(" {c}")).unwrap_or_default();
    Failure::new(class, format!("SMTP{code}: {e}"))
}
