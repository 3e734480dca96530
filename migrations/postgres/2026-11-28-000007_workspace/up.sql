-- Staff of the workspace: the legal team, administrators and auditors. Passwords are argon2id
-- hashes; sessions are stored here (any instance serves them) by the SHA-256 of the cookie.
CREATE TABLE staff_users (
    username TEXT PRIMARY KEY NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    display_name TEXT NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role TEXT NOT NULL CHECK (role IN ('admin', 'legal_reviewer', 'legal_approver', 'auditor')),
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE staff_sessions (
    token_sha256 TEXT PRIMARY KEY NOT NULL CHECK (length(token_sha256) = 64),
    username TEXT NOT NULL REFERENCES staff_users (username),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX staff_sessions_by_user ON staff_sessions (username);

-- Orders entered by hand from the workspace (post, e-mail) name who entered them; nobody may
-- approve an order they entered.
ALTER TABLE orders ADD COLUMN entered_by TEXT;
-- When the legal team was last reminded of the order's deadline.
ALTER TABLE orders ADD COLUMN reminded_at BIGINT;
ALTER TABLE orders ADD COLUMN task_reminded_at BIGINT;
-- Tasks with their own clocks: the ex-post validation of an emergency order (received or
-- lapsed), the user notice (when, by which channel), and the end of a preservation hold with
-- the extensions granted.
ALTER TABLE orders ADD COLUMN ex_post_validation TEXT;
ALTER TABLE orders ADD COLUMN user_notified_at BIGINT;
ALTER TABLE orders ADD COLUMN user_notified_channel TEXT;
ALTER TABLE orders ADD COLUMN hold_until BIGINT;
ALTER TABLE orders ADD COLUMN validation_due_at BIGINT;
CREATE INDEX orders_by_hold_until ON orders (hold_until);
CREATE INDEX orders_by_validation_due ON orders (validation_due_at);
ALTER TABLE orders ADD COLUMN hold_extensions INTEGER NOT NULL DEFAULT 0;

-- The scope people narrowed the decision to (NULL: the engine's decision, unnarrowed), and
-- the check of a claimed validation against the signed document.
ALTER TABLE order_versions ADD COLUMN scope_json TEXT;
ALTER TABLE order_versions ADD COLUMN validation_checked_by TEXT;
ALTER TABLE order_versions ADD COLUMN validation_checked_at BIGINT;

-- Disclosure packages. The snapshot (the records, as JSON) is frozen when the first approver
-- prepares it; approvals are bound to its hash; the signed archive is built from exactly that
-- snapshot at release.
CREATE TABLE packages (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    version INTEGER NOT NULL,
    scope_sha256 TEXT NOT NULL CHECK (length(scope_sha256) = 64),
    snapshot_sha256 TEXT NOT NULL CHECK (length(snapshot_sha256) = 64),
    snapshot TEXT NOT NULL,
    package_sha256 TEXT CHECK (package_sha256 IS NULL OR length(package_sha256) = 64),
    status TEXT NOT NULL CHECK (status IN ('snapshot', 'released', 'superseded', 'deleted')),
    record_counts TEXT NOT NULL,
    fields TEXT NOT NULL,
    content BYTEA,
    created_at BIGINT NOT NULL,
    released_at BIGINT,
    release_seq BIGINT,
    deleted_at BIGINT
);
CREATE INDEX packages_by_order ON packages (order_id, created_at);

-- Each approval is bound to one exact snapshot (scope and package hash).
CREATE TABLE approvals (
    package_id TEXT NOT NULL REFERENCES packages (id),
    approver TEXT NOT NULL REFERENCES staff_users (username),
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (package_id, approver)
);
