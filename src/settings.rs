//! The settings tree: loaded once at start-up, validated, then passed down (no globals).
//!
//! Layers, later wins: `config/default.toml` (or its built-in copy), an optional environment
//! file, then `WRIT_<SECTION>__<KEY>` environment variables. Any unknown key or bad value is
//! one [`SettingsError`] that names the key and where the value came from. Values of secret
//! settings never appear in errors, logs or `writ config show`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

/// The built-in copy of `config/default.toml`, used when the file is not found on disk so that
/// the binary also runs outside the source tree.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variables with the `WRIT_` prefix that are not settings.
const RESERVED_ENV: &[&str] = &["WRIT_CONFIG_FILE"];
/// Prefixes of `WRIT_` variables that belong to the test harness, not to the service.
const RESERVED_ENV_PREFIXES: &[&str] = &["WRIT_TEST_", PIN_ENV_PREFIX];
/// Environment variables holding PKCS#11 PINs (`pkcs11.pin_env`) start with this, so that
/// they are read as PINs and never as settings.
pub const PIN_ENV_PREFIX: &str = "WRIT_PKCS11_PIN";

/// Every setting of a running Writ instance.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener.
    pub server: ServerSettings,
    /// Database connection and pool.
    pub database: DatabaseSettings,
    /// Logging.
    pub log: LogSettings,
    /// The audit log: signing, checkpoints, auditor access.
    pub audit: AuditSettings,
    /// The user-metadata store: imports and feeding systems.
    pub metadata: MetadataSettings,
    /// How long metadata is kept.
    pub retention: RetentionSettings,
    /// Where the jurisdiction policies are.
    pub policy: PolicySettings,
    /// The provider's own legal position (establishment, representatives).
    pub deployment: crate::deployment::Deployment,
    /// The authorities' order-intake API.
    pub api: ApiSettings,
    /// The browser workspace: sessions and sign-in.
    pub workspace: WorkspaceSettings,
    /// Disclosure packages.
    pub package: PackageSettings,
    /// Outgoing e-mail.
    pub mail: MailSettings,
    /// ETSI TS 103 120 (HI-1) exchange.
    pub etsi: EtsiSettings,
    /// Who may read the operators' metrics (`GET /metrics`).
    pub metrics: MetricsSettings,
    /// The public transparency report: its banding rules.
    pub transparency: TransparencySettings,
}

/// `[transparency]`: how the transparency report publishes small numbers. These settings are
/// copied into every report, so that a reader (and `writ transparency verify`) recomputes the
/// report with exactly the rules it was made with.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransparencySettings {
    /// Counts from 1 to `threshold - 1` are published as `<threshold` (0 stays 0); shares,
    /// medians and percentiles over fewer requests than this are not published.
    pub threshold: u64,
    /// A country with fewer requests than this in a table is merged into `other` there.
    pub country_minimum: u64,
    /// Kinds of request that a law requires reported apart: in bands, after a delay.
    pub categories: Vec<ReportCategory>,
}

impl TransparencySettings {
    /// Checks the banding rules (also run on the rules a report carries, before verifying it).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=1000).contains(&self.threshold) {
            return Err(("transparency.threshold", "must be 1 to 1000".into()));
        }
        if self.country_minimum > 1_000_000 {
            return Err((
                "transparency.country_minimum",
                "must be 0 to 1000000".into(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut instruments = std::collections::BTreeSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            let n = i + 1;
            let good_name = !c.name.is_empty()
                && c.name.len() <= 40
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !good_name {
                return Err((
                    "transparency.categories",
                    format!("category {n}: name must be 1 to 40 lowercase letters, digits or _"),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err((
                    "transparency.categories",
                    format!("category {n}: the name `{}` is used twice", c.name),
                ));
            }
            if c.instruments.is_empty() {
                return Err((
                    "transparency.categories",
                    format!("category `{}`: instruments must not be empty", c.name),
                ));
            }
            for inst in &c.instruments {
                if inst.trim().is_empty() || inst.len() > 100 {
                    return Err((
                        "transparency.categories",
                        format!(
                            "category `{}`: an instrument id must be 1 to 100 characters",
                            c.name
                        ),
                    ));
                }
                if !instruments.insert(inst.as_str()) {
                    return Err((
                        "transparency.categories",
                        format!(
                            "category `{}`: instrument `{inst}` is in two categories",
                            c.name
                        ),
                    ));
                }
            }
            if c.band > 1_000_000 {
                return Err((
                    "transparency.categories",
                    format!("category `{}`: band must be 0 to 1000000", c.name),
                ));
            }
            if c.delay_days > 3650 {
                return Err((
                    "transparency.categories",
                    format!("category `{}`: delay_days must be 0 to 3650", c.name),
                ));
            }
        }
        Ok(())
    }
}

/// A kind of request reported apart (e.g. US national-security process: in bands of 250,
/// six months late, 50 U.S.C. 1874).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportCategory {
    /// Its name in the report: lowercase letters, digits and `_`.
    pub name: String,
    /// The instrument ids it holds (e.g. `us.fisa`); an instrument is in one category at most.
    pub instruments: Vec<String>,
    /// Band width: counts are published as `0-249`, `250-499`, ... (0: exact, under the
    /// threshold rule like everything else).
    pub band: u64,
    /// Days after the period's end before its numbers may be published; until then the report
    /// says when they will be.
    pub delay_days: u32,
}

/// `[metrics]`: access to `GET /metrics`. With neither a token nor a network it answers 404.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// SHA-256 (hex) of the bearer token a scraper presents; empty for none.
    pub token_sha256: String,
    /// Networks in CIDR form (e.g. `10.0.0.0/8`, `::1/128`) whose clients may read the metrics
    /// without a token. The client is the TCP peer, or with `api.trusted_proxy_hops` the
    /// address the outermost trusted proxy saw.
    pub allowed_networks: Vec<String>,
}

/// `[etsi]`: the ETSI TS 103 120 (HI-1) endpoint and outbound deliveries.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtsiSettings {
    /// Writ's own HI-1 `CountryCode` (ISO 3166-1 alpha-2, or `XX`).
    pub country_code: String,
    /// Writ's own HI-1 `UniqueIdentifier`: the receiver identifier messages must name, and the
    /// owner of Writ's own dictionaries and target formats.
    pub unique_identifier: String,
    /// Largest HI-1 message, in bytes.
    pub message_limit_bytes: usize,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
    /// Attempts at a DELIVER before it is marked failed (an operator can retry it).
    pub delivery_max_attempts: u32,
    /// Seconds before the first retry of a DELIVER; doubled on each further attempt.
    pub delivery_backoff_secs: u64,
    /// Seconds an outbound DELIVER request may take.
    pub delivery_timeout_secs: u64,
    /// Days the body of an HI-1 message that created something is kept (its hash and size stay
    /// for ever); bodies that created an object of an order still open are kept until it closes.
    /// 0 keeps them for ever.
    pub message_body_retention_days: u32,
    /// Base URL of the national e-Evidence system's interface for service providers (Writ
    /// POSTs its calls to `<url>/eevidence/<call>`); empty: calls stay queued, unsent.
    #[serde(default)]
    pub eevidence_url: String,
    /// Largest released package an e-Evidence `outcome` carries inline, in bytes (profile
    /// clause 6.3.3: 25 MB); a larger one goes by reference, a URL to
    /// `GET /eevidence/packages/{id}` under `eevidence_package_url`.
    #[serde(default = "default_eevidence_inline_limit")]
    pub eevidence_inline_limit_bytes: usize,
    /// Writ's base URL as the national e-Evidence system reaches it: the URL of a package sent
    /// by reference is `<url>/eevidence/packages/<package id>`. Empty: a package above the
    /// inline limit cannot go out (its `outcome` fails, naming this setting, and is retried).
    #[serde(default)]
    pub eevidence_package_url: String,
    /// Days a package's URL in an `outcome` sent by reference stays valid, from the queueing
    /// of the latest `outcome` of the order: the URLObject's `Expiry`, after which a fetch is
    /// refused (410). 0: no expiry.
    #[serde(default = "default_eevidence_package_url_days")]
    pub eevidence_package_url_days: u32,
    /// `writ serve` refreshes the registry from the national system's authority list this
    /// often, in seconds (`eevidence::authorities::Periodic`); 0: only
    /// `writ eevidence refresh-authorities` does. Nothing happens while `eevidence_url` is empty.
    #[serde(default = "default_eevidence_authorities_refresh")]
    pub eevidence_authorities_refresh_secs: u64,
    /// The CA Writ trusts and the client certificate it presents on its outbound HTTPS calls
    /// (`[etsi.outbound_tls]`; see `pki::outbound_client`).
    #[serde(default)]
    pub outbound_tls: crate::pki::OutboundTls,
}

