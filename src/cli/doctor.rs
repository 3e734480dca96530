//! `writ doctor`: checks a deployment before it serves (or after something went wrong) and
//! prints, for each thing that is wrong, what to do about it.
//!
//! Read-only: it creates no key, applies no migration and signs nothing, so it is safe beside a
//! running `writ serve`. Exit code 0 when every check passed, 1 when at least one needs fixing.

use std::fmt::Display;
use std::net::ToSocketAddrs;
use std::time::Duration;

use crate::audit::{checkpoint, keys, service};
use crate::db::tls::PgTls;
use crate::db::{Db, DbConn, migrations};
use crate::disclosure::keys as package_keys;
use crate::settings::{DatabaseTlsMode, MailTransport, Settings};

/// How long the mail relay check waits for a TCP connection.
const RELAY_TIMEOUT: Duration = Duration::from_secs(3);

/// The outcome of the checks, printed as they run.
#[derive(Debug, Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&mut self, area: &str, detail: impl Display) {
        println!("ok    {area}: {detail}");
    }

    fn fix(&mut self, area: &str, problem: impl Display, remedy: impl Display) {
        self.problems += 1;
        println!("FIX   {area}: {problem}\n        -> {remedy}");
    }

    fn skip(&mut self, area: &str, why: impl Display) {
        println!("skip  {area}: {why}");
    }
}

/// Runs every check; fails (exit code 1) when one of them found something to fix.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let mut report = Report::default();
    // Settings::load already refused an invalid file or variable (exit code 78) before this.
    report.ok(
        "configuration",
        format_args!(
            "loaded; database backend {}",
            settings.database.url.backend()
        ),
    );
    let conn = check_database(&settings, &mut report);
    check_keys(&settings, &mut report);
    check_mail(&settings, &mut report);
    match conn {
        Some((_db, mut conn)) => check_checkpoint(&settings, &mut conn, &mut report),
        None => report.skip(
            "outside checkpoint",
            "needs a reachable, migrated database (see above)",
        ),
    }
    check_policies(&settings, &mut report);
    if report.problems > 0 {
        anyhow::bail!(
            "{} problem(s) to fix before this deployment is ready (see FIX above)",
            report.problems
        );
    }
    println!("all checks passed");
    Ok(())
}

/// TLS to PostgreSQL: off (and whether that is a risk), or the handshake's outcome.
fn check_database_tls(settings: &Settings, report: &mut Report) {
    let db = &settings.database;
    if db.url.backend() != crate::settings::Backend::Postgres {
        report.skip("database TLS", "SQLite is a local file");
        return;
    }
    let tls = match PgTls::from_settings(db.url.expose(), &db.tls) {
        Ok(Some(tls)) => tls,
        Ok(None) => {
            report.ok(
                "database TLS",
                "off (database.tls.mode = \"disable\"): plain TCP, for a private network or a local server only",
            );
            return;
        }
        Err(e) => {
            report.fix(
                "database TLS",
                e,
                "fix [database.tls] or database.url (see README, PostgreSQL over TLS)",
            );
            return;
        }
    };
    match tls.probe(Duration::from_secs(db.connect_timeout_secs)) {
        Ok(n) => report.ok(
            "database TLS",
            format_args!(
                "{} to {}: {} {}{}",
                tls.mode().as_str(),
                tls.server(),
                n.protocol,
                n.cipher_suite,
                match tls.mode() {
                    DatabaseTlsMode::VerifyFull =>
                        ", certificate chains to database.tls.ca_file and names the host",
                    DatabaseTlsMode::VerifyCa =>
                        ", certificate chains to database.tls.ca_file (host name not checked)",
                    _ => ", server certificate NOT verified (mode require)",
                }
            ),
        ),
        Err(e) => report.fix(
            "database TLS",
            e,
            "give the server's CA in database.tls.ca_file and its certificate's host name in database.url, or turn ssl on in PostgreSQL",
        ),
    }
}

