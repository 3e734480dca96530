//! Thin helpers over `roxmltree` for the HI-1 parser, and a small XML writer for the HI-1 writer.
//!
//! Reading: an [`El`] is an element with its path (`/HI1Message/Payload/.../task:RequestDetails`,
//! named with ETSI's usual prefixes whatever prefixes the sender chose). [`El::children`] checks
//! an element's children against the schema sequence of its type ([`Spec`]s): every child must
//! be one the schema defines there, in its namespace, in the schema's order, no more often than
//! the schema allows, and every required child must be present. The schema's choices are
//! modelled as groups of optional entries ([`Spec::or`]); callers pick the one present with
//! [`Children::choice`].
//!
//! Writing: [`XmlWriter`] emits one indented UTF-8 document; element names are written as given
//! (with their prefix), text and attribute values are escaped.

use roxmltree::Node;

use super::model::{
    NS_AUTH, NS_COMMON, NS_CONFIG, NS_CORE, NS_DELIVERY, NS_DICTIONARIES, NS_DOC, NS_TASK, NS_XSI,
};
use super::parse::ParseError;

/// XML-DSig, the namespace of the `ds:Signature` an `HI1Message` may end with.
pub(super) const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The prefix ETSI's examples use for a namespace (`""` for the core namespace, which they
/// declare as the default one).
pub(super) fn prefix_of(ns: &str) -> Option<&'static str> {
    Some(match ns {
        NS_CORE => "",
        NS_COMMON => "common",
        NS_TASK => "task",
        NS_AUTH => "auth",
        NS_DOC => "doc",
        NS_DELIVERY => "delivery",
        NS_CONFIG => "config",
        NS_DICTIONARIES => "dictionaries",
        NS_XSI => "xsi",
        NS_DSIG => "ds",
        _ => return None,
    })
}

/// How an element is named in paths and messages: `task:Reference` for a known namespace
/// (`Reference` in the core namespace), `{namespace}Name` for another one, `Name` for none.
pub(super) fn display_name(ns: Option<&str>, local: &str) -> String {
    match ns {
        None => local.to_owned(),
        Some(ns) => match prefix_of(ns) {
            Some("") => local.to_owned(),
            Some(prefix) => format!("{prefix}:{local}"),
            None => format!("{{{ns}}}{local}"),
        },
    }
}

/// The display name of an element node.
fn node_name(node: Node<'_, '_>) -> String {
    display_name(node.tag_name().namespace(), node.tag_name().name())
}

/// XML's white space (the only characters `xs:token` and friends collapse).
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// One element a schema sequence allows at a place.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    /// Its namespace.
    pub ns: &'static str,
    /// Its local name.
    pub name: &'static str,
    /// `minOccurs="1"`.
    pub required: bool,
    /// `maxOccurs` above one.
    pub many: bool,
    /// Shares its place in the sequence with the entry before it (an `xs:choice`).
    pub alt: bool,
}

/// A required element (`minOccurs="1" maxOccurs="1"`).
pub(super) const fn one(ns: &'static str, name: &'static str) -> Spec {
    Spec {
        ns,
        name,
        required: true,
        many: false,
        alt: false,
    }
}

/// An optional element (`minOccurs="0"`).
pub(super) const fn opt(ns: &'static str, name: &'static str) -> Spec {
    Spec {
        ns,
        name,
        required: false,
        many: false,
        alt: false,
    }
}

/// A repeatable optional element (`minOccurs="0" maxOccurs="unbounded"`).
pub(super) const fn many(ns: &'static str, name: &'static str) -> Spec {
    Spec {
        ns,
        name,
        required: false,
        many: true,
        alt: false,
    }
}

/// A repeatable required element (`minOccurs="1" maxOccurs="unbounded"`).
pub(super) const fn some(ns: &'static str, name: &'static str) -> Spec {
    Spec {
        ns,
        name,
        required: true,
        many: true,
        alt: false,
    }
}

impl Spec {
    /// This entry is an alternative of the entry before it (same place in the sequence).
    pub(super) const fn or(self) -> Spec {
        Spec { alt: true, ..self }
    }
}

/// The place in the sequence of `specs[i]`: the index of the first entry of its choice group.
fn rank(specs: &[Spec], mut i: usize) -> usize {
    while i > 0 && specs[i].alt {
        i -= 1;
    }
    i
}

/// An element of the document being parsed, with its path for error messages.
#[derive(Debug, Clone)]
pub(super) struct El<'a, 'input> {
    /// The element.
    pub node: Node<'a, 'input>,
    /// `/HI1Message/Payload/...`.
    pub path: String,
}

