-- ETSI TS 103 120 (HI-1) exchange. An authority's HI-1 identity (country code and unique
-- identifier) is registry data, like its keys: the sender identifier in a message must be the
-- one registered to the authority whose key signed the request.
CREATE TABLE authority_etsi (
    authority_id TEXT PRIMARY KEY NOT NULL REFERENCES authorities (id),
    country_code TEXT NOT NULL CHECK (length(country_code) = 2),
    unique_identifier TEXT NOT NULL CHECK (length(unique_identifier) BETWEEN 1 AND 256),
    -- The Writ instrument a disclosure (LDTask) or preservation (LPTask) task from this sender
    -- is decided under, unless its authorisation names one of Writ's instruments.
    disclosure_instrument TEXT NOT NULL CHECK (length(disclosure_instrument) BETWEEN 1 AND 100),
    preservation_instrument TEXT CHECK (length(preservation_instrument) BETWEEN 1 AND 100),
    -- Where Writ DELIVERs released packages (an HI-1 endpoint URL); NULL: on request only.
    delivery_url TEXT CHECK (length(delivery_url) BETWEEN 8 AND 2000),
    updated_at BIGINT NOT NULL,
    UNIQUE (country_code, unique_identifier)
);

-- Every authenticated HI-1 message, as received: its hash and size always, its bytes and the
-- answer given when it was answered (a retransmission with the same transaction identifier
-- and the same bytes gets the same answer; other bytes under that identifier are refused).
CREATE TABLE etsi_messages (
    id TEXT PRIMARY KEY NOT NULL,
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    transaction_id TEXT NOT NULL CHECK (length(transaction_id) BETWEEN 1 AND 100),
    received_at BIGINT NOT NULL,
    body_sha256 TEXT NOT NULL CHECK (length(body_sha256) = 64),
    size BIGINT NOT NULL CHECK (size >= 0),
    body BLOB,
    -- answered (its answer kept for retransmissions), read (created nothing: answered afresh
    -- when repeated, its answer not kept, as it may carry a package) or refused.
    status TEXT NOT NULL CHECK (status IN ('answered', 'read', 'refused')),
    http_status INTEGER NOT NULL,
    response TEXT NOT NULL
);
CREATE UNIQUE INDEX etsi_messages_by_transaction ON etsi_messages (authority_id, transaction_id)
    WHERE status = 'answered';

-- The HI-1 objects Writ holds for a sender. Tasks point at the Writ order they became; the
-- object itself is read back from the kept message when asked for.
CREATE TABLE etsi_objects (
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    object_id TEXT NOT NULL CHECK (length(object_id) BETWEEN 1 AND 100),
    object_type TEXT NOT NULL CHECK (object_type IN ('Authorisation', 'LDTask', 'LPTask',
        'Document', 'Delivery')),
    message_id TEXT REFERENCES etsi_messages (id),
    order_id TEXT REFERENCES orders (id),
    -- A task's authorisation (its first associated object that is one).
    parent_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (authority_id, object_id)
);
CREATE INDEX etsi_objects_by_order ON etsi_objects (order_id);

-- Outbound DELIVER messages: one per released HI-1 disclosure task, queued in the release's
-- transaction and sent (signed, retried with backoff) until the destination acknowledges it.
-- A row being sent is 'sending' with next_attempt_at the end of the sender's lease.
CREATE TABLE etsi_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    task_id TEXT NOT NULL,
    url TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'acknowledged', 'failed',
        'on_request')),
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT CHECK (last_error IS NULL OR length(last_error) <= 300),
    created_at BIGINT NOT NULL,
    acknowledged_at BIGINT
);
CREATE INDEX etsi_deliveries_due ON etsi_deliveries (status, next_attempt_at);
CREATE UNIQUE INDEX etsi_deliveries_by_task ON etsi_deliveries (authority_id, task_id);
