//! Staff of the workspace: users with roles, argon2id passwords, database-stored sessions
//! (so any instance serves them), sign-in throttling, and the first admin.
//!
//! Roles and what they may do are in [`Role`] and [`Permission`]; the web layer checks a
//! permission on every route and action, deny by default.

pub mod desk;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor, ActorKind, AuditError, NewEntry};
use crate::authority::throttle;
use crate::db::schema::{staff_sessions, staff_users};
use crate::db::{DbConn, DbError, write_tx};
use crate::settings::WorkspaceSettings;

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users and the authority registry; never sees order contents, never approves.
    Admin,
    /// Reviews orders: asks, narrows, checks validations, refuses, enters orders by hand.
    LegalReviewer,
    /// Everything a reviewer does, plus previewing packages and approving release.
    LegalApprover,
    /// Reads orders, the audit log and the disclosure log; changes nothing.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::LegalReviewer,
        Role::LegalApprover,
        Role::Auditor,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::LegalReviewer => "legal_reviewer",
            Role::LegalApprover => "legal_approver",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Administrator",
            Role::LegalReviewer => "Legal reviewer",
            Role::LegalApprover => "Legal approver",
            Role::Auditor => "Auditor",
        }
    }

    /// Whether the role holds `permission`. Deny by default: only what is listed is allowed.
    pub fn may(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => matches!(
                permission,
                ManageUsers | ManageRegistry | Transparency | Account
            ),
            Role::LegalReviewer => matches!(
                permission,
                ViewOrders | ActOnOrders | EnterOrders | ViewMail | Account
            ),
            Role::LegalApprover => matches!(
                permission,
                ViewOrders | ActOnOrders | EnterOrders | Approve | ViewMail | Account
            ),
            Role::Auditor => matches!(permission, ViewOrders | Audit | Transparency | Account),
        }
    }
}

/// What a route or action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The queue, order pages, documents, timelines.
    ViewOrders,
    /// Ask, narrow, check a validation, refuse, holds.
    ActOnOrders,
    /// Manual intake.
    EnterOrders,
    /// Preview packages and approve release.
    Approve,
    /// The audit log, the disclosure log, exports.
    Audit,
    /// The outbox of e-mail.
    ViewMail,
    /// Users.
    ManageUsers,
    /// The authority registry.
    ManageRegistry,
    /// The transparency report (built from the audit log; counts only).
    Transparency,
    /// One's own password.
    Account,
}

/// Errors of the staff module; messages name what is wrong, never a password.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// No such user.
    #[error("no user `{0}`")]
    NotFound(String),
    /// The name is taken.
    #[error("user `{0}` already exists")]
    Conflict(String),
    /// Sign-in refused (wrong name or password, or disabled): one message for all.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many failed sign-ins.
    #[error("too many failed sign-ins; try again in {0} s")]
    Throttled(i64),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log refused the entry.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<diesel::result::Error> for StaffError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Sign-in name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Whether sign-in is refused.
    pub disabled: bool,
}

/// The signed-in staff member of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// Sign-in name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// The session's CSRF token (forms carry it back).
    pub csrf_token: String,
    /// Notifications not read yet (the bell's count).
    pub unread_notifications: i64,
    /// The IANA time zone the user's pages show dates in.
    pub time_zone: String,
}

impl Staff {
    /// The audit actor.
    pub fn actor(&self) -> Actor {
        let kind = if self.role == Role::Auditor {
            ActorKind::Auditor
        } else {
            ActorKind::Staff
        };
        Actor::new(kind, self.username.clone())
    }
}

const MIN_PASSWORD: usize = 12;
const FIFTEEN_MINUTES: i64 = 15 * 60;

fn check_username(name: &str) -> Result<(), StaffError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(StaffError::Invalid(
            "the user name must be 1 to 64 lowercase letters, digits, - _ .".into(),
        ))
    }
}

fn check_password(password: &str) -> Result<(), StaffError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(StaffError::Invalid(format!(
            "the password must be {MIN_PASSWORD} to 1024 characters"
        )));
    }
    Ok(())
}

fn hash(password: &str) -> Result<String, StaffError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StaffError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StaffError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StaffError::Hash(e.to_string()))
}

fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password, verified against when the user does not exist, so that a
/// wrong name costs the same time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy-password-never-used").unwrap_or_default())
}

