-- Each audit entry carries an authenticator: an Ed25519 signature over its Merkle leaf hash,
-- made inside the Writ process with the entry key (audit.entry_key_path), which never enters the
-- database. A row inserted by other means has none that verifies, so Writ refuses to sign a
-- checkpoint past it (see src/audit/authenticator.rs).
ALTER TABLE audit_entries ADD COLUMN authenticator BLOB;

-- Entries appended before this migration have no authenticator. Their count is recorded here;
-- Writ accepts a missing authenticator only below it, and only until it has signed a checkpoint
-- cosigned with the entry key (a signed note the database cannot rewrite).
INSERT INTO writ_meta (key, value)
SELECT 'audit.unauthenticated_before', CAST(COALESCE(MAX(seq) + 1, 0) AS TEXT) FROM audit_entries;