/// 30 days.
fn default_eevidence_package_url_days() -> u32 {
    30
}

/// Once a day.
fn default_eevidence_authorities_refresh() -> u64 {
    24 * 60 * 60
}

/// 25 MiB, the profile's inline limit for an `outcome` (EEVIDENCE.md section 2 [T?]).
fn default_eevidence_inline_limit() -> usize {
    25 * 1024 * 1024
}

/// `[workspace]`: the legal team's and auditors' browser workspace.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSettings {
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// A session ends this many hours after sign-in, whatever happens.
    pub session_max_hours: u32,
    /// When above 0, the idle timeout in seconds instead of `session_idle_minutes` (tests use a
    /// few seconds).
    #[serde(default)]
    pub session_idle_secs: u32,
    /// When above 0, the absolute session length in seconds instead of `session_max_hours`.
    #[serde(default)]
    pub session_max_secs: u32,
    /// Failed sign-ins per account (and per client network) per 15 minutes before sign-in is
    /// refused for the rest of the window.
    pub login_failures_per_15min: u32,
    /// Create the first admin when Writ starts with no users (off where users are provisioned
    /// with `writ user add`).
    pub create_first_admin: bool,
    /// Where the first admin's random password is written (mode 0600) when Writ starts with no
    /// users.
    pub initial_admin_password_file: PathBuf,
    /// Mark session cookies `Secure` (browsers still accept them on http://localhost).
    pub cookie_secure: bool,
    /// The internal target, in hours after receipt, of an order whose instrument sets no fixed
    /// deadline ("without undue delay"), per instrument id; `default` for the others. The
    /// queue sorts such orders by this target among the dated ones.
    #[serde(default)]
    pub undated_target_hours: std::collections::BTreeMap<String, u32>,
}

/// The warning shown (mail page, start-up log, `/readyz` details) while `mail.legal_team` is
/// empty.
pub const NO_LEGAL_TEAM: &str = "mail.legal_team is empty: new orders, deadline and task reminders are not e-mailed to anyone; set it to the legal team's addresses";

/// The internal target of an undated order when `workspace.undated_target_hours` names none.
pub const DEFAULT_UNDATED_TARGET_HOURS: u32 = 240;

impl WorkspaceSettings {
    /// The internal target of an undated order of `instrument`, in hours after receipt.
    pub fn undated_target_hours(&self, instrument: &str) -> u32 {
        self.undated_target_hours
            .get(instrument)
            .or_else(|| self.undated_target_hours.get("default"))
            .copied()
            .unwrap_or(DEFAULT_UNDATED_TARGET_HOURS)
    }
}

impl WorkspaceSettings {
    /// How long a session may stay unused, in microseconds.
    pub fn session_idle_micros(&self) -> i64 {
        if self.session_idle_secs > 0 {
            i64::from(self.session_idle_secs) * 1_000_000
        } else {
            i64::from(self.session_idle_minutes) * 60_000_000
        }
    }

    /// How long a session lasts after sign-in, in microseconds.
    pub fn session_max_micros(&self) -> i64 {
        if self.session_max_secs > 0 {
            i64::from(self.session_max_secs) * 1_000_000
        } else {
            i64::from(self.session_max_hours) * 3_600_000_000
        }
    }
}

/// `[package]`: disclosure packages.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSettings {
    /// The Ed25519 key that signs package manifests (PKCS#8 PEM, mode 0600; `writ keys init`).
    pub signing_key_path: PathBuf,
    /// Create the key on start when missing (the embedded default; production provisions it).
    pub create_key_if_missing: bool,
    /// Days a released package stays downloadable before it is deleted.
    pub retention_days: u32,
    /// Where the key lives: `file` (`signing_key_path`) or `pkcs11` (`[package.pkcs11]`).
    pub signing_key: KeyLocation,
    /// The token holding the key when `signing_key` is `pkcs11`.
    pub pkcs11: Pkcs11Settings,
    /// The provider's name, as the cover letter and the records certificate give it.
    pub provider_name: String,
}

/// `[mail.webhooks]`: signed webhooks (issue 19). A user notice goes to the provider's own
/// messaging system when one is due and nothing forbids it; an emergency order pages the
/// on-call. Each POST carries `Writ-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
/// `<t>.<body>` with the channel's secret. An empty URL turns the channel off.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where user notices are POSTed (the provider's messaging system); empty: off.
    pub notice_url: String,
    /// The user-notice channel's HMAC key (at least 32 characters when the URL is set).
    pub notice_secret: SecretString,
    /// The notice's text per instrument id, `default` for the rest. Only these placeholders:
    /// `{authority}`, `{country}`, `{instrument}`, `{categories}`, `{date}`: what the law
    /// lets the provider tell, never the reference, offence or records.
    pub notice_templates: BTreeMap<String, String>,
    /// Where on-call pages are POSTed (emergency orders); empty: off.
    pub paging_url: String,
    /// The paging channel's HMAC key (at least 32 characters when the URL is set).
    pub paging_secret: SecretString,
    /// Attempts before a webhook is marked failed (visible on the order page).
    pub max_attempts: u32,
    /// First retry delay; doubled after each failure.
    pub retry_backoff_secs: u64,
    /// How long one POST may take.
    pub timeout_secs: u64,
}

