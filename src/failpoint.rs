//! Failpoints: named places where a test build stops the process, so that the crash tests
//! (tests/api/crash.rs) can kill it with SIGKILL at exactly that point.
//!
//! They exist only with the `failpoints` cargo feature, which the test build turns on through
//! the package's dev-dependency on itself (so the suite's `CARGO_BIN_EXE_writ` has them). In
//! `cargo build` and `cargo build --release`, [`failpoint!`](crate::failpoint!) expands to
//! nothing and [`arm`] does nothing: the binary never reads the variable.
//!
//! With the feature, `FAILPOINTS=name[@n][,name[@n]...]` arms points: the `n`-th time
//! (default: the first) the process reaches `name`, the thread that reached it writes
//! `writ: failpoint NAME reached` to stderr and blocks for ever, holding whatever it holds (an
//! open transaction, SQLite's write lock, PostgreSQL row locks); the test then kills the process
//! with SIGKILL. Blocking rather than aborting: the crash under test is that outside SIGKILL,
//! arriving while the rest of the process (other requests, background jobs) still runs, and the
//! test first sees that the request in flight got no answer. An `abort()` would end the process
//! from the inside, with another signal, before the test could look. Unknown point names and
//! bad counts are refused at start-up, with a message naming them. (The variable is not
//! `WRIT_...`: that prefix belongs to the settings, which refuse keys they do not know.)

/// Every failpoint. `FAILPOINTS` may name only these.
pub const POINTS: &[&str] = &[
    IMPORT_BATCH_BEFORE_COMMIT,
    IMPORT_BATCH_COMMITTED,
    RELEASE_BEFORE_BUILD,
    PACKAGE_PARTLY_WRITTEN,
    RELEASE_BEFORE_COMMIT,
    AUDIT_APPEND_START,
    AUDIT_APPEND_INSERTED,
];

/// Import (src/metadata/import.rs): a batch's rows and its audit entry are written, the
/// transaction is not committed.
pub const IMPORT_BATCH_BEFORE_COMMIT: &str = "import.batch_before_commit";
/// Import: a batch has committed; the next one has not begun.
pub const IMPORT_BATCH_COMMITTED: &str = "import.batch_committed";
/// Approval (src/disclosure/release.rs): the releasing approval and its audit entry are
/// written, uncommitted; the package is not built yet.
pub const RELEASE_BEFORE_BUILD: &str = "release.before_build";
/// Package build (src/disclosure/package.rs): the archive holds its manifest and signature,
/// not its data files; the approval around it is uncommitted.
pub const PACKAGE_PARTLY_WRITTEN: &str = "package.partly_written";
/// Approval: the package is stored, the order marked released, the release audited, the mail
/// and HI-1 delivery queued; none of it is committed.
pub const RELEASE_BEFORE_COMMIT: &str = "release.before_commit";
/// Audit log (src/audit/log.rs): an append, inside its caller's transaction, is about to
/// read the log's size; the previous append is complete (between two appends).
pub const AUDIT_APPEND_START: &str = "audit.append_start";
/// Audit log: the entry's row is inserted; its Merkle nodes and the commit are not written.
pub const AUDIT_APPEND_INSERTED: &str = "audit.append_inserted";

/// The environment variable that arms failpoints.
pub const ENV: &str = "FAILPOINTS";

/// Marks a failpoint: `failpoint!(failpoint::RELEASE_BEFORE_BUILD)`. Empty without the
/// `failpoints` feature.
#[cfg(feature = "failpoints")]
#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        $crate::failpoint::hit($name)
    };
}

/// Marks a failpoint: `failpoint!(failpoint::RELEASE_BEFORE_BUILD)`. Empty without the
/// `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {};
}

/// Parses `FAILPOINTS`: each point with the hit that stops it.
pub fn parse(spec: &str) -> Result<Vec<(&'static str, u64)>, String> {
    let mut armed = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, nth) = match item.split_once('@') {
            Some((name, n)) => {
                let n = n.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("{ENV}: `{item}`: the count after @ must be a whole number from 1")
                })?;
                (name, n)
            }
            None => (item, 1),
        };
        let known = POINTS.iter().find(|p| **p == name).ok_or_else(|| {
            format!(
                "{ENV}: `{name}` is not a failpoint (known: {})",
                POINTS.join(", ")
            )
        })?;
        armed.push((*known, nth));
    }
    Ok(armed)
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    /// Armed points, each with its hit count so far and the hit that stops it.
    struct Armed(Mutex<Vec<(&'static str, u64, u64)>>);

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::ENV).ok()?;
                match super::parse(&spec) {
                    Ok(points) if points.is_empty() => None,
                    Ok(points) => Some(Armed(Mutex::new(
                        points.into_iter().map(|(p, n)| (p, 0, n)).collect(),
                    ))),
                    Err(message) => {
                        // A test build run by a test with a typo: stop before doing anything
                        // the test would then wait on for ever.
                        eprintln!("writ: {message}");
                        std::process::exit(2)
                    }
                }
            })
            .as_ref()
    }

    /// Reads `FAILPOINTS` now, so that a bad value stops the process at start-up.
    pub fn arm() {
        let _ = armed();
    }

    /// Counts a hit of `name`; stops the calling thread for ever when it is the armed one.
    pub fn hit(name: &'static str) {
        let Some(Armed(points)) = armed() else {
            return;
        };
        let stop = {
            let mut points = points
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            points.iter_mut().any(|(p, hits, nth)| {
                if *p != name {
                    return false;
                }
                *hits += 1;
                *hits == *nth
            })
        };
        if !stop {
            return;
        }
        {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "writ: failpoint {name} reached");
            let _ = err.flush();
        }
        loop {
            std::thread::park();
        }
    }
}

#[cfg(feature = "failpoints")]
pub use armed::{arm, hit};

/// Reads `FAILPOINTS` now (test builds only; nothing otherwise).
#[cfg(not(feature = "failpoints"))]
pub fn arm() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts_are_parsed_and_unknown_ones_refused() {
        assert_eq!(
            parse("release.before_build, audit.append_start@3").unwrap(),
            vec![(RELEASE_BEFORE_BUILD, 1), (AUDIT_APPEND_START, 3)]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        let e = parse("release.before_biuld").unwrap_err();
        assert!(
            e.contains("`release.before_biuld` is not a failpoint"),
            "{e}"
        );
        let e = parse("audit.append_start@0").unwrap_err();
        assert!(e.contains("`audit.append_start@0`"), "{e}");
        assert!(parse("audit.append_start@x").is_err());
    }
}
