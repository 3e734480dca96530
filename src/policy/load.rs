//! Loading policy files into a [`PolicySet`]: parsing, then checks that need the whole file or
//! the whole set (ids, element names, overlay targets). Every error names the file and line.

use super::PolicyError;
use super::catalogue::Category;
use super::model::{Action, InstrumentSpec, OverlaySpec, PolicyFile};
use super::order::ORDER_ELEMENTS;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A loaded, checked set of policy files.
#[derive(Debug, Clone)]
pub struct PolicySet {
    id: String,
    /// Jurisdiction code -> (file name, human name, verify note).
    jurisdictions: BTreeMap<String, (String, String, Option<String>)>,
    instruments: BTreeMap<String, InstrumentSpec>,
    overlays: Vec<OverlaySpec>,
}

/// The policy files shipped in `config/policies/`, compiled in: used when Writ runs where that
/// folder is not (an installed binary), and by the tests.
pub const BUILTIN: &[(&str, &str)] = &[
    ("br.toml", include_str!("../../config/policies/br.toml")),
    ("de.toml", include_str!("../../config/policies/de.toml")),
    ("eu.toml", include_str!("../../config/policies/eu.toml")),
    ("fr.toml", include_str!("../../config/policies/fr.toml")),
    ("in.toml", include_str!("../../config/policies/in.toml")),
    ("uk.toml", include_str!("../../config/policies/uk.toml")),
    ("us.toml", include_str!("../../config/policies/us.toml")),
];

impl PolicySet {
    /// Loads every `*.toml` file in `dir` (this is the loader's only I/O; the engine has none).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<PolicySet, PolicyError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PolicyError::Io { path, source }
        };
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                sources.push((name, text));
            }
        }
        if sources.is_empty() {
            return Err(PolicyError::NoFiles(dir.to_path_buf()));
        }
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        PolicySet::from_sources(&borrowed)
    }

    /// Builds a set from `(file name, text)` pairs (tests, and `load_dir`).
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<PolicySet, PolicyError> {
        let mut sorted: Vec<(&str, &str)> = sources.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        // Two texts under one name would make the set (and its id) depend on their order, and
        // an error's file:line ambiguous. A folder cannot hold them; a caller could.
        if let Some(twice) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(PolicyError::Invalid {
                file: twice[0].0.to_owned(),
                line: 1,
                message: format!("the file name {:?} is given twice", twice[0].0),
            });
        }
        let mut set = PolicySet {
            id: set_id(&sorted),
            jurisdictions: BTreeMap::new(),
            instruments: BTreeMap::new(),
            overlays: Vec::new(),
        };
        // Overlays are checked after every file is in, since they name other jurisdictions.
        let mut pending_overlays = Vec::new();
        for (name, text) in &sorted {
            let err = |offset: usize, message: String| PolicyError::Invalid {
                file: (*name).to_owned(),
                line: line_of(text, offset),
                message,
            };
            let file: PolicyFile = toml::from_str(text)
                .map_err(|e| err(e.span().map_or(0, |s| s.start), e.message().to_owned()))?;
            let stem = name.strip_suffix(".toml").unwrap_or(name);
            let jurisdiction = file.jurisdiction.get_ref().clone();
            if jurisdiction != stem {
                return Err(err(
                    file.jurisdiction.span().start,
                    format!("jurisdiction {jurisdiction:?} does not match the file name {name:?}"),
                ));
            }
            for instrument in &file.instruments {
                check_instrument(instrument, &jurisdiction, &err)?;
                let id = instrument.id.get_ref();
                if set.instruments.contains_key(id) {
                    return Err(err(
                        instrument.id.span().start,
                        format!("duplicate instrument {id:?}"),
                    ));
                }
                set.instruments.insert(id.clone(), instrument.clone());
            }
            for overlay in &file.overlays {
                check_id(&overlay.id, &jurisdiction, &err)?;
                check_elements(&overlay.required_elements, &err)?;
                pending_overlays.push(((*name, *text), overlay.clone()));
            }
            set.jurisdictions.insert(
                jurisdiction,
                ((*name).to_owned(), file.name.clone(), file.verify.clone()),
            );
        }
        for ((name, text), overlay) in pending_overlays {
            for target in &overlay.applies_to_jurisdictions {
                if !set.jurisdictions.contains_key(target.get_ref()) {
                    return Err(PolicyError::Invalid {
                        file: name.to_owned(),
                        line: line_of(text, target.span().start),
                        message: format!(
                            "overlay {:?} applies to unknown jurisdiction {:?}",
                            overlay.id.get_ref(),
                            target.get_ref()
                        ),
                    });
                }
            }
            set.overlays.push(overlay);
        }
        Ok(set)
    }

    /// The shipped policies ([`BUILTIN`]).
    pub fn builtin() -> Result<PolicySet, PolicyError> {
        Self::from_sources(BUILTIN)
    }

    /// The id of this set: SHA-256 (hex) over the files sorted by name, each hashed as
    /// `len(name) || name || len(text) || text` with lengths as 8-byte little-endian integers,
    /// so that no two different sets share a byte stream.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a policy file for this jurisdiction is loaded.
    pub fn has_jurisdiction(&self, jurisdiction: &str) -> bool {
        self.jurisdictions.contains_key(jurisdiction)
    }

    /// The jurisdiction codes loaded.
    pub fn jurisdictions(&self) -> impl Iterator<Item = &str> {
        self.jurisdictions.keys().map(String::as_str)
    }

    /// An instrument by id.
    pub fn instrument(&self, id: &str) -> Option<&InstrumentSpec> {
        self.instruments.get(id)
    }

    /// Every instrument, by id.
    pub fn instruments(&self) -> impl Iterator<Item = (&str, &InstrumentSpec)> {
        self.instruments.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every overlay.
    pub fn overlays(&self) -> &[OverlaySpec] {
        &self.overlays
    }

    /// The jurisdiction-level verify note, if any.
    pub fn jurisdiction_verify_note(&self, jurisdiction: &str) -> Option<&str> {
        self.jurisdictions.get(jurisdiction)?.2.as_deref()
    }
}

