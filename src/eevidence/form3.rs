//! Form 3 (Regulation (EU) 2023/1543, Annex III): the provider cannot comply, or objects. What
//! goes out with `nonexecution`: the structured [`Information`] (JSON), the form rendered as a
//! PDF from the English template ([`render`]), and a detached signature of each by Writ's
//! package key ([`sign`]).
//!
//! The signature is a raw Ed25519 signature (RFC 8032, section 5.1.6) over the exact bytes of
//! the file, by the key whose public half `/packages/public-key` serves: anyone can check it
//! offline with that key (`openssl pkeyutl -verify -pubin -inkey writ-package.pem -rawin -in
//! Form3.pdf -sigfile Form3.pdf.sig`, README "EU e-Evidence"). It is an advanced signature of
//! the provider's system, not a qualified electronic signature: a QES is the deployment's
//! business.
//!
//! The PDF is written with `pdf-writer` (a small, dependency-light writer): PDF 1.7, A4, the
//! standard Helvetica font in WinAnsi encoding (no font embedded), uncompressed. Only an
//! English template exists; the order's language is not carried by the EPOC as Writ reads it.
// EEVIDENCE.md [T?]: check against TS 104 144 (the schema of Form3Information (CR002) is not
// public: the field names below are Writ's; Annex III's boxes are the Regulation's).

use crate::keystore::KeyError;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// The structured Form 3 for one task (`Form3Information`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Information {
    /// The issuing authority's authorisation object (the EPOC or EPOC-PR).
    pub authorisation: Option<String>,
    /// The task the form answers.
    pub task: String,
    /// The order's reference as the issuing authority gave it.
    pub reference: Option<String>,
    /// EPOC or EPOC-PR.
    pub order_kind: String,
    /// The provider (Writ's HI-1 identity, `CC/ID`).
    pub provider: String,
    /// The reason code (`Form3Reason`).
    pub reason: String,
    /// The reason in words, with the article it rests on.
    pub reason_text: String,
    /// The legal team's explanation.
    pub explanation: String,
    /// Whether the data asked for are preserved (Annex III asks for it per identifier).
    pub data_preserved: bool,
    /// When the form was issued (RFC 3339).
    pub issued_at: String,
}

impl Information {
    /// The JSON sent as the `Form3Information` document.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and a bool always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The reason in words, with the article it rests on (Annex III, section D).
pub fn reason_text(reason: &str) -> &'static str {
    match reason {
        "Incomplete" => "The order is incomplete (Art 10(6)).",
        "ManifestErrors" => "The order contains manifest errors (Art 10(6)).",
        "InsufficientInformation" => {
            "The order does not contain sufficient information to execute it (Art 10(6))."
        }
        "DataNotHeld" => "The data requested are not held by the provider (Art 10(7)).",
        "DeFactoImpossibility" => {
            "Execution is impossible de facto, for reasons not attributable to the provider (Art 10(7))."
        }
        "InvalidIssuingAuthority" => {
            "The order was not issued or validated by a competent issuing authority (Art 10(8))."
        }
        "OffenceNotCovered" => {
            "The order was not issued for an offence the Regulation provides for (Art 10(8))."
        }
        "ServiceNotCovered" => "The service is not covered by the Regulation (Art 10(8)).",
        "ImmunitiesOrPrivileges" => {
            "The data are protected by immunities or privileges, or by rules on the freedom of the press (Art 10(5))."
        }
        "ConflictOfLaw" => {
            "Compliance would conflict with the applicable law of a third country: reasoned objection (Art 17)."
        }
        _ => "Other.",
    }
}

/// The form's PDF, and the detached signatures of the PDF and of the information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The rendered form.
    pub pdf: Vec<u8>,
    /// The structured information, JSON.
    pub information: Vec<u8>,
    /// Ed25519 signature of `pdf`.
    pub pdf_signature: Vec<u8>,
    /// Ed25519 signature of `information`.
    pub information_signature: Vec<u8>,
}