fn random_token(bytes: usize) -> Result<String, StaffError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| StaffError::Hash(e.to_string()))?;
    Ok(hex::encode(raw))
}

fn token_hash(token: &str) -> String {
    crate::digest::sha256_hex(token.as_bytes())
}

/// Adds a user.
pub fn add_user(
    conn: &mut DbConn,
    actor: &Actor,
    username: &str,
    display_name: &str,
    role: Role,
    password: &str,
) -> Result<(), StaffError> {
    check_username(username)?;
    check_password(password)?;
    let display_name = display_name.trim();
    if display_name.is_empty() || display_name.len() > 200 {
        return Err(StaffError::Invalid(
            "the display name must be 1 to 200 characters".into(),
        ));
    }
    if let Some(why) = crate::text::hidden_character(display_name) {
        return Err(StaffError::Invalid(format!("the display name {why}")));
    }
    let hashed = hash(password)?;
    write_tx(conn, |c| {
        let taken: i64 = staff_users::table.find(username).count().get_result(c)?;
        if taken > 0 {
            return Err(StaffError::Conflict(username.to_owned()));
        }
        let now = Utc::now();
        diesel::insert_into(staff_users::table)
            .values((
                staff_users::username.eq(username),
                staff_users::display_name.eq(display_name),
                staff_users::role.eq(role.as_str()),
                staff_users::password_hash.eq(&hashed),
                staff_users::disabled.eq(false),
                staff_users::created_at.eq(now.timestamp_micros()),
                staff_users::password_changed_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let entry = NewEntry::new(actor.clone(), audit::Event::StaffUserAdded)
            .reference("user", username)
            .reference("role", role.as_str());
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// Disables (or re-enables) a user; a disabled user's sessions end at once.
pub fn set_disabled(
    conn: &mut DbConn,
    actor: &Actor,
    username: &str,
    disabled: bool,
) -> Result<(), StaffError> {
    write_tx(conn, |c| {
        let n = diesel::update(staff_users::table.find(username))
            .set(staff_users::disabled.eq(disabled))
            .execute(c)?;
        if n == 0 {
            return Err(StaffError::NotFound(username.to_owned()));
        }
        if disabled {
            diesel::delete(staff_sessions::table.filter(staff_sessions::username.eq(username)))
                .execute(c)?;
        }
        let event = if disabled {
            audit::Event::StaffUserDisabled
        } else {
            audit::Event::StaffUserEnabled
        };
        let entry = NewEntry::new(actor.clone(), event).reference("user", username);
        audit::append(c, &entry, Utc::now())?;
        Ok(())
    })
}

/// An admin sets a temporary password for `username`: every session of the user ends, and
/// at the next sign-in the user must choose a new password before anything else. Audited as
/// `staff.password_reset` (never with the password). Admins reset their own password on their
/// account page instead.
pub fn reset_password(
    conn: &mut DbConn,
    actor: &Actor,
    username: &str,
    temporary: &str,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    if actor.id == username {
        return Err(StaffError::Invalid(
            "change your own password on your account page".into(),
        ));
    }
    check_password(temporary)?;
    let hashed = hash(temporary)?;
    write_tx(conn, |c| {
        let n = diesel::update(staff_users::table.find(username))
            .set((
                staff_users::password_hash.eq(&hashed),
                staff_users::password_changed_at.eq(now.timestamp_micros()),
                staff_users::must_change_password.eq(true),
            ))
            .execute(c)?;
        if n == 0 {
            return Err(StaffError::NotFound(username.to_owned()));
        }
        let ended =
            diesel::delete(staff_sessions::table.filter(staff_sessions::username.eq(username)))
                .execute(c)?;
        let entry = NewEntry::new(actor.clone(), audit::Event::StaffPasswordReset)
            .reference("user", username)
            .reference("sessions_ended", ended);
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// An admin changes `username`'s role, audited as `staff.role_changed` (old and new role).
/// The last enabled admin keeps the role: without one nobody could manage users again. The
/// user's open sessions take the new role at their next request (the role is read per request).
pub fn set_role(
    conn: &mut DbConn,
    actor: &Actor,
    username: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    write_tx(conn, |c| {
        // Two admins demoting each other at once must not both succeed: take the users'
        // rows in a fixed order under the write transaction before counting.
        let rows: Vec<(String, String, bool)> = crate::db::locks::load_for_update!(
            c,
            staff_users::table
                .filter(staff_users::role.eq(Role::Admin.as_str()))
                .order(staff_users::username)
                .select((
                    staff_users::username,
                    staff_users::role,
                    staff_users::disabled
                ))
        )?;
        let old: Option<String> = staff_users::table
            .find(username)
            .select(staff_users::role)
            .first(c)
            .optional()?;
        let old = old.ok_or_else(|| StaffError::NotFound(username.to_owned()))?;
        if old == role.as_str() {
            return Ok(());
        }
        let other_admins = rows
            .iter()
            .filter(|(u, _, disabled)| u != username && !disabled)
            .count();
        if old == Role::Admin.as_str() && other_admins == 0 {
            return Err(StaffError::Invalid(format!(
                "`{username}` is the last enabled administrator; make another user an administrator first"
            )));
        }
        diesel::update(staff_users::table.find(username))
            .set(staff_users::role.eq(role.as_str()))
            .execute(c)?;
        let entry = NewEntry::new(actor.clone(), audit::Event::StaffRoleChanged)
            .reference("user", username)
            .reference("from", old.as_str())
            .reference("to", role.as_str());
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// When `username`'s sign-in lockout ends (UTC), if it is locked out now: its failed sign-ins
/// in the current 15-minute window reached the limit. Until then even the right password is
/// refused.
pub fn locked_until(
    conn: &mut DbConn,
    username: &str,
    settings: &WorkspaceSettings,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StaffError> {
    let secs = now.timestamp();
    let scope = format!("login-user:{}", username.to_lowercase());
    let failures = throttle::count_in(conn, &scope, secs, FIFTEEN_MINUTES)?;
    if failures < i64::from(settings.login_failures_per_15min) {
        return Ok(None);
    }
    let end = secs - secs.rem_euclid(FIFTEEN_MINUTES) + FIFTEEN_MINUTES;
    Ok(DateTime::<Utc>::from_timestamp(end, 0))
}

/// Lifts `username`'s sign-in lockout (its failed sign-ins of the current window are
/// forgotten), with its audit entry, in one transaction. The client network's own budget is
/// left as it is. Returns whether there was a lockout or failures to forget.
pub fn lift_lockout(
    conn: &mut DbConn,
    actor: &Actor,
    username: &str,
    now: DateTime<Utc>,
) -> Result<bool, StaffError> {
    let scope = format!("login-user:{}", username.to_lowercase());
    write_tx(conn, |c| {
        let exists = staff_users::table
            .find(username)
            .count()
            .get_result::<i64>(c)?
            > 0;
        if !exists {
            return Err(StaffError::NotFound(username.to_owned()));
        }
        let lifted = throttle::clear_in(c, &scope, now.timestamp(), FIFTEEN_MINUTES)?;
        let entry = NewEntry::new(actor.clone(), audit::Event::StaffLockoutLifted)
            .reference("user", username)
            .reference("had_failures", lifted);
        audit::append(c, &entry, now)?;
        Ok(lifted)
    })
}

/// Every user.
pub fn list(conn: &mut DbConn) -> Result<Vec<User>, StaffError> {
    let rows: Vec<(String, String, String, bool)> = staff_users::table
        .order(staff_users::username)
        .select((
            staff_users::username,
            staff_users::display_name,
            staff_users::role,
            staff_users::disabled,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(username, display_name, role, disabled)| {
            Some(User {
                username,
                display_name,
                role: Role::parse(&role)?,
                disabled,
            })
        })
        .collect())
}

/// A new session: the cookie token (given to the browser only) and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie value.
    pub token: String,
    /// The session's CSRF token.
    pub csrf_token: String,
}

/// Signs a user in. Failures are counted per user name and per client network over 15
/// minutes; past the limit sign-in is refused without checking the password. Every outcome is
/// audited (a failure names the user name tried only if it exists, never the password).
pub fn login(
    conn: &mut DbConn,
    username: &str,
    password: &str,
    network: &str,
    settings: &WorkspaceSettings,
    now: DateTime<Utc>,
) -> Result<NewSession, StaffError> {
    let secs = now.timestamp();
    let user_scope = format!("login-user:{}", username.to_lowercase());
    let net_scope = format!("login-net:{network}");
    let limit = i64::from(settings.login_failures_per_15min);
    let retry = FIFTEEN_MINUTES - secs.rem_euclid(FIFTEEN_MINUTES);
    // An attempt takes its place in both budgets before the password is looked at, in one
    // atomic step each (a burst of concurrent attempts cannot all pass a check made before any
    // counted); both or neither. A right password gives its places back below.
    write_tx(conn, |c| {
        if throttle::hit_within(c, &user_scope, secs, FIFTEEN_MINUTES, limit)?.is_none()
            || throttle::hit_within(c, &net_scope, secs, FIFTEEN_MINUTES, limit * 4)?.is_none()
        {
            return Err(StaffError::Throttled(retry));
        }
        Ok(())
    })?;
    let found: Option<(String, bool)> = staff_users::table
        .find(username)
        .select((staff_users::password_hash, staff_users::disabled))
        .first(conn)
        .optional()?;
    let ok = match &found {
        Some((stored, disabled)) => verify(password, stored) && !disabled,
        None => {
            let _ = verify(password, decoy_hash());
            false
        }
    };
    if !ok {
        write_tx(conn, |c| {
            let who = if found.is_some() {
                username
            } else {
                "(unknown)"
            };
            let entry = NewEntry::new(
                Actor::new(ActorKind::System, "workspace"),
                audit::Event::StaffLoginFailed,
            )
            .reference("user", who)
            .reference("network", network);
            audit::append(c, &entry, now)?;
            Ok::<_, StaffError>(())
        })?;
        return Err(StaffError::BadCredentials);
    }
    let session = NewSession {
        token: random_token(32)?,
        csrf_token: random_token(32)?,
    };
    let micros = now.timestamp_micros();
    let max = settings.session_max_micros();
    write_tx(conn, |c| {
        // Old sessions of anyone go as new ones start.
        diesel::delete(staff_sessions::table.filter(staff_sessions::expires_at.lt(micros)))
            .execute(c)?;
        // Not a failure: the attempt's places in the budgets are given back.
        throttle::give_back(c, &user_scope, secs, FIFTEEN_MINUTES)?;
        throttle::give_back(c, &net_scope, secs, FIFTEEN_MINUTES)?;
        diesel::insert_into(staff_sessions::table)
            .values((
                staff_sessions::token_sha256.eq(token_hash(&session.token)),
                staff_sessions::username.eq(username),
                staff_sessions::csrf_token.eq(&session.csrf_token),
                staff_sessions::created_at.eq(micros),
                staff_sessions::last_seen_at.eq(micros),
                staff_sessions::expires_at.eq(micros + max),
            ))
            .execute(c)?;
        let entry = NewEntry::new(
            Actor::new(ActorKind::Staff, username),
            audit::Event::StaffLogin,
        );
        audit::append(c, &entry, now)?;
        Ok::<_, StaffError>(())
    })?;
    Ok(session)
}

/// A session joined with its user: username, CSRF token, last seen, end, display name, role,
/// disabled, time zone, must change password.
type SessionRow = (String, String, i64, i64, String, String, bool, String, bool);

/// The staff member of a session cookie, if the session is live (not idle too long, not past
/// its end, user not disabled), and whether they must set a new password before anything else
/// (an admin reset it). Refreshes the idle clock at most once a minute (more often under a
/// short idle timeout).
pub fn session(
    conn: &mut DbConn,
    token: &str,
    settings: &WorkspaceSettings,
    now: DateTime<Utc>,
) -> Result<Option<(Staff, bool)>, StaffError> {
    let micros = now.timestamp_micros();
    let hash = token_hash(token);
    let row: Option<SessionRow> = staff_sessions::table
        .inner_join(staff_users::table)
        .filter(staff_sessions::token_sha256.eq(&hash))
        .select((
            staff_sessions::username,
            staff_sessions::csrf_token,
            staff_sessions::last_seen_at,
            staff_sessions::expires_at,
            staff_users::display_name,
            staff_users::role,
            staff_users::disabled,
            staff_users::time_zone,
            staff_users::must_change_password,
        ))
        .first(conn)
        .optional()?;
    let Some((
        username,
        csrf_token,
        last_seen,
        expires,
        display_name,
        role,
        disabled,
        time_zone,
        must_change,
    )) = row
    else {
        return Ok(None);
    };
    let idle = settings.session_idle_micros();
    if disabled || expires <= micros || last_seen + idle <= micros {
        diesel::delete(staff_sessions::table.find(&hash)).execute(conn)?;
        return Ok(None);
    }
    // A write per request would be wasted: refresh once a minute, or more often when the idle
    // timeout is short, so a session in use never lapses.
    if micros - last_seen > (idle / 4).min(60_000_000) {
        diesel::update(staff_sessions::table.find(&hash))
            .set(staff_sessions::last_seen_at.eq(micros))
            .execute(conn)?;
    }
    let Some(role) = Role::parse(&role) else {
        return Ok(None);
    };
    let unread_notifications = desk::unread_count(conn, &username)?;
    Ok(Some((
        Staff {
            username,
            display_name,
            role,
            csrf_token,
            unread_notifications,
            time_zone,
        },
        must_change,
    )))
}

/// Ends a session.
pub fn logout(conn: &mut DbConn, token: &str) -> Result<(), StaffError> {
    diesel::delete(staff_sessions::table.find(token_hash(token))).execute(conn)?;
    Ok(())
}

/// Changes a user's own password (the old one must be right); their other sessions end.
pub fn change_password(
    conn: &mut DbConn,
    username: &str,
    old: &str,
    new: &str,
    keep_session: &str,
) -> Result<(), StaffError> {
    check_password(new)?;
    if new == old {
        return Err(StaffError::Invalid(
            "the new password must differ from the current one".into(),
        ));
    }
    let stored: String = staff_users::table
        .find(username)
        .select(staff_users::password_hash)
        .first(conn)
        .optional()?
        .ok_or_else(|| StaffError::NotFound(username.to_owned()))?;
    if !verify(old, &stored) {
        return Err(StaffError::BadCredentials);
    }
    let hashed = hash(new)?;
    write_tx(conn, |c| {
        let now = Utc::now();
        diesel::update(staff_users::table.find(username))
            .set((
                staff_users::password_hash.eq(&hashed),
                staff_users::password_changed_at.eq(now.timestamp_micros()),
                staff_users::must_change_password.eq(false),
            ))
            .execute(c)?;
        diesel::delete(
            staff_sessions::table
                .filter(staff_sessions::username.eq(username))
                .filter(staff_sessions::token_sha256.ne(token_hash(keep_session))),
        )
        .execute(c)?;
        let entry = NewEntry::new(
            Actor::new(ActorKind::Staff, username),
            audit::Event::StaffPasswordChanged,
        );
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// When there is no user at all, creates `admin` with a random password written only to
/// `path` (mode 0600, never replaced). Returns the path when it did.
pub fn ensure_first_admin(
    conn: &mut DbConn,
    path: &std::path::Path,
) -> Result<Option<std::path::PathBuf>, StaffError> {
    let users: i64 = staff_users::table.count().get_result(conn)?;
    if users > 0 {
        return Ok(None);
    }
    let password = random_token(12)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StaffError::Invalid(format!("{}: {e}", dir.display())))?;
    }
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StaffError::Invalid(format!("{}: {e}", path.display())))?;
        file.write_all(format!("admin\n{password}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| StaffError::Invalid(format!("{}: {e}", path.display())))?;
    }
    add_user(
        conn,
        &Actor::new(ActorKind::System, "workspace"),
        "admin",
        "Administrator",
        Role::Admin,
        &password,
    )?;
    Ok(Some(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_cannot_approve_and_auditors_change_nothing() {
        assert!(!Role::Admin.may(Permission::Approve));
        assert!(!Role::Admin.may(Permission::ViewOrders));
        assert!(!Role::LegalReviewer.may(Permission::Approve));
        assert!(Role::LegalApprover.may(Permission::Approve));
        for p in [
            Permission::ActOnOrders,
            Permission::EnterOrders,
            Permission::Approve,
            Permission::ManageUsers,
            Permission::ManageRegistry,
        ] {
            assert!(!Role::Auditor.may(p), "{p:?}");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterz", &h));
        assert!(!verify("x", "not a hash"));
    }
}