fn set_id(sorted: &[(&str, &str)]) -> String {
    let mut hasher = Sha256::new();
    for (name, text) in sorted {
        for part in [name.as_bytes(), text.as_bytes()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    hex::encode(hasher.finalize())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

type ErrAt<'a> = dyn Fn(usize, String) -> PolicyError + 'a;

fn check_id(
    id: &toml::Spanned<String>,
    jurisdiction: &str,
    err: &ErrAt<'_>,
) -> Result<(), PolicyError> {
    let rest = id
        .get_ref()
        .strip_prefix(jurisdiction)
        .and_then(|r| r.strip_prefix('.'));
    if rest.is_none_or(|r| {
        r.is_empty()
            || !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }) {
        return Err(err(
            id.span().start,
            format!(
                "id {:?} must be \"{jurisdiction}.<lowercase name>\"",
                id.get_ref()
            ),
        ));
    }
    Ok(())
}

fn check_elements(elements: &[toml::Spanned<String>], err: &ErrAt<'_>) -> Result<(), PolicyError> {
    for element in elements {
        if !ORDER_ELEMENTS.iter().any(|e| e.path == element.get_ref()) {
            return Err(err(
                element.span().start,
                format!(
                    "unknown order element {:?} in required_elements",
                    element.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

fn check_instrument(
    instrument: &InstrumentSpec,
    jurisdiction: &str,
    err: &ErrAt<'_>,
) -> Result<(), PolicyError> {
    check_id(&instrument.id, jurisdiction, err)?;
    check_elements(&instrument.required_elements, err)?;
    let at_id = instrument.id.span().start;
    for code in &instrument.binding.binds_provider_in {
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(
                at_id,
                format!("binding: {code:?} is not an ISO 3166-1 alpha-2 code"),
            ));
        }
    }
    if instrument.preservation.is_some() && instrument.action != Action::Preserve {
        return Err(err(
            at_id,
            "a preservation period is read only on a preservation instrument (action = \"preserve\"); state a retention duty as a [[instrument.duty]]".into(),
        ));
    }
    if let Some(v) = &instrument.emergency_validation
        && v.window.is_some() == v.working_days.is_some()
    {
        return Err(err(
            at_id,
            "emergency_validation needs exactly one of `window` and `working_days`".into(),
        ));
    }
    for route in &instrument.routes {
        if route.citation.trim().is_empty() {
            return Err(err(
                at_id,
                format!("route {:?} needs a citation", route.name),
            ));
        }
        if route.validated_issuers.is_empty() != route.validators.is_empty() {
            return Err(err(
                at_id,
                format!(
                    "route {:?}: validated_issuers and validators go together",
                    route.name
                ),
            ));
        }
    }
    for code in &instrument.issuer_countries {
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(
                at_id,
                format!("issuer_countries: {code:?} is not an ISO 3166-1 alpha-2 code"),
            ));
        }
    }
    for rule in &instrument.rules {
        let at = rule.fields.span().start;
        if rule.citation.trim().is_empty() {
            return Err(err(at, "every rule needs a citation".into()));
        }
        if rule.category == Category::Content && !rule.fields.get_ref().is_empty() {
            return Err(err(
                at,
                "content has no fields in Writ's catalogue; list none".into(),
            ));
        }
        if rule.issuers.is_empty()
            && rule.validated_issuers.is_empty()
            && instrument.routes.is_empty()
        {
            return Err(err(
                at,
                "a rule that names no issuer needs the instrument's [[instrument.route]] blocks"
                    .into(),
            ));
        }
        if rule.validated_issuers.is_empty() != rule.validators.is_empty() {
            return Err(err(
                at,
                "validated_issuers and validators go together (both empty or both listed)".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = rule.fields.get_ref().iter().find(|f| !seen.insert(**f)) {
            return Err(err(at, format!("field {dup} listed twice")));
        }
    }
    Ok(())
}
