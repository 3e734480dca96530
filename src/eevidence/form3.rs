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
//! standard Helvetica font in WinAnsi encoding (no font embedded, so German and French letters
//! such as `ä`, `ß`, `é` are single WinAnsi bytes), uncompressed. The form is in the order's
//! language where a template exists ([`template_language`]: English, German, French), else in
//! English. The order's language is the first language the EPOC's approvers give in their
//! contact details (`ApproverContactDetails/Languages`, ISO 639-1), the issuing authority's
//! first (`inbound`, stored with the lifecycle).
// EEVIDENCE.md [T?]: check against TS 104 144 (the schema of Form3Information (CR002) is not
// public: the field names below are Writ's; Annex III's boxes are the Regulation's; where the
// profile carries the order's language is not public either: Writ reads the approvers'
// Languages, the one language field TS 103 120 has).

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
    /// The language of the rendered form (`en`, `de` or `fr`, ISO 639-1): the order's where
    /// a template exists, else `en`.
    pub language: String,
}

impl Information {
    /// The JSON sent as the `Form3Information` document.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and a bool always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The languages a Form 3 template exists in, English first (the fallback).
pub const LANGUAGES: &[&str] = &["en", "de", "fr"];

/// The template language for an order whose language is `requested` (ISO 639-1): the same
/// when a template exists, else English.
pub fn template_language(requested: Option<&str>) -> &'static str {
    let requested = requested.map(|l| l.trim().to_ascii_lowercase());
    LANGUAGES
        .iter()
        .copied()
        .find(|l| requested.as_deref() == Some(*l))
        .unwrap_or("en")
}

/// The reason in words, with the article it rests on (Annex III, section D), in English.
pub fn reason_text(reason: &str) -> &'static str {
    reason_text_in(reason, "en")
}