/// The placeholders a user-notice template may use.
pub const NOTICE_PLACEHOLDERS: [&str; 5] =
    ["authority", "country", "instrument", "categories", "date"];

impl WebhookSettings {
    /// Checks the secrets and the templates (only the allowed placeholders).
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.notice_url.is_empty() && self.notice_secret.expose().chars().count() < 32 {
            return Err((
                "mail.webhooks.notice_secret",
                "must be at least 32 characters when mail.webhooks.notice_url is set".into(),
            ));
        }
        if !self.paging_url.is_empty() && self.paging_secret.expose().chars().count() < 32 {
            return Err((
                "mail.webhooks.paging_secret",
                "must be at least 32 characters when mail.webhooks.paging_url is set".into(),
            ));
        }
        if !self.notice_templates.contains_key("default") {
            return Err((
                "mail.webhooks.notice_templates",
                "needs a `default` template".into(),
            ));
        }
        for (instrument, text) in &self.notice_templates {
            let mut rest = text.as_str();
            while let Some(open) = rest.find('{') {
                let after = &rest[open + 1..];
                let Some(close) = after.find('}') else {
                    return Err((
                        "mail.webhooks.notice_templates",
                        format!("`{instrument}`: a `{{` is not closed"),
                    ));
                };
                let name = &after[..close];
                if !NOTICE_PLACEHOLDERS.contains(&name) {
                    return Err((
                        "mail.webhooks.notice_templates",
                        format!(
                            "`{instrument}`: `{{{name}}}` is not one of {{{}}}",
                            NOTICE_PLACEHOLDERS.join("}, {")
                        ),
                    ));
                }
                rest = &after[close + 1..];
            }
        }
        if self.max_attempts == 0 || self.timeout_secs == 0 {
            return Err((
                "mail.webhooks.max_attempts",
                "max_attempts and timeout_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where a signing key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyLocation {
    /// A PKCS#8 PEM file (mode 0600).
    File,
    /// A PKCS#11 token (an HSM); the private key never leaves it.
    Pkcs11,
}

/// `[audit.pkcs11]`, `[package.pkcs11]`: a key in a PKCS#11 token.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Settings {
    /// The vendor's PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The key pair's label in the token.
    pub key_label: String,
    /// The environment variable holding the user PIN (its name starts with `WRIT_PKCS11_PIN`).
    pub pin_env: String,
    /// A file holding the user PIN (mode 0600), read when `pin_env` is not set; empty for none.
    pub pin_file: PathBuf,
    /// The PIN, read from `pin_env` when the settings are loaded (never from the file itself).
    #[serde(skip)]
    pub pin: SecretString,
}

impl Pkcs11Settings {
    /// The token key these settings name; the PIN from `pin_env`, else from `pin_file`.
    pub fn token_config(&self) -> Result<crate::keystore::TokenConfig, crate::keystore::KeyError> {
        let pin = if !self.pin.is_empty() {
            crate::keystore::Pin::new(self.pin.expose())
        } else if !self.pin_file.as_os_str().is_empty() {
            let text = std::fs::read_to_string(&self.pin_file).map_err(|e| {
                crate::keystore::KeyError(format!(
                    "cannot read the PKCS#11 PIN file {}: {e}",
                    self.pin_file.display()
                ))
            })?;
            crate::keystore::Pin::new(&text)
        } else {
            crate::keystore::Pin::default()
        };
        Ok(crate::keystore::TokenConfig {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            key_label: self.key_label.clone(),
            pin,
        })
    }
}

/// `[mail]`: outgoing e-mail.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// `file` (messages are written to `outbox_dir`, the embedded default) or `smtp`.
    pub transport: MailTransport,
    /// Where the file transport writes messages.
    pub outbox_dir: PathBuf,
    /// The sender address.
    pub from: String,
    /// SMTP server host.
    pub smtp_host: String,
    /// SMTP server port.
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_security: SmtpSecurity,
    /// SMTP user name; empty for none.
    pub smtp_username: String,
    /// SMTP password.
    pub smtp_password: SecretString,
    /// Addresses of the legal team (new orders, reminders).
    pub legal_team: Vec<String>,
    /// Addresses of auditors (checkpoint pushes).
    pub auditors: Vec<String>,
    /// Attempts before a message is marked failed (it stays visible and can be retried).
    pub max_attempts: u32,
    /// Seconds before the first retry; each retry doubles it.
    pub retry_backoff_secs: u64,
    /// Signed webhooks: user notices and on-call pages (`[mail.webhooks]`).
    pub webhooks: WebhookSettings,
}

/// How e-mail leaves Writ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Files in the outbox folder.
    File,
    /// An SMTP relay.
    Smtp,
}

/// SMTP connection security.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a local relay).
    None,
    /// STARTTLS upgrade.
    Starttls,
    /// TLS from the start (SMTPS).
    Tls,
}

/// `[api]`: the order-intake API for authorities' systems.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// The `aud` every request token must carry; empty derives `writ:<deployment id>`.
    pub audience: String,
    /// Longest accepted token lifetime (`exp` - `iat`), in seconds.
    pub token_max_lifetime_secs: i64,
    /// Largest signed order document (after base64 decoding), in bytes.
    pub document_limit_bytes: usize,
    /// Requests per authority per minute, across all instances.
    pub rate_limit_per_minute: u32,
    /// Failed authentications per client network per minute before further requests from it
    /// are refused unexamined (429).
    pub auth_failure_limit_per_minute: u32,
    /// Reverse proxies in front of Writ whose `X-Forwarded-For` entry is trusted (0: none; the
    /// client is the TCP peer).
    pub trusted_proxy_hops: usize,
    /// Seconds between runs of the background jobs (hold resolution, failure summaries).
    pub jobs_interval_secs: u64,
    /// Accept validation signatures of the old form, without `aud` and `exp` (bound to no
    /// submitter and no time). Off by default: another authority could resubmit them.
    pub accept_unbound_validations: bool,
}

/// `[policy]`: the jurisdiction policy files.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Folder of policy files (one TOML file per jurisdiction).
    pub dir: PathBuf,
}

/// `[metadata]`: imports and the provider's feeding systems.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSettings {
    /// Records per import transaction.
    pub import_batch_rows: usize,
    /// Largest ingest request body, in bytes.
    pub ingest_limit_bytes: usize,
    /// Feeding systems allowed to call the ingest endpoint.
    pub feeders: Vec<Feeder>,
}

/// A system of the provider that feeds metadata through the ingest endpoint.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Feeder {
    /// Its name, recorded as the actor in the audit log.
    pub name: String,
    /// SHA-256 (hex) of its bearer token.
    pub token_sha256: String,
}

