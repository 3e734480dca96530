//! Validation of XML messages against the vendored ETSI TS 103 120 schemas (`tests/etsi/`).
//!
//! The schema set is composed and checked by `tests/etsi/validate.py` with the Python
//! `xmlschema` package: the system's if `python3` can import it, else the pinned version,
//! installed once per test process under `<target dir>/etsi-python`. A missing `python3` or a
//! failed install is a test failure, never a silent skip.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `xmlschema` release `validate.py` was checked with.
const XMLSCHEMA_VERSION: &str = "4.3.2";

/// ETSI's example that needs its example-only `FooServiceSchema.xsd`, and so does not validate.
const NEEDS_FOO_SCHEMA: &str = "request5-XML-Delivery.xml";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn etsi_dir() -> PathBuf {
    manifest_dir().join("tests").join("etsi")
}

/// Runs `python3 -c <code>` with an optional extra `PYTHONPATH` entry.
fn python(code: &str, extra_path: Option<&OsString>) -> std::io::Result<Output> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(code);
    if let Some(path) = extra_path {
        cmd.env("PYTHONPATH", python_path(path));
    }
    cmd.output()
}

/// `extra` in front of whatever `PYTHONPATH` the test process already has.
fn python_path(extra: &OsString) -> OsString {
    let mut paths = vec![PathBuf::from(extra)];
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap_or_else(|_| extra.clone())
}

/// `Ok(None)`: the system's `python3` imports `xmlschema`. `Ok(Some(dir))`: it does with `dir`
/// on `PYTHONPATH`. `Err`: why neither works.
fn xmlschema_path() -> Result<Option<OsString>, String> {
    match python("import xmlschema", None) {
        Err(e) => {
            return Err(format!(
                "cannot run python3 ({e}); the ETSI schema tests need Python 3 and the \
                 `xmlschema` package (pip install xmlschema=={XMLSCHEMA_VERSION})"
            ));
        }
        Ok(out) if out.status.success() => return Ok(None),
        Ok(_) => {}
    }

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                manifest_dir().join(dir)
            }
        })
        .unwrap_or_else(|| manifest_dir().join("target"));
    let dir = target.join("etsi-python");
    let dir_os = dir.clone().into_os_string();
    let probe =
        format!("import sys, xmlschema; sys.exit(xmlschema.__version__ != {XMLSCHEMA_VERSION:?})");

    // Installed by an earlier test process?
    if python(&probe, Some(&dir_os)).is_ok_and(|out| out.status.success()) {
        return Ok(Some(dir_os));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove stale {}: {e}", dir.display()))?;
    }
    let install = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&dir)
        .arg(format!("xmlschema=={XMLSCHEMA_VERSION}"))
        .output()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !install.status.success() {
        return Err(format!(
            "python3 cannot import `xmlschema`, and `python3 -m pip install --target {} \
             xmlschema=={XMLSCHEMA_VERSION}` failed ({}):\n{}{}",
            dir.display(),
            install.status,
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr),
        ));
    }
    match python(&probe, Some(&dir_os)) {
        Ok(out) if out.status.success() => Ok(Some(dir_os)),
        Ok(out) => Err(format!(
            "xmlschema=={XMLSCHEMA_VERSION} was installed in {} but python3 cannot import it:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr),
        )),
        Err(e) => Err(format!("cannot run python3: {e}")),
    }
}

/// The checked `xmlschema` set-up, once per test process.
fn xmlschema_env() -> Option<&'static OsString> {
    static ENV: OnceLock<Result<Option<OsString>, String>> = OnceLock::new();
    match ENV.get_or_init(xmlschema_path) {
        Ok(path) => path.as_ref(),
        Err(why) => panic!("ETSI schema validation unavailable: {why}"),
    }
}

/// Writes the documents to a temporary directory and runs `validate.py` over them there.
/// Returns whether all passed (exit status 0) and the script's combined output.
fn run_validator(documents: &[(&str, &str)]) -> (bool, String) {
    assert!(!documents.is_empty(), "no documents to validate");
    let extra_path = xmlschema_env();
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, xml) in documents {
        assert!(
            !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.'),
            "document name must be a plain file name: {name:?}"
        );
        std::fs::write(dir.path().join(name), xml).expect("write document");
    }

    let mut cmd = Command::new("python3");
    cmd.arg(etsi_dir().join("validate.py"))
        .args(documents.iter().map(|(name, _)| name))
        .current_dir(dir.path());
    if let Some(path) = extra_path {
        cmd.env("PYTHONPATH", python_path(path));
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 tests/etsi/validate.py: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => (true, text),
        // 1: some document is invalid. Anything else (2: usage or schema set broken, a Python
        // traceback, a signal) is a harness failure, not a verdict on the documents.
        Some(1) => (false, text),
        _ => panic!("tests/etsi/validate.py failed ({}):\n{text}", out.status),
    }
}

/// Panics, with the validator's report, unless every `(file name, XML text)` document is valid
/// against the ETSI TS 103 120 schema set.
pub(crate) fn assert_valid(documents: &[(&str, &str)]) {
    let (ok, report) = run_validator(documents);
    assert!(ok, "ETSI TS 103 120 schema validation failed:\n{report}");
}

#[test]
fn etsi_examples_validate_against_the_vendored_schemas() {
    let examples = etsi_dir().join("examples");
    let mut documents = Vec::new();
    for entry in std::fs::read_dir(&examples).expect("tests/etsi/examples") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".xml") && name != NEEDS_FOO_SCHEMA {
            let text = std::fs::read_to_string(&path).unwrap();
            documents.push((name, text));
        }
    }
    documents.sort();
    assert_eq!(
        documents.len(),
        26,
        "ETSI's 27 XML examples, less {NEEDS_FOO_SCHEMA}"
    );
    let pairs: Vec<(&str, &str)> = documents
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    assert_valid(&pairs);

    // The harness must be able to fail: request4 with `task:Reference` moved after
    // `task:RequestDetails` breaks the LDTaskObject's sequence.
    let request4 = &documents
        .iter()
        .find(|(name, _)| name == "request4.xml")
        .expect("request4.xml")
        .1;
    let reference = "<task:Reference>XX-ACTOR01-1234</task:Reference>";
    let details_end = "</task:RequestDetails>";
    assert_eq!(request4.matches(reference).count(), 1);
    assert_eq!(request4.matches(details_end).count(), 1);
    let broken = request4
        .replace(reference, "")
        .replace(details_end, &format!("{details_end}{reference}"));
    let (ok, report) = run_validator(&[
        ("request4.xml", request4.as_str()),
        ("broken.xml", broken.as_str()),
    ]);
    assert!(!ok, "the reordered request4 passed validation:\n{report}");
    assert!(report.contains("ok request4.xml"), "{report}");
    assert!(
        report.contains("FAIL broken.xml") && report.contains("task:Reference"),
        "{report}"
    );
}
