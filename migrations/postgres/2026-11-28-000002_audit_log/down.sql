DROP TABLE audit_checkpoints;
DROP TABLE audit_nodes;
DROP TABLE audit_entries;
DROP FUNCTION writ_audit_append_only();
