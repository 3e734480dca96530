-- EU e-Evidence (Regulation (EU) 2023/1543 over ETSI TS 104 144): the lifecycle of each order
-- that came as an EPOC or EPOC-PR task (one row per task: partial grounds for refusal name
-- tasks), the outbound calls to the national system, and the correspondence thread.
CREATE TABLE eevidence_orders (
    order_id TEXT PRIMARY KEY NOT NULL REFERENCES orders (id),
    authority_id TEXT NOT NULL,
    authorisation_id TEXT,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT,
    notified BOOLEAN NOT NULL,
    emergency BOOLEAN NOT NULL,
    received_at BIGINT NOT NULL,
    due_at BIGINT,
    ea_until BIGINT,
    ea_decided BOOLEAN NOT NULL,
    suspended_since BIGINT,
    preserve_until BIGINT,
    extended BOOLEAN NOT NULL,
    linked_order TEXT,
    judgement TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX eevidence_orders_authorisation ON eevidence_orders (authority_id, authorisation_id);
CREATE INDEX eevidence_orders_task ON eevidence_orders (authority_id, task_id);

-- Calls Writ makes to the national system, queued in the transaction of the step that causes
-- them and sent under a lease (status 'sending' with next_attempt_at the lease end) until the
-- system acknowledges them.
CREATE TABLE eevidence_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT,
    authority_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    body TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    acknowledged_at BIGINT
);
CREATE INDEX eevidence_outbox_due ON eevidence_outbox (status, next_attempt_at);

-- One correspondence thread per order, both directions.
CREATE TABLE eevidence_correspondence (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    document_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX eevidence_correspondence_order ON eevidence_correspondence (order_id, created_at);
