//! Helpers shared by the benchmarks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use writ::settings::{Settings, Sources};

/// Settings for a throwaway deployment: this database URL, keys and checkpoint copy in `dir`.
pub fn settings(url: &str, dir: &Path) -> Settings {
    let env: HashMap<String, String> = [
        ("WRIT_DATABASE__URL", url.to_owned()),
        (
            "WRIT_AUDIT__SIGNING_KEY_PATH",
            dir.join("audit.key").display().to_string(),
        ),
        (
            "WRIT_AUDIT__CHECKPOINT_PATH",
            dir.join("checkpoint.txt").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
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