/// Reachable and migrated; returns a connection when both hold.
fn check_database(settings: &Settings, report: &mut Report) -> Option<(Db, crate::db::PooledConn)> {
    check_database_tls(settings, report);
    let db = match Db::open(&settings.database) {
        Ok(db) => db,
        Err(e) => {
            report.fix(
                "database",
                format_args!("cannot open: {e}"),
                "check database.url and that its folder is writable",
            );
            return None;
        }
    };
    let mut conn = match db.conn() {
        Ok(c) => c,
        Err(e) => {
            report.fix(
                "database",
                format_args!("not reachable: {e}"),
                "check database.url, that the server runs and accepts this user",
            );
            return None;
        }
    };
    report.ok("database", format_args!("reachable ({})", db.backend()));
    match migrations::status(&mut conn) {
        Err(e) => {
            report.fix(
                "migrations",
                format_args!("cannot read them: {e}"),
                "check the database user's rights",
            );
            None
        }
        Ok(s) if !s.pending.is_empty() => {
            report.fix(
                "migrations",
                format_args!("{} pending: {}", s.pending.len(), s.pending.join(", ")),
                "run `writ migrate` (back up first: see docs/operations.md)",
            );
            None
        }
        Ok(s) if !s.unknown.is_empty() => {
            report.fix(
                "migrations",
                format_args!(
                    "applied by a newer Writ: {} unknown to this binary",
                    s.unknown.join(", ")
                ),
                "run the newer version of `writ`",
            );
            None
        }
        Ok(s) => {
            report.ok(
                "migrations",
                format_args!("all {} applied", s.applied.len()),
            );
            check_durability(&mut conn, report);
            Some((db, conn))
        }
    }
}

/// Whether what Writ acknowledges survives a crash: the database's flush settings.
fn check_durability(conn: &mut DbConn, report: &mut Report) {
    match crate::db::flush::durability_risks(conn) {
        Err(e) => report.fix(
            "durability",
            format_args!("cannot read the database's flush settings: {e}"),
            "check the database user's rights",
        ),
        Ok(risks) if risks.is_empty() => report.ok(
            "durability",
            "every commit is on disk before Writ acknowledges it",
        ),
        Ok(risks) => {
            for risk in risks {
                report.fix(
                    "durability",
                    risk,
                    "PostgreSQL: set fsync = on and synchronous_commit = on (or remote_write, remote_apply) for Writ's role and database; SQLite: leave database.sqlite_synchronous at \"full\"",
                );
            }
        }
    }
}

/// The three keys exist and load (files: mode 0600; keys in a PKCS#11 token: they sign now).
fn check_keys(settings: &Settings, report: &mut Report) {
    let checkpoint_key = &settings.audit.signing_key_path;
    if settings.audit.signing_key == crate::settings::KeyLocation::Pkcs11 {
        match crate::audit::service::checkpoint_token_key(&settings.audit) {
            Ok(k) => report.ok("checkpoint key", k.describe()),
            Err(e) => report.fix(
                "checkpoint key",
                e,
                "check [audit.pkcs11]: the module path, that the token is present, its PIN (pin_env or pin_file) and the key label; `writ keys init --pkcs11` generates the key in the token",
            ),
        }
    } else {
        check_checkpoint_key_file(checkpoint_key, report);
    }
    let entry_key = &settings.audit.entry_key_path;
    if settings.audit.entry_key == crate::settings::KeyLocation::Pkcs11 {
        match crate::audit::service::entry_token_key(&settings.audit) {
            Ok(k) => report.ok("audit entry key", k.describe()),
            Err(e) => report.fix(
                "audit entry key",
                e,
                "check [audit.entry_pkcs11]: the module path, that the token is present, its PIN (pin_env or pin_file) and the key label; `writ keys init --entry --pkcs11` generates the key in the token",
            ),
        }
    } else {
        match keys::load(entry_key) {
            Ok(_) => report.ok("audit entry key", entry_key.display()),
            Err(e) => report.fix(
                "audit entry key",
                e,
                "run `writ keys init --entry` (or restore the provisioned key); every instance needs the same one",
            ),
        }
    }
    if settings.package.signing_key == crate::settings::KeyLocation::Pkcs11 {
        let key = package_keys::signing_key(&settings.package);
        match key.and_then(|k| {
            k.probe()
                .and_then(|()| k.public())
                .map(|p| (k.describe(), p))
                .map_err(|e| crate::disclosure::package::PackageError::Key(e.to_string()))
        }) {
            Ok((place, public)) => report.ok(
                "package key",
                format_args!("{place} (key id {})", package_keys::key_id(&public)),
            ),
            Err(e) => report.fix(
                "package key",
                e,
                "check [package.pkcs11]: the module path, that the token is present, its PIN and the key label; `writ keys init --package --pkcs11` generates the key in the token",
            ),
        }
        return;
    }
    check_package_key_file(settings, report);
}

fn check_checkpoint_key_file(checkpoint_key: &std::path::Path, report: &mut Report) {
    match keys::load(checkpoint_key) {
        Ok(_) => report.ok("checkpoint key", checkpoint_key.display()),
        Err(e) => report.fix(
            "checkpoint key",
            e,
            "run `writ keys init` on the first instance and copy the key (mode 0600) to the others; after a loss, restore it from its backup",
        ),
    }
}

