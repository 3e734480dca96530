//! The module dependency rules of ARCHITECTURE.md, checked by reading the source.
//!
//! Every `crate::<module>` path under `src/` (in `use` lines, `use crate::{...}` groups and
//! inline paths, outside comments) is an edge from the file's top-level module to `<module>`.
//! Modules sit in layers and may use only the layers below their own, plus the few sideways
//! edges listed in [`SIDEWAYS`]; the policy engine uses nothing of Writ's but the deployment
//! facts, and nothing uses `cli`. A new top-level module fails until it is given a layer here
//! and in ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom: a module may use the modules of any layer below its own.
const LAYERS: &[&[&str]] = &[
    // The edges: HTTP and the command line.
    &["cli", "web"],
    // Background work and start-up steps.
    &["jobs", "startup"],
    // EU e-Evidence: the profile's endpoints, lifecycle triggers and calls.
    &["eevidence"],
    // HI-1 and e-Evidence messages.
    &["etsi"],
    // The order's life: intake, review, approval, holds.
    &["orders"],
    // The public transparency report, from the audit log alone.
    &["transparency"],
    // Gathering and packaging what is released.
    &["disclosure"],
    // Registry and tokens, workspace users, the outbox.
    &["authority", "staff", "mail"],
    // The stores.
    &["metadata", "audit"],
    // The ground: the database and logging, over the settings tree they are built from.
    &["db", "telemetry"],
    &["settings"],
    // The pure policy engine.
    &["policy"],
    // Leaves: data and helpers that use nothing of Writ's.
    &[
        "deployment",
        "digest",
        "failpoint",
        "json",
        "keystore",
        "net",
        "pki",
        "text",
    ],
];

/// Allowed edges within one layer (one direction only, so no cycle can form).
const SIDEWAYS: &[(&str, &str)] = &[
    // `writ serve` starts the web server.
    ("cli", "web"),
    // Sign-in failures are throttled like an authority's.
    ("staff", "authority"),
    // A contact address is checked the way the mailer checks it.
    ("authority", "mail"),
    // Every lookup, import and retention run is written to the audit log.
    ("metadata", "audit"),
];

/// Modules held to a stricter rule than their layer: what each may use at all.
const ONLY: &[(&str, &[&str])] = &[
    ("policy", &["deployment"]),
    // The report is computed from the audit log alone, never from tables that can be edited
    // without leaving a trace (it may use the tar writer to offer its folder as one file).
    ("transparency", &["audit", "db", "disclosure", "settings"]),
];

/// A use of module `to` by a file of module `from` that the rules forbid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    from: String,
    to: String,
    at: String,
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Why `from` may not use `to`, or `None` when it may.
fn forbidden(from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    if to == "cli" {
        return Some("nothing uses the command line".into());
    }
    if let Some((_, only)) = ONLY.iter().find(|(m, _)| *m == from) {
        return (!only.contains(&to)).then(|| format!("{from} may use only {only:?}"));
    }
    let Some(f) = layer_of(from) else {
        return Some(format!("module `{from}` has no layer: add it to LAYERS"));
    };
    let Some(t) = layer_of(to) else {
        return Some(format!("module `{to}` has no layer: add it to LAYERS"));
    };
    if t > f || SIDEWAYS.contains(&(from, to)) {
        None
    } else if t == f {
        Some(format!("`{from}` and `{to}` are on one layer"))
    } else {
        Some(format!("`{to}` is above `{from}`"))
    }
}