impl<'a, 'input> El<'a, 'input> {
    /// The root element.
    pub(super) fn root(node: Node<'a, 'input>) -> Self {
        Self {
            path: format!("/{}", node_name(node)),
            node,
        }
    }

    /// Its display name (`task:Reference`).
    pub(super) fn name(&self) -> String {
        node_name(self.node)
    }

    /// Its local name (`Reference`).
    pub(super) fn local(&self) -> &'input str {
        self.node.tag_name().name()
    }

    /// An error at this element.
    pub(super) fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Refuses attributes other than the XML Schema instance ones (`xsi:type`, ...): the
    /// schema defines none on HI-1 elements.
    fn check_attributes(&self) -> Result<(), ParseError> {
        match self
            .node
            .attributes()
            .find(|a| a.namespace() != Some(NS_XSI))
        {
            None => Ok(()),
            Some(a) => Err(self.err(format!(
                "unexpected attribute `{}` on `{}`: the schema defines no attributes here",
                display_name(a.namespace(), a.name()),
                self.name()
            ))),
        }
    }

    /// The children of this element, checked against the schema sequence `specs`.
    pub(super) fn children(
        &self,
        specs: &'static [Spec],
    ) -> Result<Children<'a, 'input>, ParseError> {
        self.check_attributes()?;
        let mut slots: Vec<Vec<El<'a, 'input>>> = vec![Vec::new(); specs.len()];
        let mut last_rank: Option<usize> = None;
        for child in self.node.children() {
            if child.is_text() {
                let text = child.text().unwrap_or_default();
                if !text.trim_matches(is_xml_space).is_empty() {
                    return Err(self.err(format!(
                        "unexpected text in `{}`: only elements are allowed here",
                        self.name()
                    )));
                }
                continue;
            }
            if !child.is_element() {
                // Comments and processing instructions carry nothing.
                continue;
            }
            let tag = child.tag_name();
            let shown = node_name(child);
            let child_path = format!("{}/{shown}", self.path);
            let Some(i) = specs
                .iter()
                .position(|s| Some(s.ns) == tag.namespace() && s.name == tag.name())
            else {
                let reason = match specs.iter().find(|s| s.name == tag.name()) {
                    Some(s) => format!(
                        "element `{shown}` is in the wrong namespace ({}); the schema expects \
                         `{}` in namespace `{}` here",
                        tag.namespace()
                            .map_or_else(|| "no namespace".to_owned(), |ns| format!("`{ns}`")),
                        display_name(Some(s.ns), s.name),
                        s.ns
                    ),
                    None => format!("unknown element `{shown}` in `{}`", self.name()),
                };
                return Err(ParseError {
                    path: child_path,
                    reason,
                });
            };
            let spec = specs[i];
            let r = rank(specs, i);
            if let Some(last) = last_rank
                && r < last
            {
                return Err(ParseError {
                    path: child_path,
                    reason: format!(
                        "element `{shown}` is out of order: the schema puts it before `{}`",
                        display_name(Some(specs[last].ns), specs[last].name)
                    ),
                });
            }
            if !spec.many && !slots[i].is_empty() {
                return Err(ParseError {
                    path: child_path,
                    reason: format!(
                        "element `{shown}` appears more than once; the schema allows one"
                    ),
                });
            }
            last_rank = Some(r);
            let path = if spec.many {
                format!("{child_path}[{}]", slots[i].len() + 1)
            } else {
                child_path
            };
            slots[i].push(El { node: child, path });
        }
        for (spec, slot) in specs.iter().zip(&slots) {
            if spec.required && slot.is_empty() {
                return Err(self.err(format!(
                    "missing required element `{}/{}`",
                    self.name(),
                    display_name(Some(spec.ns), spec.name)
                )));
            }
        }
        Ok(Children {
            parent: self.clone(),
            specs,
            slots,
        })
    }

    /// The trimmed text of a leaf element (one of a simple type): no child elements allowed.
    pub(super) fn text(&self) -> Result<String, ParseError> {
        self.check_attributes()?;
        let mut text = String::new();
        for child in self.node.children() {
            if child.is_element() {
                return Err(self.err(format!(
                    "`{}` must contain text only, found element `{}`",
                    self.name(),
                    node_name(child)
                )));
            }
            if let Some(t) = child.text().filter(|_| child.is_text()) {
                text.push_str(t);
            }
        }
        Ok(text.trim_matches(is_xml_space).to_owned())
    }
}

