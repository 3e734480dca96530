DELETE FROM writ_meta WHERE key = 'audit.unauthenticated_before';
ALTER TABLE audit_entries DROP COLUMN authenticator;
