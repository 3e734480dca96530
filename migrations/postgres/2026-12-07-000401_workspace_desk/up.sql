-- The legal team's desk (issue 19, part A): who an order is assigned to, whether the
-- authority's latest reply is still unread, internal notes (never sent out), per-user
-- notifications, saved queue filters, and the results of audited POSTs kept for the session
-- that ran them (post/redirect/get: reloading shows them again without re-running them).
-- The colleague the order is assigned to (a staff username, checked by Writ; NULL: nobody).
ALTER TABLE orders ADD COLUMN assigned_to TEXT;
ALTER TABLE orders ADD COLUMN reply_unread BOOLEAN NOT NULL DEFAULT FALSE;
-- When the authority last wrote (UTC microseconds; NULL: never).
ALTER TABLE orders ADD COLUMN replied_at BIGINT;
CREATE INDEX orders_by_assignee ON orders (assigned_to);
CREATE INDEX orders_by_reference ON orders (reference);

-- A colleague's e-mail address for their own notifications (NULL: in the app only), and the
-- time zone their pages show dates in (an IANA name).
ALTER TABLE staff_users ADD COLUMN email TEXT CHECK (email IS NULL OR length(email) BETWEEN 3 AND 254);
ALTER TABLE staff_users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64);

CREATE TABLE order_notes (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    author TEXT NOT NULL REFERENCES staff_users (username),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    created_at BIGINT NOT NULL
);
CREATE INDEX order_notes_by_order ON order_notes (order_id, created_at);

CREATE TABLE staff_notifications (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL REFERENCES staff_users (username),
    order_id TEXT REFERENCES orders (id),
    kind TEXT NOT NULL CHECK (kind IN ('assigned', 'reply_received', 'deadline_near')),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 500),
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    -- When it was queued as an e-mail (NULL: not yet, or the user gave no address).
    mailed_at BIGINT
);
CREATE INDEX staff_notifications_by_user ON staff_notifications (username, created_at);
-- One "deadline near" notice per person and order.
CREATE UNIQUE INDEX staff_notifications_deadline_once ON staff_notifications (username, order_id, kind)
    WHERE kind = 'deadline_near';

CREATE TABLE saved_filters (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL REFERENCES staff_users (username),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    query TEXT NOT NULL CHECK (length(query) <= 2000),
    created_at BIGINT NOT NULL,
    UNIQUE (username, name)
);

CREATE TABLE workspace_results (
    session_sha256 TEXT NOT NULL CHECK (length(session_sha256) = 64),
    order_id TEXT NOT NULL REFERENCES orders (id),
    kind TEXT NOT NULL CHECK (kind IN ('matches', 'preview')),
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_sha256, order_id, kind)
);