/// `[retention]`: retention period per data category, in days.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// IP events asked for as IP history (traffic data).
    pub ip_history_days: u32,
    /// IP events asked for to identify who was behind an address.
    pub identification_days: u32,
    /// Identifier intervals (phone numbers, usernames) after they ended.
    pub subscriber_days: u32,
}

/// `[audit]`: checkpoint signing and auditor access.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Log origin (checkpoint first line and key name); empty derives it from the deployment id.
    pub origin: String,
    /// The Ed25519 signing key (PKCS#8 PEM, mode 0600), shared by every instance.
    pub signing_key_path: PathBuf,
    /// Whether `writ serve` creates the key on a first start (no checkpoint signed yet).
    pub create_key_if_missing: bool,
    /// The Ed25519 entry key that authenticates each entry as it is appended (PKCS#8 PEM, mode
    /// 0600), shared by every instance; another key than the checkpoint key.
    pub entry_key_path: PathBuf,
    /// Seconds between full verifications of the log in the background; 0 for none.
    pub verify_interval_secs: u64,
    /// Copied from `server.public_host` when the settings are loaded: names the log when
    /// `origin` is empty.
    #[serde(skip)]
    pub public_host: String,
    /// Where the latest signed checkpoint is kept outside the database.
    pub checkpoint_path: PathBuf,
    /// Seconds between checkpoint attempts; 0 signs only on demand.
    pub checkpoint_interval_secs: u64,
    /// SHA-256 (hex) of each auditor API token.
    pub auditor_token_sha256: Vec<String>,
    /// Where new checkpoints are POSTed; empty for none.
    pub webhook_url: SecretString,
    /// Timeout of one webhook delivery, in seconds.
    pub webhook_timeout_secs: u64,
    /// Where the checkpoint key lives: `file` (`signing_key_path`) or `pkcs11`
    /// (`[audit.pkcs11]`).
    pub signing_key: KeyLocation,
    /// The token holding the checkpoint key when `signing_key` is `pkcs11`.
    pub pkcs11: Pkcs11Settings,
    /// Where the entry key lives: `file` (`entry_key_path`) or `pkcs11` (`[audit.entry_pkcs11]`).
    pub entry_key: KeyLocation,
    /// The token holding the entry key when `entry_key` is `pkcs11`.
    pub entry_pkcs11: Pkcs11Settings,
}

/// A DNS host name: dot-separated labels of ASCII letters, digits and inner hyphens.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A string setting that may hold a credential: shown as `***` everywhere but to its user.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (the feature it configures is off).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn shown(&self) -> &'static str {
        if self.0.is_empty() { "" } else { "***" }
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shown())
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

/// `[server]`: the HTTP listener.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// The host name clients reach this deployment at (e.g. `writ.example.org`); empty when
    /// not configured. Names the audit log when `audit.origin` is empty.
    #[serde(default)]
    pub public_host: String,
    /// Port to bind; 0 asks the OS for a free one.
    pub port: u16,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Largest JSON body accepted.
    pub json_limit_bytes: usize,
    /// Largest URL-encoded form (the workspace's forms) accepted.
    pub form_limit_bytes: usize,
    /// Most bytes the request line and headers may take together; more is a 431.
    pub max_header_bytes: usize,
    /// Most header lines a request may carry; more is a 431.
    pub max_headers: usize,
    /// Seconds a new connection has to send its first request's headers (against slowloris);
    /// past it the connection gets 408 and is closed. A later request on a kept-alive
    /// connection has `keep_alive_secs` plus this from the previous response's end.
    pub client_request_timeout_secs: u64,
    /// Seconds a closing connection may take to shut down before it is dropped.
    pub client_disconnect_timeout_secs: u64,
    /// Seconds a request body read by Writ's own handlers (order API, HI-1, ingest, the
    /// workspace upload) may take to arrive in full; past it the request gets 408.
    pub body_read_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open; 0 closes every connection after one
    /// request.
    pub keep_alive_secs: u64,
    /// Send `Strict-Transport-Security` although Writ serves plain HTTP, because a
    /// TLS-terminating reverse proxy is in front of it.
    pub behind_tls_proxy: bool,
    /// `max-age` of the `Strict-Transport-Security` header, in seconds.
    pub hsts_max_age_secs: u64,
    /// TLS on Writ's own listener; off while both files are empty.
    pub tls: TlsSettings,
}

/// `[server.tls]`: serve HTTPS (TLS 1.2 and 1.3, rustls) with a PEM certificate and key.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file holding the certificate chain, the server's own certificate first.
    pub certificate_file: String,
    /// PEM file holding the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key_file: String,
    /// PEM file of the CA(s) whose client certificates Writ asks for (mutual TLS). Empty: no
    /// client certificates are asked for.
    #[serde(default)]
    pub client_ca_file: String,
    /// Path prefixes on which a request must come over a connection with a verified client
    /// certificate whose pin an active authority holds (`writ authority pin`); every other
    /// path works without one. Used only with `client_ca_file`.
    #[serde(default = "default_client_auth_prefixes")]
    pub client_auth_prefixes: Vec<String>,
}

fn default_client_auth_prefixes() -> Vec<String> {
    vec!["/eevidence/".to_owned()]
}

impl TlsSettings {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.certificate_file.is_empty() || !self.private_key_file.is_empty()
    }

    /// Whether client certificates are asked for (mutual TLS on the protected prefixes).
    pub fn client_auth(&self) -> bool {
        self.enabled() && !self.client_ca_file.is_empty()
    }
}

impl ServerSettings {
    /// Whether responses carry `Strict-Transport-Security`: only when clients reach Writ
    /// over TLS, its own or a proxy's.
    pub fn hsts(&self) -> bool {
        self.tls.enabled() || self.behind_tls_proxy
    }
}

/// `[database]`: where the data lives and how connections behave.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: DatabaseUrl,
    /// Pool size per instance.
    pub pool_size: u32,
    /// Wait for a pooled connection, in seconds.
    pub connect_timeout_secs: u64,
    /// SQLite writer lock wait, in milliseconds.
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite `synchronous` pragma.
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite page cache per connection, in MiB.
    pub sqlite_cache_mib: u32,
    /// SQLite WAL size, in pages, past which a commit copies the WAL back into the database
    /// (command-line tools; the server checkpoints from a background task instead).
    pub sqlite_wal_autocheckpoint_pages: u32,
    /// Whether `writ serve` applies pending migrations at start.
    pub migrate_on_start: bool,
    /// TLS to PostgreSQL (`[database.tls]`).
    #[serde(default)]
    pub tls: DatabaseTlsSettings,
}

/// `[database.tls]`: TLS to a PostgreSQL server, done by Writ itself on rustls (see
/// `db::tls`), with libpq's `sslmode` meanings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseTlsSettings {
    /// `disable`, `require`, `verify-ca` or `verify-full`.
    pub mode: DatabaseTlsMode,
    /// PEM file of the CA(s) the server's certificate must chain to (`sslrootcert`); needed
    /// by `verify-ca` and `verify-full`.
    #[serde(default)]
    pub ca_file: String,
}

