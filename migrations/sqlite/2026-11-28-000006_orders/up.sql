-- Orders received from authorities. The order JSON is kept exactly as submitted (its SHA-256
-- is what a validator signs); each amendment is a new version, decided afresh.
CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    reference TEXT NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    instrument TEXT NOT NULL CHECK (length(instrument) BETWEEN 1 AND 100),
    emergency BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('under_review', 'awaiting_clarification', 'approved', 'released', 'refused', 'withdrawn')),
    version INTEGER NOT NULL CHECK (version >= 1),
    outcome TEXT NOT NULL,
    deadline_at BIGINT,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orders_by_authority ON orders (authority_id, received_at);
CREATE INDEX orders_by_status ON orders (status, deadline_at);

CREATE TABLE order_versions (
    order_id TEXT NOT NULL REFERENCES orders (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    order_json TEXT NOT NULL,
    order_sha256 TEXT NOT NULL CHECK (length(order_sha256) = 64),
    -- The validator's key, when the validation is proven by its signature over order_sha256.
    validation_kid TEXT,
    validation_token TEXT,
    decision_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, version)
);

-- The signed order document of a version (an amendment without one keeps the previous one).
CREATE TABLE order_documents (
    order_id TEXT NOT NULL REFERENCES orders (id),
    version INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    size BIGINT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (order_id, version)
);

-- Clarification: the provider's questions and the authority's answers.
CREATE TABLE order_messages (
    id INTEGER PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    sender TEXT NOT NULL CHECK (sender IN ('authority', 'provider')),
    author TEXT NOT NULL CHECK (length(author) BETWEEN 1 AND 200),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    -- The order version an amendment carried by this message created.
    amended_version INTEGER,
    created_at BIGINT NOT NULL
);
CREATE INDEX order_messages_by_order ON order_messages (order_id, id);

-- Idempotency keys, per authority: the same key and request gives the first answer again.
CREATE TABLE idempotency_keys (
    authority_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    request_sha256 TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (authority_id, idempotency_key)
);

-- Submissions refused as malformed, so an authority can show what it sent and why it failed.
CREATE TABLE rejected_submissions (
    id TEXT PRIMARY KEY NOT NULL,
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    received_at BIGINT NOT NULL,
    body_sha256 TEXT NOT NULL CHECK (length(body_sha256) = 64),
    size BIGINT NOT NULL,
    status INTEGER NOT NULL,
    reasons TEXT NOT NULL
);
CREATE INDEX rejected_submissions_by_authority ON rejected_submissions (authority_id, received_at);

-- Holds by target identifier, recorded at receipt without looking at the store; a background
-- job resolves them to account holds. Retention resolves pending ones before it purges.
CREATE TABLE target_holds (
    id INTEGER PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    target_kind TEXT NOT NULL CHECK (target_kind IN ('user_id', 'username', 'phone', 'ip')),
    target_value TEXT NOT NULL,
    ip_port INTEGER,
    categories TEXT NOT NULL,
    data_from BIGINT NOT NULL,
    data_to BIGINT NOT NULL CHECK (data_to > data_from),
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    released_at BIGINT
);
CREATE INDEX target_holds_by_order ON target_holds (order_id);
CREATE INDEX target_holds_pending ON target_holds (resolved_at, id);

-- Fixed-window counters shared by all instances: per-authority request rates and failed
-- authentications per client network and reason (summarised into the audit log per window).
CREATE TABLE rate_counters (
    scope TEXT NOT NULL CHECK (length(scope) BETWEEN 1 AND 200),
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (scope, window_start)
);
CREATE TABLE auth_failures (
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (window_start, source, reason)
);