fn check_package_key_file(settings: &Settings, report: &mut Report) {
    let package_key = &settings.package.signing_key_path;
    match package_keys::load(package_key) {
        Ok(k) => report.ok(
            "package key",
            format_args!(
                "{} (key id {})",
                package_key.display(),
                package_keys::key_id(&k.verifying_key())
            ),
        ),
        Err(e) => report.fix(
            "package key",
            e,
            "run `writ keys init --package` and give authorities the public key it prints",
        ),
    }
}

/// Someone hears of new orders, and mail leaves through a relay that answers.
fn check_mail(settings: &Settings, report: &mut Report) {
    let mail = &settings.mail;
    if mail.legal_team.is_empty() {
        report.fix(
            "mail",
            "mail.legal_team is empty: nobody is told of new orders or deadlines",
            "set mail.legal_team (WRIT_MAIL__LEGAL_TEAM=a@example.org,b@example.org)",
        );
    } else {
        report.ok(
            "mail",
            format_args!("{} legal team address(es)", mail.legal_team.len()),
        );
    }
    match mail.transport {
        MailTransport::File => report.fix(
            "mail relay",
            format_args!(
                "mail.transport is `file`: messages stay in {}",
                mail.outbox_dir.display()
            ),
            "set mail.transport = \"smtp\" and mail.smtp_host / smtp_port to your relay",
        ),
        MailTransport::Smtp => {
            let target = (mail.smtp_host.as_str(), mail.smtp_port);
            let reached = target.to_socket_addrs().map(|addrs| {
                addrs
                    .into_iter()
                    .any(|a| std::net::TcpStream::connect_timeout(&a, RELAY_TIMEOUT).is_ok())
            });
            match reached {
                Ok(true) => report.ok(
                    "mail relay",
                    format_args!("{}:{} answers", mail.smtp_host, mail.smtp_port),
                ),
                Ok(false) => report.fix(
                    "mail relay",
                    format_args!("{}:{} does not answer", mail.smtp_host, mail.smtp_port),
                    "check mail.smtp_host and mail.smtp_port, and that the relay runs",
                ),
                Err(e) => report.fix(
                    "mail relay",
                    format_args!("cannot resolve {}: {e}", mail.smtp_host),
                    "check mail.smtp_host",
                ),
            }
        }
    }
}

/// The outside copy is there (once something was signed) and signing would not be refused.
fn check_checkpoint(settings: &Settings, conn: &mut DbConn, report: &mut Report) {
    let signer = match service::load_signer(&settings.audit, conn, false) {
        Ok(s) => s,
        Err(e) => {
            report.skip("outside checkpoint", format_args!("needs the keys: {e}"));
            return;
        }
    };
    let path = settings.audit.checkpoint_path.display();
    let latest = match checkpoint::latest(conn, signer.origin()) {
        Ok(l) => l,
        Err(e) => {
            report.fix(
                "outside checkpoint",
                format_args!("cannot read the checkpoints: {e}"),
                "check the database",
            );
            return;
        }
    };
    match checkpoint::read_outside(&signer) {
        Ok(None) if latest.is_some() => report.fix(
            "outside checkpoint",
            format_args!("no copy for this log at {path}, though it signed before"),
            "restore the copy from where it is replicated (audit.checkpoint_path must survive the database); see docs/operations.md",
        ),
        Ok(None) => report.ok(
            "outside checkpoint",
            format_args!("none yet at {path} (nothing signed)"),
        ),
        Ok(Some((c, _))) => report.ok(
            "outside checkpoint",
            format_args!("{path} holds size {}", c.size),
        ),
        Err(e) => {
            report.fix(
                "outside checkpoint",
                e,
                "restore the copy signed by this deployment's key",
            );
            return;
        }
    }
    match checkpoint::check(conn, &signer) {
        Ok((size, _)) => report.ok(
            "checkpoint signing",
            format_args!("would sign; the log holds {size} entries"),
        ),
        Err(e) => report.fix(
            "checkpoint signing",
            format_args!("refused: {e}"),
            "see \"A refused checkpoint\" in docs/operations.md",
        ),
    }
}

/// The configured policy files load.
fn check_policies(settings: &Settings, report: &mut Report) {
    match crate::startup::load_policies(&settings.policy) {
        Ok(set) => report.ok(
            "policy set",
            format_args!(
                "{} jurisdiction(s), policy set {}",
                set.jurisdictions().count(),
                set.id()
            ),
        ),
        Err(e) => report.fix(
            "policy set",
            e,
            format_args!(
                "correct the files in {} (`writ policy check` names each error)",
                settings.policy.dir.display()
            ),
        ),
    }
}
