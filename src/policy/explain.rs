//! Plain-language explanation of a decision, for lawyers and reviewers.

use super::catalogue::describe;
use super::decision::{Decision, FieldStatus, Outcome};
use std::fmt::Write;

fn status_words(status: FieldStatus) -> &'static str {
    match status {
        FieldStatus::Permit => "PERMITTED",
        FieldStatus::PermitPendingValidationCheck => "PERMITTED ONLY AFTER A VALIDATION CHECK",
        FieldStatus::Preserve => "PRESERVE (no release)",
        FieldStatus::Deny => "DENIED",
        FieldStatus::NotHeld => "NOT HELD",
    }
}

fn cite(citation: &Option<String>) -> String {
    citation
        .as_deref()
        .map(|c| format!(" [{c}]"))
        .unwrap_or_default()
}

impl Decision {
    /// The decision in plain language, with a citation for every conclusion and every time in UTC.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "Order {} under {}{}",
            self.order_reference,
            self.instrument_name.as_deref().unwrap_or(&self.instrument),
            cite(&self.instrument_citation)
        );
        let _ = writeln!(
            out,
            "Received {}; decided {}; policy set {}.",
            self.received_at.format("%Y-%m-%d %H:%M UTC"),
            self.decided_at.format("%Y-%m-%d %H:%M UTC"),
            self.policy_set_id
        );
        let outcome = match self.outcome {
            Outcome::AcceptableForReview => {
                "ACCEPTABLE FOR REVIEW: the granted data may go to two-person approval."
            }
            Outcome::NeedsHumanJudgement => "NEEDS HUMAN JUDGEMENT before anything is released.",
            Outcome::ClarificationNeeded => {
                "CLARIFICATION NEEDED: ask the authority to complete the order; nothing is released meanwhile."
            }
            Outcome::Refused => "REFUSED: nothing may be released.",
        };
        if !self.inputs.is_empty() {
            let _ = writeln!(out, "\nStated inputs:");
            for i in &self.inputs {
                let _ = writeln!(out, "- {i}");
            }
        }
        let _ = writeln!(out, "\nOutcome: {outcome}");
        if let Some(c) = &self.clarification {
            let _ = writeln!(
                out,
                "  Missing: {}. {} [{}]",
                c.missing.join(", "),
                c.text,
                c.citation
            );
        }
        for r in &self.refusals {
            let _ = writeln!(
                out,
                "  Refusal ({:?}): {}{}",
                r.code,
                r.text,
                cite(&r.citation)
            );
        }
        for f in &self.review_flags {
            let _ = writeln!(
                out,
                "  For judgement ({:?}): {}{}",
                f.code,
                f.text,
                cite(&f.citation)
            );
        }
        if let Some(b) = &self.binding {
            let _ = writeln!(out, "\nBinding: {} [{}]", b.text, b.citation);
        }
        if !self.narrowing.is_empty() {
            let _ = writeln!(out, "Narrowed by reviewers: {}", self.narrowing.join("; "));
        }
        let _ = writeln!(out, "\nRequested data:");
        for c in &self.categories {
            let _ = writeln!(
                out,
                "- {}: {}. {}{}",
                c.category,
                status_words(c.status),
                c.text,
                cite(&c.citation)
            );
            for f in &c.fields {
                let _ = writeln!(
                    out,
                    "    - {} ({}): {}. {}{}",
                    f.field,
                    describe(f.field),
                    status_words(f.status),
                    f.text,
                    cite(&f.citation)
                );
            }
        }
        let _ = writeln!(out, "\nTimes (UTC):");
        if let Some(d) = &self.deadline {
            let _ = writeln!(out, "- Deadline: {}{}", d.text, cite(&d.citation));
        }
        if let Some(r) = &self.earliest_release {
            let _ = writeln!(
                out,
                "- Earliest release: {}. {}{}",
                r.earliest.format("%Y-%m-%d %H:%M UTC"),
                r.text,
                cite(&r.citation)
            );
        }
        if let Some(v) = &self.validation_due {
            let _ = writeln!(out, "- Validation due: {} [{}]", v.text, v.citation);
        }
        if let Some(p) = &self.preservation {
            let _ = writeln!(out, "- Preservation: {} [{}]", p.text, p.citation);
        }
        for f in &self.follow_ups {
            let _ = writeln!(out, "- Follow-up task: {} [{}]", f.text, f.citation);
        }
        let _ = writeln!(out, "\nInforming the user:");
        for n in &self.user_notice {
            let _ = writeln!(out, "- {} [{}]", n.text, n.citation);
        }
        if let Some(g) = &self.gag {
            let ends = match g.ends {
                super::order::NonDisclosureEnd::Until(t) => {
                    format!("ends {}", t.format("%Y-%m-%d %H:%M UTC"))
                }
                super::order::NonDisclosureEnd::OpenEnded => {
                    "is open-ended (runs until lifted)".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "- Non-disclosure order{}: {ends}; {} at decision time.",
                g.legal_basis
                    .as_deref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default(),
                if g.active_at_decision {
                    "running"
                } else {
                    "ended"
                }
            );
        }
        if !self.duties.is_empty() {
            let _ = writeln!(out, "\nOther duties:");
            for d in &self.duties {
                let _ = writeln!(out, "- {} [{}]", d.text, d.citation);
            }
        }
        if !self.objections.is_empty() {
            let _ = writeln!(out, "\nObjections the legal team may choose instead:");
            for o in &self.objections {
                let _ = writeln!(out, "- {}: {} [{}]", o.code, o.text, o.citation);
            }
        }
        if !self.caveats.is_empty() {
            let _ = writeln!(out, "\nOpen questions (see docs/legal/):");
            for c in &self.caveats {
                let _ = writeln!(out, "- {c}");
            }
        }
        out
    }
}