/// How a PostgreSQL connection is protected, as libpq's `sslmode` of the same name.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTlsMode {
    /// Plain TCP (on a private network or a local socket).
    #[default]
    Disable,
    /// TLS, but any server certificate is accepted: protects against eavesdropping only.
    Require,
    /// TLS, and the server's certificate chains to `ca_file`; its host name is not checked.
    VerifyCa,
    /// TLS, the certificate chains to `ca_file` and is issued for the host in the URL.
    VerifyFull,
}

impl DatabaseTlsMode {
    /// The libpq name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// SQLite durability level (the `synchronous` pragma).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Every commit is on disk before it is acknowledged.
    Full,
    /// WAL commits are synced at checkpoints; a power cut may lose the last commits.
    Normal,
}

impl SqliteSynchronous {
    /// The pragma value.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// `[log]`: logging output.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// Default EnvFilter directive.
    pub level: String,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Which database backend a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// A validated database URL. It may embed a password, so `Debug`, `Display` and `Serialize`
/// show it with the password replaced.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `postgres://...` or `postgresql://...`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "database URL `sqlite://` needs a file path, e.g. sqlite://data/writ.db".into(),
                );
            }
            if path == ":memory:" {
                return Err("database URL: an in-memory SQLite database cannot be shared by the pool; give a file path".into());
            }
            return Ok(Self {
                raw: raw.to_owned(),
                backend: Backend::Sqlite,
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self {
                raw: raw.to_owned(),
                backend: Backend::Postgres,
            });
        }
        Err("database URL must start with sqlite:// or postgres:// (or postgresql://)".into())
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For SQLite, the database file path.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.raw.strip_prefix("sqlite://").map(Path::new)
    }

    /// The first libpq TLS parameter in the URL's query that Writ's libpq (built without TLS)
    /// cannot honour, e.g. `sslmode=require` or `sslrootcert`: `[database.tls]` replaces them.
    /// `sslmode=disable`, `allow` and `prefer` are harmless (they allow plain connections).
    pub fn libpq_tls_param(&self) -> Option<String> {
        let (_, query) = self.raw.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let harmless = key == "sslmode" && matches!(value, "disable" | "allow" | "prefer");
            let tls = matches!(
                key,
                "sslmode"
                    | "sslrootcert"
                    | "sslcert"
                    | "sslkey"
                    | "sslcrl"
                    | "sslcrldir"
                    | "sslnegotiation"
                    | "requiressl"
                    | "channel_binding"
            );
            (tls && !harmless).then(|| key.to_owned())
        })
    }

    /// The URL with its secret in it, for the database driver only.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.raw)
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host...` (and a `password=` query
/// parameter) with `***`.
fn redact_url_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find('/')
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Settings keys whose values are secret: their values never appear in error messages.
const SECRET_KEYS: &[&str] = &[
    "database.url",
    "audit.webhook_url",
    "mail.smtp_password",
    "mail.webhooks.notice_secret",
    "mail.webhooks.paging_secret",
];

/// Why the settings could not be loaded. Each variant names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A configuration file could not be read or parsed.
    #[error("cannot read configuration file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A key is unknown, missing, or has a bad value.
    #[error("configuration key `{key}` ({origin}): {reason}")]
    Key {
        /// Dotted key, e.g. `server.port`.
        key: String,
        /// Where the value came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where to look for configuration.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Directory holding `config/default.toml`; the built-in copy is used when absent.
    pub base_dir: Option<PathBuf>,
    /// The optional environment file layered over the defaults.
    pub file: Option<PathBuf>,
    /// Environment variables; `None` reads the process environment.
    pub env: Option<HashMap<String, String>>,
}

impl Settings {
    /// Loads and validates settings from the given sources.
    pub fn load(sources: &Sources) -> Result<Self, SettingsError> {
        let env: HashMap<String, String> = sources
            .env
            .clone()
            .unwrap_or_else(|| std::env::vars().collect());
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("WRIT_")
                    && !RESERVED_ENV.contains(&k.as_str())
                    && !RESERVED_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .collect();

        let base = sources
            .base_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        let default_path = base.join("config").join("default.toml");
        let mut builder = config::Config::builder();
        builder = if default_path.is_file() {
            let text = read_file(&default_path)?;
            builder.add_source(config::File::from_str(&text, config::FileFormat::Toml))
        } else {
            builder.add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
        };
        let default_origin = if default_path.is_file() {
            default_path.display().to_string()
        } else {
            "built-in defaults".to_owned()
        };
        if let Some(file) = &sources.file {
            let text = read_file(file)?;
            // Parse on our own first so a syntax error names the file, not an anonymous string.
            text.parse::<toml::Table>()
                .map_err(|e| SettingsError::File {
                    path: file.clone(),
                    reason: e.to_string(),
                })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("WRIT")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("audit.auditor_token_sha256")
                .with_list_parse_key("mail.legal_team")
                .with_list_parse_key("mail.auditors")
                .with_list_parse_key("metrics.allowed_networks")
                .with_list_parse_key("server.tls.client_auth_prefixes")
                .source(Some(env.clone())),
        );
        let cfg = builder.build().map_err(|e| SettingsError::Key {
            key: "(configuration)".into(),
            origin: "merging sources".into(),
            reason: e.to_string(),
        })?;

        let origin_of = |key: &str| -> String {
            let var = format!("WRIT_{}", key.replace('.', "__").to_uppercase());
            if env.contains_key(&var) {
                return format!("from environment variable {var}");
            }
            if let Some(file) = &sources.file
                && file_has_key(file, key)
            {
                return format!("from {}", file.display());
            }
            format!("from {default_origin}")
        };

        let mut settings: Settings = serde_path_to_error::deserialize(cfg).map_err(|e| {
            let key = e.path().to_string();
            let reason = if SECRET_KEYS.contains(&key.as_str())
                && !e.inner().to_string().starts_with("database URL")
            {
                "bad value (not shown: this setting may hold a secret)".to_owned()
            } else {
                // The config crate appends its own " for key `x` in <origin>": we say both.
                let msg = e.inner().to_string();
                msg.split(" for key `").next().unwrap_or(&msg).to_owned()
            };
            SettingsError::Key {
                origin: origin_of(&key),
                key,
                reason,
            }
        })?;
        settings
            .validate()
            .map_err(|(key, reason)| SettingsError::Key {
                origin: origin_of(key),
                key: key.to_owned(),
                reason,
            })?;
        settings.audit.public_host = settings.server.public_host.clone();
        let raw_env = |name: &str| match &sources.env {
            Some(env) => env.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        for pkcs11 in [
            &mut settings.audit.pkcs11,
            &mut settings.audit.entry_pkcs11,
            &mut settings.package.pkcs11,
        ] {
            if let Some(pin) = raw_env(&pkcs11.pin_env) {
                pkcs11.pin = SecretString::new(pin);
            }
        }
        Ok(settings)
    }

    /// Checks what types alone cannot: ranges and cross-field rules.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        self.mail.webhooks.validate()?;
        if self.server.host.trim().is_empty() {
            return Err(("server.host", "must not be empty".into()));
        }
        if self.server.json_limit_bytes < 1024 {
            return Err(("server.json_limit_bytes", "must be at least 1024".into()));
        }
        if self.server.form_limit_bytes < 1024 {
            return Err(("server.form_limit_bytes", "must be at least 1024".into()));
        }
        // actix-web's parser refuses more than 96 headers and 128 KiB of head on its own.
        if !(1024..=131_072).contains(&self.server.max_header_bytes) {
            return Err(("server.max_header_bytes", "must be 1024 to 131072".into()));
        }
        if !(1..=96).contains(&self.server.max_headers) {
            return Err(("server.max_headers", "must be 1 to 96".into()));
        }
        if !(1..=300).contains(&self.server.client_request_timeout_secs) {
            return Err((
                "server.client_request_timeout_secs",
                "must be 1 to 300".into(),
            ));
        }
        if !(1..=300).contains(&self.server.client_disconnect_timeout_secs) {
            return Err((
                "server.client_disconnect_timeout_secs",
                "must be 1 to 300".into(),
            ));
        }
        if !(1..=3600).contains(&self.server.body_read_timeout_secs) {
            return Err(("server.body_read_timeout_secs", "must be 1 to 3600".into()));
        }
        if self.server.keep_alive_secs > 3600 {
            return Err(("server.keep_alive_secs", "must be 0 to 3600".into()));
        }
        if self.server.hsts() && self.server.hsts_max_age_secs == 0 {
            return Err((
                "server.hsts_max_age_secs",
                "must be at least 1 when TLS is on (a zero max-age tells browsers to forget HSTS)"
                    .into(),
            ));
        }
        let tls = &self.server.tls;
        if tls.certificate_file.is_empty() != tls.private_key_file.is_empty() {
            let missing = if tls.certificate_file.is_empty() {
                "server.tls.certificate_file"
            } else {
                "server.tls.private_key_file"
            };
            return Err((
                missing,
                "TLS needs both a certificate file and a private key file".into(),
            ));
        }
        if tls.client_ca_file.is_empty() {
            // No mutual TLS: the prefixes are not used.
        } else if !tls.enabled() {
            return Err((
                "server.tls.client_ca_file",
                "client certificates need TLS on Writ's own listener (server.tls.certificate_file and private_key_file)".into(),
            ));
        } else if tls.client_auth_prefixes.is_empty() {
            return Err((
                "server.tls.client_auth_prefixes",
                "must name at least one path prefix (e.g. /eevidence/) when client_ca_file is set"
                    .into(),
            ));
        } else if let Some(bad) = tls
            .client_auth_prefixes
            .iter()
            .find(|p| !p.starts_with('/') || p.len() < 2)
        {
            return Err((
                "server.tls.client_auth_prefixes",
                format!(
                    "`{bad}` is not a path prefix such as /eevidence/ (it must start with / and name a path)"
                ),
            ));
        }
        let db_tls = &self.database.tls;
        if db_tls.mode != DatabaseTlsMode::Disable
            && self.database.url.backend() != Backend::Postgres
        {
            return Err((
                "database.tls.mode",
                "TLS applies to PostgreSQL only; database.url is a SQLite file".into(),
            ));
        }
        if matches!(
            db_tls.mode,
            DatabaseTlsMode::VerifyCa | DatabaseTlsMode::VerifyFull
        ) && db_tls.ca_file.is_empty()
        {
            return Err((
                "database.tls.ca_file",
                format!(
                    "database.tls.mode = \"{}\" needs the CA certificate file the server's certificate must chain to",
                    db_tls.mode.as_str()
                ),
            ));
        }
        if let Some(param) = self.database.url.libpq_tls_param() {
            return Err((
                "database.url",
                format!(
                    "the URL sets `{param}`: Writ's libpq is built without TLS; set database.tls.mode (and database.tls.ca_file) instead"
                ),
            ));
        }
        self.etsi.outbound_tls.check().map_err(|(field, why)| {
            let key = match field {
                "certificate_file" => "etsi.outbound_tls.certificate_file",
                _ => "etsi.outbound_tls.private_key_file",
            };
            (key, why.to_owned())
        })?;
        if self.database.pool_size == 0 {
            return Err(("database.pool_size", "must be at least 1".into()));
        }
        if self.database.connect_timeout_secs == 0 {
            return Err(("database.connect_timeout_secs", "must be at least 1".into()));
        }
        if let Some(bad) = self
            .audit
            .auditor_token_sha256
            .iter()
            .find(|h| h.len() != 64 || hex::decode(h).is_err())
        {
            return Err((
                "audit.auditor_token_sha256",
                format!(
                    "`{bad}` is not a SHA-256 in hex (64 characters); `writ audit token` makes one"
                ),
            ));
        }
        let hook = self.audit.webhook_url.expose();
        if !hook.is_empty() && !hook.starts_with("https://") && !hook.starts_with("http://") {
            return Err((
                "audit.webhook_url",
                "must be an http:// or https:// URL, or empty".into(),
            ));
        }
        if !self.server.public_host.is_empty() && !is_host_name(&self.server.public_host) {
            return Err((
                "server.public_host",
                "must be a host name such as writ.example.org (letters, digits, `-` and `.`)"
                    .into(),
            ));
        }
        for (location, pkcs11, keys) in [
            (
                self.audit.signing_key,
                &self.audit.pkcs11,
                [
                    "audit.pkcs11.pin_env",
                    "audit.pkcs11.module",
                    "audit.pkcs11.token_label",
                    "audit.pkcs11.key_label",
                ],
            ),
            (
                self.audit.entry_key,
                &self.audit.entry_pkcs11,
                [
                    "audit.entry_pkcs11.pin_env",
                    "audit.entry_pkcs11.module",
                    "audit.entry_pkcs11.token_label",
                    "audit.entry_pkcs11.key_label",
                ],
            ),
            (
                self.package.signing_key,
                &self.package.pkcs11,
                [
                    "package.pkcs11.pin_env",
                    "package.pkcs11.module",
                    "package.pkcs11.token_label",
                    "package.pkcs11.key_label",
                ],
            ),
        ] {
            if !pkcs11.pin_env.is_empty() && !pkcs11.pin_env.starts_with(PIN_ENV_PREFIX) {
                return Err((
                    keys[0],
                    format!(
                        "must start with {PIN_ENV_PREFIX} (so that it is never read as a setting)"
                    ),
                ));
            }
            if location == KeyLocation::Pkcs11 {
                let fields = [
                    pkcs11.module.as_os_str().is_empty(),
                    pkcs11.token_label.is_empty(),
                    pkcs11.key_label.is_empty(),
                ];
                if let Some(i) = fields.iter().position(|empty| *empty) {
                    return Err((
                        keys[i + 1],
                        "must be set when the key is in a PKCS#11 token".into(),
                    ));
                }
            }
        }
        if self.audit.webhook_timeout_secs == 0 {
            return Err(("audit.webhook_timeout_secs", "must be at least 1".into()));
        }
        if self.metadata.import_batch_rows == 0 || self.metadata.import_batch_rows > 1_000_000 {
            return Err(("metadata.import_batch_rows", "must be 1 to 1000000".into()));
        }
        if self.database.sqlite_cache_mib == 0 || self.database.sqlite_cache_mib > 4096 {
            return Err(("database.sqlite_cache_mib", "must be 1 to 4096".into()));
        }
        if self.database.sqlite_wal_autocheckpoint_pages < 100 {
            return Err((
                "database.sqlite_wal_autocheckpoint_pages",
                "must be at least 100".into(),
            ));
        }
        if self.metadata.ingest_limit_bytes < 1024 {
            return Err((
                "metadata.ingest_limit_bytes",
                "must be at least 1024".into(),
            ));
        }
        for feeder in &self.metadata.feeders {
            let name_ok = !feeder.name.is_empty()
                && feeder.name.len() <= 64
                && feeder
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !name_ok {
                return Err((
                    "metadata.feeders",
                    format!(
                        "feeder name `{}` must be 1 to 64 letters, digits, - _ .",
                        feeder.name
                    ),
                ));
            }
            if feeder.token_sha256.len() != 64 || hex::decode(&feeder.token_sha256).is_err() {
                return Err((
                    "metadata.feeders",
                    format!(
                        "feeder `{}`: token_sha256 must be a SHA-256 in hex",
                        feeder.name
                    ),
                ));
            }
        }
        for (key, days) in [
            ("retention.ip_history_days", self.retention.ip_history_days),
            (
                "retention.identification_days",
                self.retention.identification_days,
            ),
            ("retention.subscriber_days", self.retention.subscriber_days),
        ] {
            if days == 0 {
                return Err((key, "must be at least 1 day".into()));
            }
        }
        for (key, value) in [
            (
                "api.token_max_lifetime_secs",
                u64::try_from(self.api.token_max_lifetime_secs).unwrap_or(0),
            ),
            (
                "api.document_limit_bytes",
                self.api.document_limit_bytes as u64,
            ),
            (
                "api.rate_limit_per_minute",
                u64::from(self.api.rate_limit_per_minute),
            ),
            (
                "api.auth_failure_limit_per_minute",
                u64::from(self.api.auth_failure_limit_per_minute),
            ),
            ("api.jobs_interval_secs", self.api.jobs_interval_secs),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        for (key, list) in [
            ("mail.legal_team", &self.mail.legal_team),
            ("mail.auditors", &self.mail.auditors),
        ] {
            if let Some(bad) = list.iter().position(|a| !looks_like_address(a)) {
                return Err((key, format!("entry {} is not an e-mail address", bad + 1)));
            }
        }
        if !looks_like_address(&self.mail.from) && !self.mail.from.ends_with("@localhost") {
            return Err(("mail.from", "is not an e-mail address".into()));
        }
        let etsi = &self.etsi;
        if etsi.country_code.len() != 2
            || !etsi.country_code.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err((
                "etsi.country_code",
                "must be two upper-case letters (ISO 3166-1 alpha-2, or XX)".into(),
            ));
        }
        if etsi.unique_identifier.is_empty()
            || etsi.unique_identifier.len() > 256
            || !etsi.unique_identifier.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err((
                "etsi.unique_identifier",
                "must be 1 to 256 visible ASCII characters".into(),
            ));
        }
        if etsi.message_limit_bytes < 1024 {
            return Err(("etsi.message_limit_bytes", "must be at least 1024".into()));
        }
        if !(8..=256).contains(&etsi.max_depth) {
            return Err(("etsi.max_depth", "must be between 8 and 256".into()));
        }
        if etsi.delivery_max_attempts == 0 {
            return Err(("etsi.delivery_max_attempts", "must be at least 1".into()));
        }
        if etsi.delivery_timeout_secs == 0 {
            return Err(("etsi.delivery_timeout_secs", "must be at least 1".into()));
        }
        if self.mail.max_attempts == 0 {
            return Err(("mail.max_attempts", "must be at least 1".into()));
        }
        if self.api.token_max_lifetime_secs > 3600 {
            return Err((
                "api.token_max_lifetime_secs",
                "must be at most 3600: request tokens are short-lived".into(),
            ));
        }
        let country = &self.deployment.establishment;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err((
                "deployment.establishment",
                format!("`{country}` is not an ISO 3166-1 alpha-2 code such as IE or US"),
            ));
        }
        if let Some(bad) = self
            .deployment
            .legal_representative_in
            .iter()
            .find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err((
                "deployment.legal_representative_in",
                format!("`{bad}` is not an ISO 3166-1 alpha-2 code"),
            ));
        }
        if let Some(bad) = self
            .deployment
            .offers_service_in
            .iter()
            .find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err((
                "deployment.offers_service_in",
                format!("`{bad}` is not an ISO 3166-1 alpha-2 code"),
            ));
        }
        let token = &self.metrics.token_sha256;
        if !token.is_empty() && (token.len() != 64 || hex::decode(token).is_err()) {
            return Err((
                "metrics.token_sha256",
                "is not a SHA-256 in hex (64 characters), nor empty".into(),
            ));
        }
        for (i, network) in self.metrics.allowed_networks.iter().enumerate() {
            if let Err(why) = crate::net::IpNetwork::parse(network) {
                return Err((
                    "metrics.allowed_networks",
                    format!("entry {}: {why}", i + 1),
                ));
            }
        }
        self.transparency.check()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err((
                "log.level",
                format!(
                    "`{}` is not a valid filter (e.g. \"info\" or \"info,writ=debug\")",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }

    /// The settings as TOML, secrets redacted: what `writ config show` prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// A plausible e-mail address (the mail module checks it fully when it sends).
fn looks_like_address(a: &str) -> bool {
    a.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !a.chars().any(|c| c.is_whitespace() || c == ',')
    })
}