/// The reason in words in `language` (a [`LANGUAGES`] entry; English otherwise).
// The German and French wording follows the Regulation's terms in those languages
// (Anordnung, Herausgabeanordnung, Sicherungsanordnung; injonction de production, de
// conservation) as Writ's authors know them. [T?]: check against Annex III in the Official
// Journal's German and French editions.
pub fn reason_text_in(reason: &str, language: &str) -> &'static str {
    match (language, reason) {
        ("de", "Incomplete") => "Die Anordnung ist unvollständig (Art. 10 Abs. 6).",
        ("de", "ManifestErrors") => {
            "Die Anordnung enthält offensichtliche Fehler (Art. 10 Abs. 6)."
        }
        ("de", "InsufficientInformation") => {
            "Die Anordnung enthält nicht genügend Informationen, um sie auszuführen (Art. 10 Abs. 6)."
        }
        ("de", "DataNotHeld") => {
            "Die angeforderten Daten werden vom Diensteanbieter nicht gespeichert (Art. 10 Abs. 7)."
        }
        ("de", "DeFactoImpossibility") => {
            "Die Ausführung ist aus tatsächlichen Gründen unmöglich, die dem Diensteanbieter nicht zuzurechnen sind (Art. 10 Abs. 7)."
        }
        ("de", "InvalidIssuingAuthority") => {
            "Die Anordnung wurde nicht von einer zuständigen Anordnungsbehörde erlassen oder validiert (Art. 10 Abs. 8)."
        }
        ("de", "OffenceNotCovered") => {
            "Die Anordnung wurde nicht für eine in der Verordnung vorgesehene Straftat erlassen (Art. 10 Abs. 8)."
        }
        ("de", "ServiceNotCovered") => {
            "Der Dienst fällt nicht unter die Verordnung (Art. 10 Abs. 8)."
        }
        ("de", "ImmunitiesOrPrivileges") => {
            "Die Daten sind durch Immunitäten oder Vorrechte oder durch Vorschriften über die Pressefreiheit geschützt (Art. 10 Abs. 5)."
        }
        ("de", "ConflictOfLaw") => {
            "Die Befolgung stünde im Widerspruch zum anwendbaren Recht eines Drittstaats: begründeter Einwand (Art. 17)."
        }
        ("de", _) => "Sonstiges.",
        ("fr", "Incomplete") => "L'injonction est incomplète (art. 10, paragraphe 6).",
        ("fr", "ManifestErrors") => {
            "L'injonction contient des erreurs manifestes (art. 10, paragraphe 6)."
        }
        ("fr", "InsufficientInformation") => {
            "L'injonction ne contient pas suffisamment d'informations pour être exécutée (art. 10, paragraphe 6)."
        }
        ("fr", "DataNotHeld") => {
            "Les données demandées ne sont pas détenues par le fournisseur de services (art. 10, paragraphe 7)."
        }
        ("fr", "DeFactoImpossibility") => {
            "L'exécution est impossible de fait, pour des raisons non imputables au fournisseur de services (art. 10, paragraphe 7)."
        }
        ("fr", "InvalidIssuingAuthority") => {
            "L'injonction n'a pas été émise ou validée par une autorité d'émission compétente (art. 10, paragraphe 8)."
        }
        ("fr", "OffenceNotCovered") => {
            "L'injonction n'a pas été émise pour une infraction prévue par le règlement (art. 10, paragraphe 8)."
        }
        ("fr", "ServiceNotCovered") => {
            "Le service n'est pas couvert par le règlement (art. 10, paragraphe 8)."
        }
        ("fr", "ImmunitiesOrPrivileges") => {
            "Les données sont protégées par des immunités ou des privilèges, ou par des règles relatives à la liberté de la presse (art. 10, paragraphe 5)."
        }
        ("fr", "ConflictOfLaw") => {
            "L'exécution serait contraire au droit applicable d'un pays tiers : objection motivée (art. 17)."
        }
        ("fr", _) => "Autre.",
        (_, "Incomplete") => "The order is incomplete (Art 10(6)).",
        (_, "ManifestErrors") => "The order contains manifest errors (Art 10(6)).",
        (_, "InsufficientInformation") => {
            "The order does not contain sufficient information to execute it (Art 10(6))."
        }
        (_, "DataNotHeld") => "The data requested are not held by the provider (Art 10(7)).",
        (_, "DeFactoImpossibility") => {
            "Execution is impossible de facto, for reasons not attributable to the provider (Art 10(7))."
        }
        (_, "InvalidIssuingAuthority") => {
            "The order was not issued or validated by a competent issuing authority (Art 10(8))."
        }
        (_, "OffenceNotCovered") => {
            "The order was not issued for an offence the Regulation provides for (Art 10(8))."
        }
        (_, "ServiceNotCovered") => "The service is not covered by the Regulation (Art 10(8)).",
        (_, "ImmunitiesOrPrivileges") => {
            "The data are protected by immunities or privileges, or by rules on the freedom of the press (Art 10(5))."
        }
        (_, "ConflictOfLaw") => {
            "Compliance would conflict with the applicable law of a third country: reasoned objection (Art 17)."
        }
        _ => "Other.",
    }
}

/// The fixed wording of one template: headings and labels (Annex III's boxes, in short).
struct Labels {
    title: &'static str,
    subtitle: &'static str,
    order: &'static str,
    kind: &'static str,
    authorisation: &'static str,
    task: &'static str,
    reference: &'static str,
    addressee: &'static str,
    provider: &'static str,
    issued: &'static str,
    reason: &'static str,
    code: &'static str,
    explanation: &'static str,
    preservation: &'static str,
    preserved: &'static str,
    not_preserved: &'static str,
    signature: &'static str,
    /// Followed by the key id, then `signed_after`.
    signed_before: &'static str,
    signed_after: &'static str,
}

