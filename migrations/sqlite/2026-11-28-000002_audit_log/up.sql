-- The audit log. Append-only: the triggers below refuse UPDATE and DELETE on every audit table,
-- so no code path (and no casual SQL session) can rewrite history. Tampering by someone who
-- drops the triggers is caught by the Merkle tree and the signed checkpoints kept outside.

-- One row per entry. `leaf` holds the canonical bytes (see src/audit/entry.rs) that are hashed
-- into the Merkle tree; the other columns are copies of leaf fields, for filtered reading.
CREATE TABLE audit_entries (
    seq INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0),
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
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (C2SP tlog-checkpoint signed notes), one per tree size and log origin.
CREATE TABLE audit_checkpoints (
    origin TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    PRIMARY KEY (origin, size)
);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