fn read_file(path: &Path) -> Result<String, SettingsError> {
    std::fs::read_to_string(path).map_err(|e| SettingsError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Whether the TOML file sets the dotted `key` (used only to name a value's origin).
fn file_has_key(path: &Path, key: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return false;
    };
    let mut node = &toml::Value::Table(table);
    for part in key.split('.') {
        match node.get(part) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(env: &[(&str, &str)], file: Option<&str>) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let file_path = file.map(|text| {
            let p = dir.path().join("env.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        Settings::load(&Sources {
            base_dir: Some(dir.path().to_owned()),
            file: file_path,
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        })
    }

    #[test]
    fn defaults_load_and_select_sqlite() {
        let s = load_with(&[], None).unwrap();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.server.host, "127.0.0.1");
        assert_eq!(s.database.url.backend(), Backend::Sqlite);
        assert_eq!(
            s.database.url.sqlite_path(),
            Some(Path::new("data/writ.db"))
        );
        assert_eq!(s.database.sqlite_synchronous, SqliteSynchronous::Full);
    }

    #[test]
    fn transparency_banding_rules_are_checked_naming_the_key() {
        let s = load_with(&[], None).unwrap();
        assert_eq!(s.transparency.threshold, 10);
        let err = load_with(&[("WRIT_TRANSPARENCY__THRESHOLD", "0")], None).unwrap_err();
        assert!(err.to_string().contains("transparency.threshold"), "{err}");
        let file = "[transparency]\n[[transparency.categories]]\nname = \"a\"\ninstruments = [\"us.fisa\"]\nband = 250\ndelay_days = 180\n[[transparency.categories]]\nname = \"b\"\ninstruments = [\"us.fisa\"]\nband = 0\ndelay_days = 0\n";
        let err = load_with(&[], Some(file)).unwrap_err().to_string();
        assert!(
            err.contains("transparency.categories") && err.contains("in two categories"),
            "{err}"
        );
        let ok = load_with(
            &[],
            Some(&file.replace("[\"us.fisa\"]\nband = 0", "[\"us.nsl\"]\nband = 0")),
        )
        .unwrap();
        assert_eq!(ok.transparency.categories.len(), 2);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let s = load_with(
            &[
                ("WRIT_SERVER__PORT", "9100"),
                ("WRIT_CONFIG_FILE", "ignored"),
                ("WRIT_TEST_POSTGRES_URL", "x"),
            ],
            Some("[server]\nport = 9000\nhost = \"0.0.0.0\"\n"),
        )
        .unwrap();
        assert_eq!(s.server.port, 9100);
        assert_eq!(s.server.host, "0.0.0.0");
    }

    #[test]
    fn unknown_key_in_file_is_named_with_its_file() {
        let err = load_with(&[], Some("[server]\nprot = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`server.prot`"), "{err}");
        assert!(err.contains("env.toml"), "{err}");
    }

    #[test]
    fn unknown_key_in_environment_is_named_with_its_variable() {
        let err = load_with(&[("WRIT_DATABASE__POOLSIZE", "3")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`database.poolsize`"), "{err}");
        assert!(err.contains("WRIT_DATABASE__POOLSIZE"), "{err}");
    }

    #[test]
    fn unknown_section_is_named() {
        let err = load_with(&[], Some("[serverr]\nport = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`serverr`"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = load_with(&[("WRIT_SERVER__PORT", "eighty")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`server.port`"), "{err}");
        assert!(err.contains("WRIT_SERVER__PORT"), "{err}");
        let err = load_with(&[("WRIT_SERVER__PORT", "70000")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`server.port`"), "{err}");
        let err = load_with(&[("WRIT_LOG__FORMAT", "xml")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`log.format`"), "{err}");
        let err = load_with(&[("WRIT_DATABASE__POOL_SIZE", "0")], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`database.pool_size`") && err.contains("at least 1"),
            "{err}"
        );
        let err = load_with(&[("WRIT_LOG__LEVEL", "info,[[[")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`log.level`"), "{err}");
    }

    #[test]
    fn audit_settings_are_validated() {
        let h = "a".repeat(64);
        let s = load_with(
            &[("WRIT_AUDIT__AUDITOR_TOKEN_SHA256", &format!("{h},{h}"))],
            None,
        )
        .unwrap();
        assert_eq!(s.audit.auditor_token_sha256.len(), 2);
        let err = load_with(&[("WRIT_AUDIT__AUDITOR_TOKEN_SHA256", "hunter2")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`audit.auditor_token_sha256`"), "{err}");
        let err = load_with(&[("WRIT_AUDIT__WEBHOOK_URL", "ftp://x")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`audit.webhook_url`"), "{err}");
        let s = load_with(
            &[(
                "WRIT_AUDIT__WEBHOOK_URL",
                "https://hooks.example/abc?token=hunter2",
            )],
            None,
        )
        .unwrap();
        let shown = format!("{s:?} {}", s.to_redacted_toml());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn metrics_settings_are_validated() {
        let s = load_with(&[], None).unwrap();
        assert!(s.metrics.token_sha256.is_empty() && s.metrics.allowed_networks.is_empty());
        let h = "b".repeat(64);
        let s = load_with(
            &[
                ("WRIT_METRICS__TOKEN_SHA256", &h),
                (
                    "WRIT_METRICS__ALLOWED_NETWORKS",
                    "127.0.0.1/32,10.0.0.0/8,::1/128",
                ),
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.metrics.token_sha256, h);
        assert_eq!(
            s.metrics.allowed_networks,
            ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
        );
        let s = load_with(
            &[],
            Some("[metrics]\nallowed_networks = [\"192.168.0.0/16\"]\n"),
        )
        .unwrap();
        assert_eq!(s.metrics.allowed_networks, ["192.168.0.0/16"]);
        let err = load_with(&[("WRIT_METRICS__TOKEN_SHA256", "hunter2")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`metrics.token_sha256`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        for bad in ["10.0.0.0/8,10.0.0.300/32", "localhost", "10.1.0.0/8"] {
            let err = load_with(&[("WRIT_METRICS__ALLOWED_NETWORKS", bad)], None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("`metrics.allowed_networks`"), "{err}");
            assert!(err.contains("WRIT_METRICS__ALLOWED_NETWORKS"), "{err}");
        }
        let err = load_with(&[], Some("[metrics]\nallowed_networks = [\"10.0.0.1\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`metrics.allowed_networks`") && err.contains("entry 1"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_file_is_named() {
        let err = Settings::load(&Sources {
            base_dir: None,
            file: Some(PathBuf::from("/nonexistent/writ.toml")),
            env: Some(HashMap::new()),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/writ.toml"), "{err}");
        let err = load_with(&[], Some("[server\nport = 1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("env.toml"), "{err}");
    }

    #[test]
    fn database_url_password_is_never_shown() {
        let s = load_with(
            &[(
                "WRIT_DATABASE__URL",
                "postgres://writ:hunter2@db:5432/writ?password=hunter3",
            )],
            None,
        )
        .unwrap();
        assert_eq!(s.database.url.backend(), Backend::Postgres);
        let shown = format!("{:?} {} {}", s, s.database.url, s.to_redacted_toml());
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://writ:***@db:5432/writ"),
            "{shown}"
        );

        let err = load_with(&[("WRIT_DATABASE__URL", "mysql://root:hunter2@db/x")], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`database.url`") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(err.contains("sqlite://"), "{err}");
    }
}
