//! Helpers shared by the benchmarks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use writ::settings::{Settings, Sources};

/// Settings for a throwaway deployment: this database URL, keys and checkpoint copy in `dir`,
/// plus any `WRIT_*` setting from the environment (to measure other settings, e.g.
/// `WRIT_METADATA__IMPORT_BATCH_ROWS=5000 cargo bench --bench metadata`).
pub fn settings(url: &str, dir: &Path) -> Settings {
    let mut env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("WRIT_") && !k.starts_with("WRIT_BENCH_") && !k.starts_with("WRIT_TEST_")
        })
        .collect();
    env.extend(
        [
            ("WRIT_DATABASE__URL", url.to_owned()),
            (
                "WRIT_AUDIT__SIGNING_KEY_PATH",
                dir.join("audit.key").display().to_string(),
            ),
            (
                "WRIT_AUDIT__ENTRY_KEY_PATH",
                dir.join("audit-entry.key").display().to_string(),
            ),
            (
                "WRIT_AUDIT__CHECKPOINT_PATH",
                dir.join("checkpoint.txt").display().to_string(),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    Settings::load(&Sources {
        base_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        file: None,
        env: Some(env),
    })
    .unwrap()
}

/// This process's peak resident memory, in KiB.
pub fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap_or(0)
}
