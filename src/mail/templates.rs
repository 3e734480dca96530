//! Subjects and bodies of notices, from the plain-text askama templates in `templates/email/`.
//!
//! Each template renders the subject on its first line, then a blank line, then the body: the
//! file reads like the e-mail it makes. Values that come from outside Writ (an authority's
//! reference, an instrument name, a refusal's reasons) are cleaned of control characters first,
//! so that none can break a header line or forge one.

use askama::Template;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{MailError, Notice};

/// Longest subject kept; a longer one is cut (at a character boundary) with an ellipsis.
const SUBJECT_MAX_CHARS: usize = 200;
/// Longest single-line value (reference, instrument, origin) put into a message.
const FIELD_MAX_CHARS: usize = 200;
/// Longest multi-line text (a refusal's reasons, a signed note) put into a message.
const TEXT_MAX_CHARS: usize = 20_000;

/// A rendered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body, ending with a newline.
    pub body: String,
}

#[derive(Template)]
#[template(path = "email/new_order.txt")]
struct NewOrder<'a> {
    order_id: &'a str,
    reference: &'a str,
    instrument: &'a str,
    emergency: bool,
    deadline: &'a str,
}

#[derive(Template)]
#[template(path = "email/deadline_reminder.txt")]
struct DeadlineReminder<'a> {
    order_id: &'a str,
    reference: &'a str,
    due: &'a str,
}

#[derive(Template)]
#[template(path = "email/task_reminder.txt")]
struct TaskReminder<'a> {
    order_id: &'a str,
    reference: &'a str,
    task: &'a str,
    due: &'a str,
}

#[derive(Template)]
#[template(path = "email/clarification_requested.txt")]
struct ClarificationRequested<'a> {
    order_id: &'a str,
    reference: &'a str,
}

#[derive(Template)]
#[template(path = "email/response_ready.txt")]
struct ResponseReady<'a> {
    order_id: &'a str,
    reference: &'a str,
}

#[derive(Template)]
#[template(path = "email/no_data_held.txt")]
struct NoDataHeld<'a> {
    order_id: &'a str,
    reference: &'a str,
    text: &'a str,
}

#[derive(Template)]
#[template(path = "email/refusal.txt")]
struct Refusal<'a> {
    order_id: &'a str,
    reference: &'a str,
    reason: &'a str,
}

#[derive(Template)]
#[template(path = "email/colleague_notice.txt")]
struct ColleagueNotice<'a> {
    order_id: &'a str,
    reference: &'a str,
    what: &'a str,
}

#[derive(Template)]
#[template(path = "email/checkpoint.txt")]
struct Checkpoint<'a> {
    origin: &'a str,
    size: u64,
    root_hash: &'a str,
    note: &'a str,
}

#[derive(Template)]
#[template(path = "email/audit_verification_failed.txt")]
struct AuditVerificationFailed<'a> {
    origin: &'a str,
    problem: &'a str,
}

/// Renders `notice` into its subject and body.
pub fn render(notice: &Notice) -> Result<Rendered, MailError> {
    let text = match notice {
        Notice::NewOrder {
            order_id,
            reference,
            instrument,
            emergency,
            deadline,
        } => NewOrder {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
            instrument: &one_line(instrument),
            emergency: *emergency,
            deadline: &deadline.map_or_else(|| "none given".to_owned(), |d| when(&d)),
        }
        .render(),
        Notice::DeadlineReminder {
            order_id,
            reference,
            due,
        } => DeadlineReminder {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
            due: &when(due),
        }
        .render(),
        Notice::TaskReminder {
            order_id,
            reference,
            task,
            due,
        } => TaskReminder {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
            task: &one_line(task),
            due: &when(due),
        }
        .render(),
        Notice::ClarificationRequested {
            order_id,
            reference,
        } => ClarificationRequested {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
        }
        .render(),
        Notice::ResponseReady {
            order_id,
            reference,
        } => ResponseReady {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
        }
        .render(),
        Notice::NoDataHeld {
            order_id,
            reference,
            text,
        } => NoDataHeld {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
            text: &text_block(text),
        }
        .render(),
        Notice::Refusal {
            order_id,
            reference,
            reason,
        } => Refusal {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
            reason: &text_block(reason),
        }
        .render(),
        Notice::Colleague {
            order_id,
            reference,
            what,
        } => ColleagueNotice {
            order_id: &one_line(order_id),
            reference: &one_line(reference),
            what: &one_line(what),
        }
        .render(),
        Notice::Checkpoint {
            origin,
            size,
            root_hash,
            note,
        } => Checkpoint {
            origin: &one_line(origin),
            size: *size,
            root_hash: &one_line(root_hash),
            note: &text_block(note),
        }
        .render(),
        Notice::AuditVerificationFailed { origin, problem } => AuditVerificationFailed {
            origin: &one_line(origin),
            problem: &text_block(problem),
        }
        .render(),
    }
    .map_err(|e| MailError::Template(e.to_string()))?;
    split(&text)
}

/// Splits a rendered template into its first line (the subject) and the rest (the body).
fn split(text: &str) -> Result<Rendered, MailError> {
    let (subject, body) = text.split_once("\n\n").ok_or_else(|| {
        MailError::Template("a template must start with `subject`, a blank line".into())
    })?;
    let subject = cut(&one_line(subject), SUBJECT_MAX_CHARS);
    if subject.is_empty() {
        return Err(MailError::Template("the rendered subject is empty".into()));
    }
    let mut body = body.trim_end().to_owned();
    body.push('\n');
    Ok(Rendered { subject, body })
}

/// A moment as shown in messages: `2026-12-01T12:00:00Z`.
fn when(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One line: control characters (line breaks included) become spaces, runs of spaces one.
fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(
        &cleaned.split_whitespace().collect::<Vec<_>>().join(" "),
        FIELD_MAX_CHARS,
    )
}

/// Several lines: line breaks normalised to `\n`, other control characters dropped (tabs
/// become spaces).
fn text_block(s: &str) -> String {
    let unified = s.replace("\r\n", "\n").replace('\r', "\n");
    let cleaned: String = unified
        .chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    cut(cleaned.trim_end(), TEXT_MAX_CHARS)
}

/// `s` cut to at most `max` characters, marked with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some(_) => {
            let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_the_subject_line() {
        let r = render(&Notice::ResponseReady {
            order_id: "o-1".into(),
            reference: "REF\r\nBcc: someone@example.org".into(),
        })
        .unwrap();
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
        assert!(r.subject.contains("REF Bcc:"), "{}", r.subject);
    }

    #[test]
    fn emergencies_are_marked_in_the_subject() {
        let notice = |emergency| Notice::NewOrder {
            order_id: "o-1".into(),
            reference: "PN-1".into(),
            instrument: "eu-epoc".into(),
            emergency,
            deadline: None,
        };
        let urgent = render(&notice(true)).unwrap();
        assert!(
            urgent.subject.starts_with("[EMERGENCY] "),
            "{}",
            urgent.subject
        );
        assert!(urgent.body.contains("/orders/o-1"), "{}", urgent.body);
        let normal = render(&notice(false)).unwrap();
        assert!(!normal.subject.contains("EMERGENCY"), "{}", normal.subject);
        assert!(!normal.body.contains("Emergency"), "{}", normal.body);
        assert!(
            normal.body.contains("Deadline:   none given"),
            "{}",
            normal.body
        );
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(500);
        assert_eq!(cut(&long, 10).chars().count(), 10);
        assert_eq!(one_line("a \t\n b"), "a b");
        assert_eq!(text_block("a\r\nb\u{7}\tc\n\n"), "a\nb c");
    }
}
