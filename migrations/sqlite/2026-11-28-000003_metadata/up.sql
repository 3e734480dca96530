-- The user-metadata store. Metadata only: no column here can hold message content, and
-- tests/api/metadata.rs keeps every column of every table on an allowlist.
-- Times are UTC microseconds since the Unix epoch (BIGINT), so windows compare as integers.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY NOT NULL,
    external_id TEXT NOT NULL UNIQUE CHECK (length(external_id) BETWEEN 1 AND 128),
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at BIGINT NOT NULL,
    registration_ip TEXT CHECK (length(registration_ip) <= 45)
);

-- The history of each account's phone numbers and usernames: numbers are recycled, so "who had
-- this number on 3 March" is answered from these intervals, never from a current value.
-- valid_to is exclusive; NULL means still valid.
CREATE TABLE account_identifiers (
    id INTEGER PRIMARY KEY NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL CHECK (kind IN ('phone', 'username')),
    value TEXT NOT NULL CHECK (length(value) BETWEEN 1 AND 64),
    valid_from BIGINT NOT NULL,
    valid_to BIGINT CHECK (valid_to IS NULL OR valid_to > valid_from),
    UNIQUE (account_id, kind, value, valid_from)
);
CREATE INDEX account_identifiers_by_value ON account_identifiers (kind, value, valid_from);

-- IP events. Port 0 means "not recorded" (0 is reserved and never a real source port), which
-- keeps the natural key free of NULLs so re-importing a file inserts nothing twice.
CREATE TABLE ip_events (
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    at BIGINT NOT NULL,
    ip TEXT NOT NULL CHECK (length(ip) BETWEEN 2 AND 45),
    port INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    kind TEXT NOT NULL CHECK (kind IN ('registration', 'login', 'session_start', 'session_end', 'activity')),
    PRIMARY KEY (account_id, at, ip, port, kind)
) WITHOUT ROWID;
CREATE INDEX ip_events_by_ip ON ip_events (ip, at);

-- Holds: data that must survive retention (orders hold what they target from receipt;
-- preservation orders hold for their period). Categories: comma-separated category names.
CREATE TABLE holds (
    id INTEGER PRIMARY KEY NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    categories TEXT NOT NULL CHECK (length(categories) BETWEEN 1 AND 128),
    data_from BIGINT NOT NULL,
    data_to BIGINT NOT NULL CHECK (data_to > data_from),
    reason TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    order_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX holds_by_account ON holds (account_id, expires_at);
