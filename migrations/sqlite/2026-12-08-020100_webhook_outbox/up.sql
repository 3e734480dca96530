-- Issue 19: signed webhooks, queued in the transaction that causes them and sent by the
-- sender loop with retries: the user notice to the provider's own messaging system, and the
-- page to the on-call when an emergency order arrives (acknowledged in the workspace).
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user_notice', 'page')),
    order_id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (length(body) BETWEEN 2 AND 100000),
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT CHECK (last_error IS NULL OR length(last_error) <= 300),
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    acknowledged_at BIGINT,
    acknowledged_by TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
CREATE INDEX webhook_outbox_by_order ON webhook_outbox (order_id);