/// The source without comments (line and block), keeping line breaks so positions stay true.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                    }
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The top-level modules `source` names through `crate::`, each with its line number.
fn uses(source: &str) -> Vec<(String, usize)> {
    let code = strip_comments(source);
    let bytes = code.as_bytes();
    let line_at = |i: usize| code[..i].matches('\n').count() + 1;
    let ident = |from: usize| -> String {
        code[from..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(found) = code[start..].find("crate::") {
        let at = start + found;
        start = at + "crate::".len();
        // `$crate::` (in macros) and `writ_crate::`-like names are not this crate's paths.
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || matches!(bytes[at - 1], b'_' | b'$'))
        {
            continue;
        }
        if bytes.get(start) == Some(&b'{') {
            // A group: the names at its top level, each after `{` or `,`.
            let mut depth = 0usize;
            let mut expect_name = true;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b',' if depth == 1 => expect_name = true,
                    b if b.is_ascii_alphabetic() || b == b'_' => {
                        let name = ident(i);
                        if expect_name && depth == 1 {
                            out.push((name.clone(), line_at(i)));
                            expect_name = false;
                        }
                        i += name.len();
                        continue;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let name = ident(start);
            if !name.is_empty() {
                out.push((name, line_at(start)));
            }
        }
    }
    out
}

/// The top-level module of a file, by its path under `src/` (`None` for `lib.rs`, `main.rs`).
fn module_of(relative: &str) -> Option<String> {
    let first = relative.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust file under `src/`: its path below `src/` (with `/`) and its text, sorted.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out: Vec<(String, String)> = files
        .iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).unwrap().to_string_lossy();
            (
                relative.replace('\\', "/"),
                std::fs::read_to_string(file).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every forbidden use under `src/`, and every edge seen.
fn check() -> (Vec<Violation>, BTreeMap<String, BTreeSet<String>>) {
    let mut violations = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (relative, source) in sources() {
        let Some(from) = module_of(&relative) else {
            continue;
        };
        for (to, line) in uses(&source) {
            if to == from {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(to.clone());
            if let Some(why) = forbidden(&from, &to) {
                violations.push(Violation {
                    from: from.clone(),
                    to: to.clone(),
                    at: format!("src/{relative}:{line}: {why}"),
                });
            }
        }
    }
    (violations, edges)
}

#[test]
fn modules_use_only_the_modules_below_them() {
    let (violations, edges) = check();
    let listed: Vec<&str> = violations.iter().map(|v| v.at.as_str()).collect();
    assert!(
        violations.is_empty(),
        "forbidden module uses (see ARCHITECTURE.md):\n{}",
        listed.join("\n")
    );
    // The check saw the real graph, not an empty one.
    assert!(edges["orders"].contains("policy"), "{edges:?}");
    assert!(edges["web"].contains("orders"), "{edges:?}");
    assert_eq!(
        edges.get("policy").cloned().unwrap_or_default(),
        BTreeSet::from(["deployment".to_owned()]),
        "the policy engine is pure"
    );
    for module in edges.keys() {
        assert!(layer_of(module).is_some(), "module `{module}` has no layer");
    }
}

#[test]
fn the_check_catches_back_edges_in_every_form() {
    // Today's rules, applied to the back-edges this layout removed.
    for (from, to) in [
        ("settings", "web"),
        ("settings", "audit"),
        ("settings", "db"),
        ("db", "telemetry"),
        ("policy", "audit"),
        ("policy", "db"),
        ("policy", "settings"),
        ("disclosure", "etsi"),
        ("disclosure", "orders"),
        ("authority", "orders"),
        ("audit", "web"),
        ("metadata", "orders"),
        ("db", "disclosure"),
        ("web", "cli"),
        ("jobs", "cli"),
        ("audit", "metadata"),
        ("authority", "staff"),
        ("mail", "authority"),
        ("web", "newmodule"),
    ] {
        assert!(forbidden(from, to).is_some(), "{from} -> {to} allowed");
    }
    for (from, to) in [
        ("web", "orders"),
        ("cli", "web"),
        ("orders", "policy"),
        ("policy", "deployment"),
        ("settings", "net"),
        ("jobs", "etsi"),
    ] {
        assert_eq!(forbidden(from, to), None, "{from} -> {to}");
    }
    // The reader finds a use however it is written, and not in comments.
    let source = r#"
use crate::web::metrics::IpNetwork;
use crate::{
    audit::{self, Actor},
    db,
};
// use crate::cli::Cli;
/* crate::etsi */
fn f() { let _ = crate::orders::lock; }
macro_rules! m { () => { $crate::failpoint::x() } }
"#;
    let found: Vec<String> = uses(source).into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, ["web", "audit", "db", "orders"]);
    assert_eq!(uses(source)[0].1, 2, "line numbers count from 1");
}

/// The event argument of every `NewEntry::new(actor, event)` call in `source` outside its test
/// module, with its line number.
fn event_arguments(source: &str) -> Vec<(String, usize)> {
    let code = strip_comments(source);
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(found) = code[start..].find("NewEntry::new(") {
        let open = start + found + "NewEntry::new(".len();
        start = open;
        let (mut depth, mut in_string, mut comma) = (0usize, false, None);
        let mut end = None;
        let mut prev = ' ';
        for (i, c) in code[open..].char_indices() {
            if in_string {
                in_string = !(c == '"' && prev != '\\');
            } else {
                match c {
                    '"' => in_string = true,
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' if depth == 0 => {
                        end = Some(open + i);
                        break;
                    }
                    ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 0 && comma.is_none() => comma = Some(open + i),
                    _ => {}
                }
            }
            prev = c;
        }
        if let (Some(comma), Some(end)) = (comma, end) {
            let argument = code[comma + 1..end].trim().trim_end_matches(',').trim();
            out.push((argument.to_owned(), code[..comma].matches('\n').count() + 1));
        }
    }
    out
}

#[test]
fn audit_events_are_named_from_the_catalogue() {
    let mut literals = Vec::new();
    let mut calls = 0;
    for (relative, source) in sources() {
        for (argument, line) in event_arguments(&source) {
            calls += 1;
            if argument.starts_with('"') {
                literals.push(format!("src/{relative}:{line}: {argument}"));
            }
        }
    }
    assert!(calls > 20, "the reader found only {calls} entries");
    assert!(
        literals.is_empty(),
        "name audit events with writ::audit::Event, not a string:\n{}",
        literals.join("\n")
    );
    // The reader sees a literal however the call is laid out.
    let sample = r#"
fn f() {
    let a = NewEntry::new(Actor::new(ActorKind::System, "etsi"), Event::EtsiDeliveryQueued);
    let b = NewEntry::new(
        Actor::new(ActorKind::System, "x(y"),
        "order.received",
    )
    .order(id);
}
#[cfg(test)]
mod tests { fn t() { NewEntry::new(Actor::system(), "x"); } }
"#;
    assert_eq!(
        event_arguments(sample),
        [
            ("Event::EtsiDeliveryQueued".to_owned(), 3),
            ("\"order.received\"".to_owned(), 5)
        ]
    );
}

#[test]
fn the_catalogue_keeps_the_names_in_the_log() {
    // The names are the log's wire format: a change here breaks every verifier's filters.
    use writ::audit::Event;
    assert_eq!(Event::OrderReceived.as_str(), "order.received");
    assert_eq!(Event::OrderReleased.as_str(), "order.released");
    assert_eq!(Event::EtsiDeliveryQueued.as_str(), "etsi.delivery_queued");
    assert_eq!(Event::PolicyLoaded.as_str(), "policy.loaded");
    assert_eq!(Event::ALL.len(), 78);
}

/// Files outside `db/` that may name a backend (`DbConn::Sqlite`, `DbConn::Postgres`,
/// PostgreSQL advisory locks): none. Use the primitives of `db/` instead.
const BACKEND_SPECIFIC: &[&str] = &[];

#[test]
fn backend_specific_code_stays_in_the_database_module() {
    let mut found = BTreeSet::new();
    for (relative, source) in sources() {
        if relative.starts_with("db/") {
            continue;
        }
        let code = strip_comments(&source);
        if ["DbConn::Sqlite", "DbConn::Postgres", "pg_advisory"]
            .iter()
            .any(|n| code.contains(n))
        {
            found.insert(relative);
        }
    }
    let new: Vec<&String> = found
        .iter()
        .filter(|f| !BACKEND_SPECIFIC.contains(&f.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "backend-specific code outside src/db/ (use db::locks or db::on_backend!): {new:?}"
    );
    let gone: Vec<&&str> = BACKEND_SPECIFIC
        .iter()
        .filter(|f| !found.contains(**f))
        .collect();
    assert!(
        gone.is_empty(),
        "no longer backend-specific, drop from the list: {gone:?}"
    );
}

#[test]
fn handlers_neither_audit_nor_query_tables_themselves() {
    // A handler parses, calls one service function and renders: the service writes the audit
    // entry in its own transaction, and owns the queries. The metrics gauges are the one
    // exception (they count rows per status for the operators, and nothing else).
    let mut found = Vec::new();
    for (relative, source) in sources() {
        if !relative.starts_with("web/") || relative == "web/metrics.rs" {
            continue;
        }
        let code = strip_comments(&source);
        for needle in ["audit::append", "NewEntry::new", "db::schema", "diesel::"] {
            if code.contains(needle) {
                found.push(format!("src/{relative}: {needle}"));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