const ENGLISH: Labels = Labels {
    title: "FORM 3 (Annex III, Regulation (EU) 2023/1543)",
    subtitle: "Information on the impossibility to execute a European Production Order Certificate \
               (EPOC) or a European Preservation Order Certificate (EPOC-PR)",
    order: "A. The order",
    kind: "Type",
    authorisation: "Authorisation",
    task: "Task",
    reference: "Reference",
    addressee: "B. The addressee (service provider)",
    provider: "Provider",
    issued: "Issued",
    reason: "C. Reason the order cannot be executed",
    code: "Code",
    explanation: "D. Explanation",
    preservation: "E. Preservation",
    preserved: "The data requested are preserved until the issuing authority decides.",
    not_preserved: "No data are preserved for this order.",
    signature: "F. Signature",
    signed_before: "Signed by the provider's system: a detached Ed25519 signature by key ",
    signed_after: " accompanies this form.",
};

// [T?]: the German and French templates render Annex III's boxes in the Regulation's terms in
// those languages as Writ's authors know them; check the wording against the Official
// Journal's German and French editions of Annex III.
const GERMAN: Labels = Labels {
    title: "FORMULAR 3 (Anhang III, Verordnung (EU) 2023/1543)",
    subtitle: "Informationen über die Unmöglichkeit der Ausführung einer Europäischen \
               Herausgabeanordnung (EPOC) oder einer Europäischen Sicherungsanordnung (EPOC-PR)",
    order: "A. Die Anordnung",
    kind: "Art",
    authorisation: "Autorisierung",
    task: "Auftrag",
    reference: "Aktenzeichen",
    addressee: "B. Der Adressat (Diensteanbieter)",
    provider: "Diensteanbieter",
    issued: "Ausgestellt",
    reason: "C. Grund, aus dem die Anordnung nicht ausgeführt werden kann",
    code: "Code",
    explanation: "D. Erläuterung",
    preservation: "E. Sicherung",
    preserved: "Die angeforderten Daten werden gesichert, bis die Anordnungsbehörde entscheidet.",
    not_preserved: "Für diese Anordnung werden keine Daten gesichert.",
    signature: "F. Unterschrift",
    signed_before: "Vom System des Diensteanbieters unterzeichnet: eine abgetrennte Ed25519-Signatur mit dem Schlüssel ",
    signed_after: " liegt diesem Formular bei.",
};

const FRENCH: Labels = Labels {
    title: "FORMULAIRE 3 (annexe III, règlement (UE) 2023/1543)",
    subtitle: "Informations relatives à l'impossibilité d'exécuter un certificat d'injonction \
               européenne de production (EPOC) ou un certificat d'injonction européenne de \
               conservation (EPOC-PR)",
    order: "A. L'injonction",
    kind: "Type",
    authorisation: "Autorisation",
    task: "Tâche",
    reference: "Référence",
    addressee: "B. Le destinataire (fournisseur de services)",
    provider: "Fournisseur de services",
    issued: "Émis le",
    reason: "C. Motif pour lequel l'injonction ne peut pas être exécutée",
    code: "Code",
    explanation: "D. Explications",
    preservation: "E. Conservation",
    preserved: "Les données demandées sont conservées jusqu'à la décision de l'autorité d'émission.",
    not_preserved: "Aucune donnée n'est conservée pour cette injonction.",
    signature: "F. Signature",
    signed_before: "Signé par le système du fournisseur de services : une signature Ed25519 détachée par la clé ",
    signed_after: " accompagne ce formulaire.",
};

