-- Released orders waiting for the deliverers to pick them up. Approval inserts a row in the
-- release's own transaction (orders/approval.rs); the HI-1 deliverer deletes it in the
-- transaction that queues its delivery (etsi/deliver.rs), so each release is picked up once and
-- approval does not call into the ETSI module.
CREATE TABLE release_queue (
    order_id TEXT PRIMARY KEY NOT NULL REFERENCES orders (id),
    released_at BIGINT NOT NULL
);
