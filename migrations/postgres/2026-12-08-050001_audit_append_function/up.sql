-- An audit append in one round trip. Appending an entry reads the next position and the left
-- siblings of the Merkle nodes the new leaf completes, and writes the entry and those nodes:
-- four to six statements, each a network round trip. This function does all of it on the
-- server, under the append lock, in one call (src/audit/log.rs, src/db/audit.rs).
--
-- The caller builds the leaf for the position it expects (the leaf holds its own `seq`, and
-- its authenticator is signed in the Writ process, so neither can be made here). When the log's
-- next position is not `p_seq` (another instance appended in between, or the caller had no
-- guess), nothing is written and the next position is returned: the caller rebuilds the leaf
-- for it and calls again. Its transaction now holds the lock, so the second call cannot miss.
-- The nodes are hashed exactly as src/audit/merkle.rs hashes them (RFC 9162 section 2.1.1:
-- SHA-256(0x01 || left || right)).
CREATE FUNCTION writ_audit_append(
    p_seq BIGINT,
    p_at TEXT,
    p_actor_kind TEXT,
    p_actor_id TEXT,
    p_event TEXT,
    p_order_id TEXT,
    p_jurisdiction TEXT,
    p_leaf TEXT,
    p_leaf_hash BYTEA,
    p_authenticator BYTEA
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    next_seq BIGINT;
    node BYTEA := p_leaf_hash;
    sibling BYTEA;
    i BIGINT := p_seq;
    lvl INTEGER := 0;
BEGIN
    -- The append lock of src/audit/log.rs (PG_APPEND_LOCK, "WRITAUDT"), held until commit.
    PERFORM pg_advisory_xact_lock(6292172255612191828);
    SELECT COALESCE(max(seq) + 1, 0) INTO next_seq FROM audit_entries;
    IF next_seq <> p_seq THEN
        RETURN next_seq;
    END IF;
    INSERT INTO audit_entries
        (seq, at, actor_kind, actor_id, event, order_id, jurisdiction, leaf, authenticator)
        VALUES (p_seq, p_at, p_actor_kind, p_actor_id, p_event, p_order_id, p_jurisdiction,
                p_leaf, p_authenticator);
    INSERT INTO audit_nodes (level, idx, hash) VALUES (0, p_seq, node);
    -- A node that is a right child (odd index) completes its parent.
    WHILE i % 2 = 1 LOOP
        SELECT hash INTO sibling FROM audit_nodes WHERE level = lvl AND idx = i - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Merkle node (level %, index %) is missing', lvl, i - 1;
        END IF;
        node := sha256('\x01'::bytea || sibling || node);
        i := i / 2;
        lvl := lvl + 1;
        INSERT INTO audit_nodes (level, idx, hash) VALUES (lvl, i, node);
    END LOOP;
    RETURN next_seq;
END
$$;