/// Renders and signs Form 3 for `info` with the package key. Deterministic: the same
/// information gives the same bytes (Ed25519 signatures are deterministic too), so a retried
/// call sends the same documents.
pub fn sign(info: &Information, key: &crate::keystore::Key) -> Result<Signed, KeyError> {
    let pdf = render(info, &crate::disclosure::keys::key_id(&key.public()?));
    let information = info.to_json();
    Ok(Signed {
        pdf_signature: key.sign(&pdf)?.to_bytes().to_vec(),
        information_signature: key.sign(&information)?.to_bytes().to_vec(),
        pdf,
        information,
    })
}

/// Whether `signature` is the package key's detached signature of `data`.
pub fn verify(data: &[u8], signature: &[u8], key: &VerifyingKey) -> bool {
    Signature::from_slice(signature).is_ok_and(|s| key.verify(data, &s).is_ok())
}

/// A4 in points; margins; Helvetica at 10 points on 14-point lines.
const PAGE: (f32, f32) = (595.0, 842.0);
const LEFT: f32 = 56.0;
const TOP: f32 = 786.0;
const BOTTOM: f32 = 56.0;
const LEADING: f32 = 14.0;
/// Characters per line: Helvetica's average width at 10 points fills 483 points with about 95;
/// fewer, so that wide letters do not run into the margin.
const WRAP: usize = 86;

/// One line of the form: a heading (bold) or text.
enum Line {
    Heading(String),
    Text(String),
}

/// The lines of the English template.
fn template(info: &Information, key_id: &str) -> Vec<Line> {
    let mut lines = vec![
        Line::Heading("FORM 3 (Annex III, Regulation (EU) 2023/1543)".into()),
        Line::Text(
            "Information on the impossibility to execute a European Production Order Certificate \
             (EPOC) or a European Preservation Order Certificate (EPOC-PR)"
                .into(),
        ),
        Line::Text(String::new()),
        Line::Heading("A. The order".into()),
        Line::Text(format!("Type: {}", info.order_kind)),
        Line::Text(format!(
            "Authorisation: {}",
            info.authorisation.as_deref().unwrap_or("-")
        )),
        Line::Text(format!("Task: {}", info.task)),
        Line::Text(format!(
            "Reference: {}",
            info.reference.as_deref().unwrap_or("-")
        )),
        Line::Text(String::new()),
        Line::Heading("B. The addressee (service provider)".into()),
        Line::Text(format!("Provider: {}", info.provider)),
        Line::Text(format!("Issued: {}", info.issued_at)),
        Line::Text(String::new()),
        Line::Heading("C. Reason the order cannot be executed".into()),
        Line::Text(format!("Code: {}", info.reason)),
        Line::Text(info.reason_text.clone()),
        Line::Text(String::new()),
        Line::Heading("D. Explanation".into()),
    ];
    for paragraph in info.explanation.lines() {
        lines.extend(wrap(paragraph).into_iter().map(Line::Text));
    }
    lines.extend([
        Line::Text(String::new()),
        Line::Heading("E. Preservation".into()),
        Line::Text(if info.data_preserved {
            "The data requested are preserved until the issuing authority decides.".into()
        } else {
            "No data are preserved for this order.".into()
        }),
        Line::Text(String::new()),
        Line::Heading("F. Signature".into()),
        Line::Text(format!(
            "Signed by the provider's system: a detached Ed25519 signature by key {key_id} accompanies this form."
        )),
    ]);
    lines
        .into_iter()
        .flat_map(|l| match l {
            Line::Text(t) if t.chars().count() > WRAP => {
                wrap(&t).into_iter().map(Line::Text).collect::<Vec<_>>()
            }
            other => vec![other],
        })
        .collect()
}

/// `text` broken at spaces into lines of at most [`WRAP`] characters (a longer word is cut).
fn wrap(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > WRAP {
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(WRAP).collect();
            word = word.chars().skip(WRAP).collect();
            out.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WRAP {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// `text` in WinAnsiEncoding (the standard fonts' encoding): Latin-1 letters as themselves,
/// a few typographic marks mapped, anything else `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' => c as u8,
            '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{20ac}' => 0x80,
            _ => b'?',
        })
        .collect()
}

