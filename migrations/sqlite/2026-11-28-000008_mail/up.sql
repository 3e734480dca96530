-- Outgoing e-mail, queued inside the transaction of the workflow step that caused it and sent
-- afterwards by a background job (an outbox): a relay that is down never blocks or rolls back
-- that step. Bodies carry order ids, references, instruments and deadlines only, never a
-- target identifier or any user data. A row being sent is 'sending' and its next_attempt_at
-- is then the end of the sender's lease; an expired lease is taken over by another sender.
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('new_order', 'deadline_reminder', 'clarification_requested',
        'response_ready', 'refusal', 'checkpoint', 'task_reminder')),
    recipients TEXT NOT NULL CHECK (length(recipients) BETWEEN 3 AND 4000),
    subject TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 400),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
    order_id TEXT,
    urgent BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT CHECK (last_error IS NULL OR length(last_error) <= 300),
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_by_order ON mail_outbox (order_id);
