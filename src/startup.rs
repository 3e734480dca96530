//! Start-up work shared by `serve` and the command line: loading the configured policy set and
//! recording in the audit log which one decides.
//!
//! It sits above the policy engine (which stays pure: no I/O but reading its files) and above
//! the audit log and the database it writes to.

use chrono::Utc;

use crate::audit::{self, Actor, AuditError, NewEntry};
use crate::db::{DbConn, meta, write_tx};
use crate::policy::{PolicyError, PolicySet};
use crate::settings::PolicySettings;

/// `writ_meta` key of the policy set id last recorded in the audit log.
const META_KEY: &str = "policy.set_id";
/// The configured default folder, which falls back to the compiled-in policies when absent.
const DEFAULT_DIR: &str = "config/policies";

/// Loads the configured policy folder; when the default folder is not there (an installed
/// binary), the shipped policies compiled into the binary. A configured folder that is missing
/// is an error.
pub fn load_policies(settings: &PolicySettings) -> Result<PolicySet, PolicyError> {
    if !settings.dir.exists() && settings.dir.as_os_str() == DEFAULT_DIR {
        return PolicySet::builtin();
    }
    PolicySet::load_dir(&settings.dir)
}

/// Records the policy set in the audit log if it differs from the one recorded last, so the
/// log says which rules decided every later order. Safe when instances start together.
pub fn record_policy_set(conn: &mut DbConn, set: &PolicySet) -> Result<bool, AuditError> {
    write_tx(conn, |c| {
        // Serialise with other appenders first, so two instances cannot both record the change.
        audit::log::lock(c)?;
        if meta::get(c, META_KEY)?.as_deref() == Some(set.id()) {
            return Ok(false);
        }
        meta::set(c, META_KEY, set.id())?;
        let entry = NewEntry::new(Actor::system(), audit::Event::PolicyLoaded)
            .reference("policy_set_id", set.id())
            .reference("instruments", set.instruments().count())
            .reference("jurisdictions", set.jurisdictions().count());
        audit::append(c, &entry, Utc::now())?;
        Ok(true)
    })
}
