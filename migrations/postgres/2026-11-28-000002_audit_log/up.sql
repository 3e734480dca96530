-- The audit log. Append-only: the triggers below refuse UPDATE, DELETE and TRUNCATE on every
-- audit table, so no code path (and no casual SQL session) can rewrite history. Tampering by
-- someone who drops the triggers is caught by the Merkle tree and the signed checkpoints kept
-- outside.

-- One row per entry. `leaf` holds the canonical bytes (see src/audit/entry.rs) that are hashed
-- into the Merkle tree; the other columns are copies of leaf fields, for filtered reading.
CREATE TABLE audit_entries (
    seq BIGINT PRIMARY KEY NOT NULL CHECK (seq >= 0),
    at TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    event TEXT NOT NULL,
    order_id TEXT,
    jurisdiction TEXT,
    leaf TEXT NOT NULL
);
CREATE INDEX audit_entries_at ON audit_entries (at);
CREATE INDEX audit_entries_order ON audit_entries (order_id, seq);
CREATE INDEX audit_entries_actor ON audit_entries (actor_kind, actor_id, seq);
CREATE INDEX audit_entries_event ON audit_entries (event, seq);
CREATE INDEX audit_entries_jurisdiction ON audit_entries (jurisdiction, seq);

-- Every perfect subtree of the RFC 9162 Merkle tree: level 0 holds the leaf hashes; the node at
-- (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
    idx BIGINT NOT NULL CHECK (idx >= 0),
    hash BYTEA NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (C2SP tlog-checkpoint signed notes), one per tree size and log origin.
CREATE TABLE audit_checkpoints (
    origin TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    root BYTEA NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    PRIMARY KEY (origin, size)
);

CREATE FUNCTION writ_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION writ_audit_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION writ_audit_append_only();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION writ_audit_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION writ_audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION writ_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION writ_audit_append_only();