fn labels(language: &str) -> &'static Labels {
    match template_language(Some(language)) {
        "de" => &GERMAN,
        "fr" => &FRENCH,
        _ => &ENGLISH,
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

/// The lines of the template in `info.language` (English when there is none in it).
fn template(info: &Information, key_id: &str) -> Vec<Line> {
    let l = labels(&info.language);
    let field = |label: &str, value: &str| Line::Text(format!("{label}: {value}"));
    let mut lines = vec![
        Line::Heading(l.title.into()),
        Line::Text(l.subtitle.into()),
        Line::Text(String::new()),
        Line::Heading(l.order.into()),
        field(l.kind, &info.order_kind),
        field(
            l.authorisation,
            info.authorisation.as_deref().unwrap_or("-"),
        ),
        field(l.task, &info.task),
        field(l.reference, info.reference.as_deref().unwrap_or("-")),
        Line::Text(String::new()),
        Line::Heading(l.addressee.into()),
        field(l.provider, &info.provider),
        field(l.issued, &info.issued_at),
        Line::Text(String::new()),
        Line::Heading(l.reason.into()),
        field(l.code, &info.reason),
        Line::Text(info.reason_text.clone()),
        Line::Text(String::new()),
        Line::Heading(l.explanation.into()),
    ];
    for paragraph in info.explanation.lines() {
        lines.extend(wrap(paragraph).into_iter().map(Line::Text));
    }
    lines.extend([
        Line::Text(String::new()),
        Line::Heading(l.preservation.into()),
        Line::Text(if info.data_preserved {
            l.preserved.into()
        } else {
            l.not_preserved.into()
        }),
        Line::Text(String::new()),
        Line::Heading(l.signature.into()),
        Line::Text(format!("{}{key_id}{}", l.signed_before, l.signed_after)),
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

/// The form as a PDF, from the template in `info.language`.
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
    meta.title(pdf_writer::TextStr(labels(&info.language).title));
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
            language: "en".into(),
        }
    }

    /// Whether the PDF shows `text` on a line: pdf-writer writes an ASCII line as a literal
    /// string and any other as a hex string of its WinAnsi bytes.
    fn shows(pdf: &[u8], text: &str) -> bool {
        let hex: String = win_ansi(text).iter().map(|b| format!("{b:02X}")).collect();
        let pdf = String::from_utf8_lossy(pdf);
        pdf.contains(text) || pdf.contains(&hex)
    }

    #[test]
    fn the_form_is_in_the_orders_language_where_a_template_exists() {
        assert_eq!(template_language(Some("de")), "de");
        assert_eq!(template_language(Some("FR")), "fr");
        assert_eq!(template_language(Some("it")), "en");
        assert_eq!(template_language(None), "en");
        let of = |language: &str| {
            let mut i = info("Konto unbekannt.");
            i.language = language.into();
            i.reason = "Incomplete".into();
            i.reason_text = reason_text_in("Incomplete", language).into();
            i.data_preserved = true;
            render(&i, "k")
        };
        let de = of("de");
        assert!(shows(
            &de,
            "FORMULAR 3 (Anhang III, Verordnung (EU) 2023/1543)"
        ));
        assert!(shows(
            &de,
            "Die Anordnung ist unvollständig (Art. 10 Abs. 6)."
        ));
        // The umlaut is the single WinAnsi byte 0xE4, in the line's hex string.
        assert!(String::from_utf8_lossy(&de).contains("766F6C6C7374E46E646967"));
        assert!(!shows(&de, "The order is incomplete"));
        let fr = of("fr");
        assert!(shows(
            &fr,
            "L'injonction est incomplète (art. 10, paragraphe 6)."
        ));
        assert!(shows(
            &fr,
            "Les données demandées sont conservées jusqu'à la décision de l'autorité d'émission."
        ));
        // `décision`: 0xE9 for the accent.
        assert!(String::from_utf8_lossy(&fr).contains("64E9636973696F6E"));
        let it = of("it");
        assert!(shows(&it, "FORM 3 (Annex III, Regulation (EU) 2023/1543)"));
        assert!(shows(&it, "The order is incomplete (Art 10(6))."));
        for l in LANGUAGES {
            for r in ["Incomplete", "DataNotHeld", "ConflictOfLaw", "unknown"] {
                let t = reason_text_in(r, l);
                assert!(
                    win_ansi(t).iter().all(|b| *b != b'?') || t.contains('?'),
                    "{t}"
                );
            }
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
