-- Facts about this deployment that every instance must agree on.
CREATE TABLE writ_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- A random identifier fixed when the database is created; it tells deployments (and restored
-- copies of one) apart in logs and exports.
INSERT INTO writ_meta (key, value) VALUES ('deployment_id', replace(gen_random_uuid()::text, '-', ''));