/// The form as a PDF, from the English template.
pub fn render(info: &Information, key_id: &str) -> Vec<u8> {
    let lines = template(info, key_id);
    let per_page = ((TOP - BOTTOM) / LEADING) as usize;
    let pages: Vec<&[Line]> = lines.chunks(per_page.max(1)).collect();
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info_ref = Ref::new(5);
    let first_page = 6;
    let page_ref = |i: usize| Ref::new(first_page + 2 * i32::try_from(i).unwrap_or(0));
    let content_ref = |i: usize| Ref::new(first_page + 1 + 2 * i32::try_from(i).unwrap_or(0));
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(page_ref))
        .count(i32::try_from(pages.len()).unwrap_or(0));
    for (font, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let mut meta = pdf.document_info(info_ref);
    meta.title(pdf_writer::TextStr(
        "Form 3 (Annex III, Regulation (EU) 2023/1543)",
    ));
    meta.producer(pdf_writer::TextStr("Writ"));
    meta.finish();
    for (i, chunk) in pages.iter().enumerate() {
        let mut page = pdf.page(page_ref(i));
        page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
        page.parent(tree);
        page.contents(content_ref(i));
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
        fonts.finish();
        resources.finish();
        page.finish();
        let mut content = Content::new();
        content.begin_text();
        content.set_leading(LEADING);
        content.next_line(LEFT, TOP);
        for line in chunk.iter() {
            let (font, text) = match line {
                Line::Heading(t) => (b"F2".as_slice(), t),
                Line::Text(t) => (b"F1".as_slice(), t),
            };
            content.set_font(Name(font), 10.0);
            content.show(Str(&win_ansi(text)));
            content.next_line_using_leading();
        }
        content.end_text();
        pdf.stream(content_ref(i), &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(explanation: &str) -> Information {
        Information {
            authorisation: Some("a".into()),
            task: "t".into(),
            reference: None,
            order_kind: "EPOC".into(),
            provider: "XX/ACTOR02".into(),
            reason: "DataNotHeld".into(),
            reason_text: reason_text("DataNotHeld").into(),
            explanation: explanation.into(),
            data_preserved: false,
            issued_at: "2026-12-07T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_form_is_a_pdf_its_signatures_verify_and_a_flipped_byte_fails() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let signed = sign(
            &info("No such account. Le compte n'existe pas."),
            &(&key).into(),
        )
        .unwrap();
        assert!(signed.pdf.starts_with(b"%PDF-"));
        assert!(signed.pdf.ends_with(b"%%EOF") || signed.pdf.ends_with(b"%%EOF\n"));
        let public = key.verifying_key();
        assert!(verify(&signed.pdf, &signed.pdf_signature, &public));
        assert!(verify(
            &signed.information,
            &signed.information_signature,
            &public
        ));
        let mut flipped = signed.pdf.clone();
        flipped[100] ^= 1;
        assert!(!verify(&flipped, &signed.pdf_signature, &public));
        assert_eq!(
            signed,
            sign(
                &info("No such account. Le compte n'existe pas."),
                &(&key).into()
            )
            .unwrap()
        );
    }

    #[test]
    fn long_explanations_wrap_and_run_onto_more_pages() {
        let long = "word ".repeat(2000);
        let pdf = render(&info(&long), "k");
        // `/Type /Page` once per page, and once more as the start of the tree's `/Type /Pages`.
        let pages = pdf.windows(11).filter(|w| w == b"/Type /Page").count() - 1;
        assert!(pages >= 2, "{pages}");
        assert!(
            wrap(&"x".repeat(200))
                .iter()
                .all(|l| l.chars().count() <= WRAP)
        );
        assert_eq!(win_ansi("é€?ж"), vec![0xe9, 0x80, b'?', b'?']);
    }
}