/// The checked children of an element, by schema entry.
#[derive(Debug)]
pub(super) struct Children<'a, 'input> {
    parent: El<'a, 'input>,
    specs: &'static [Spec],
    slots: Vec<Vec<El<'a, 'input>>>,
}

impl<'a, 'input> Children<'a, 'input> {
    /// The entries named `name` (local name; an entry list rarely has two in different
    /// namespaces, and [`Children::present`] covers the one that does).
    fn slot(&self, name: &str) -> &[El<'a, 'input>] {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .map_or(&[], |i| self.slots[i].as_slice())
    }

    /// The element `name`, if present.
    pub(super) fn opt(&self, name: &str) -> Option<&El<'a, 'input>> {
        self.slot(name).first()
    }

    /// The element `name`, which must be present.
    pub(super) fn req(&self, name: &str) -> Result<&El<'a, 'input>, ParseError> {
        let spec = self.specs.iter().find(|s| s.name == name);
        self.opt(name).ok_or_else(|| {
            self.parent.err(format!(
                "missing required element `{}/{}`",
                self.parent.name(),
                spec.map_or_else(|| name.to_owned(), |s| display_name(Some(s.ns), s.name))
            ))
        })
    }

    /// Every element `name`, in document order.
    pub(super) fn all(&self, name: &str) -> &[El<'a, 'input>] {
        self.slot(name)
    }

    /// Whether any element with local name `name` (in any of the entries' namespaces) is there.
    pub(super) fn present(&self, name: &str) -> bool {
        self.specs
            .iter()
            .zip(&self.slots)
            .any(|(s, slot)| s.name == name && !slot.is_empty())
    }

    /// Exactly one of the alternatives `names` (an `xs:choice`).
    pub(super) fn choice(&self, names: &[&str]) -> Result<&El<'a, 'input>, ParseError> {
        let found: Vec<&El<'a, 'input>> = names.iter().filter_map(|n| self.opt(n)).collect();
        let list = || {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(self.parent.err(format!(
                "`{}` must contain one of {}",
                self.parent.name(),
                list()
            ))),
            [_, second, ..] => Err(second.err(format!(
                "`{}` must contain only one of {}",
                self.parent.name(),
                list()
            ))),
        }
    }
}

/// A small writer for one indented XML document (UTF-8, with the XML declaration).
#[derive(Debug)]
pub(super) struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    /// A document with only the XML declaration so far.
    pub(super) fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            depth: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value, true);
            self.out.push('"');
        }
    }

    /// An element with content written by `body` (an empty one is written `<name/>`).
    pub(super) fn elem(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        body: impl FnOnce(&mut Self),
    ) {
        self.start_tag(name, attrs);
        let open_end = self.out.len();
        self.out.push_str(">\n");
        let body_start = self.out.len();
        self.depth += 1;
        body(self);
        self.depth -= 1;
        if self.out.len() == body_start {
            self.out.truncate(open_end);
            self.out.push_str("/>\n");
        } else {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
    }

    /// An element holding `text` (escaped).
    pub(super) fn leaf(&mut self, name: &str, text: &str) {
        self.start_tag(name, &[]);
        self.out.push('>');
        escape_into(&mut self.out, text, false);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// The document.
    pub(super) fn finish(self) -> String {
        self.out
    }
}

/// Whether XML 1.0 can carry `c` at all (even as a character reference).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `text` escaped for element content (or, with `attribute`, a double-quoted attribute
/// value). Characters XML cannot carry become U+FFFD; carriage returns (and, in attributes, tabs
/// and newlines) are written as character references so that parsing gives them back.
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attribute => out.push_str("&quot;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_and_closes_empty_elements() {
        let mut w = XmlWriter::new();
        w.elem("a", &[("x", "1\"<&\n")], |w| {
            w.leaf("b", "<&> \r\u{1}");
            w.elem("c", &[], |_| {});
        });
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"1&quot;&lt;&amp;&#10;\">\n    \
             <b>&lt;&amp;&gt; &#13;\u{FFFD}</b>\n    <c/>\n</a>\n"
        );
    }

    #[test]
    fn display_names_use_etsi_prefixes() {
        assert_eq!(display_name(Some(NS_CORE), "Header"), "Header");
        assert_eq!(display_name(Some(NS_TASK), "Reference"), "task:Reference");
        assert_eq!(display_name(Some("urn:x"), "Foo"), "{urn:x}Foo");
        assert_eq!(display_name(None, "Foo"), "Foo");
    }
}
