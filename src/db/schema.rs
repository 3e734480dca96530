//! Table definitions shared by both backends (the migrations keep them identical).

diesel::table! {
    /// Facts about the deployment that all instances share, such as `deployment_id`.
    writ_meta (key) {
        /// Name of the fact.
        key -> Text,
        /// Its value.
        value -> Text,
    }
}

diesel::table! {
    /// The audit log's entries; append-only (database triggers refuse UPDATE and DELETE).
    audit_entries (seq) {
        /// Position in the log, from 0, gap-free: the Merkle leaf index.
        seq -> BigInt,
        /// When, RFC 3339 UTC with microseconds (copied from the leaf).
        at -> Text,
        /// Actor kind (copied from the leaf).
        actor_kind -> Text,
        /// Actor id (copied from the leaf).
        actor_id -> Text,
        /// Event type (copied from the leaf).
        event -> Text,
        /// Order concerned, if any (copied from the leaf).
        order_id -> Nullable<Text>,
        /// Jurisdiction concerned, if any (copied from the leaf).
        jurisdiction -> Nullable<Text>,
        /// The canonical leaf bytes (UTF-8 JSON) hashed into the tree.
        leaf -> Text,
    }
}

diesel::table! {
    /// Perfect subtree hashes of the audit Merkle tree; append-only.
    audit_nodes (level, idx) {
        /// Height above the leaves (0 = leaf hash).
        level -> Integer,
        /// Index within the level.
        idx -> BigInt,
        /// SHA-256 node hash.
        hash -> Binary,
    }
}

diesel::table! {
    /// Signed checkpoints of the audit log; append-only.
    audit_checkpoints (origin, size) {
        /// Log origin (first line of the checkpoint).
        origin -> Text,
        /// Tree size.
        size -> BigInt,
        /// Root hash at that size.
        root -> Binary,
        /// The signed note, as published.
        note -> Text,
        /// When it was signed, RFC 3339 UTC.
        signed_at -> Text,
    }
}
