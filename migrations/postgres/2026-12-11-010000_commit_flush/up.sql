-- What a write transaction that appends to the audit log writes after its commit, to wait for
-- PostgreSQL's flush of the write-ahead log (src/db/flush.rs). That transaction commits with
-- synchronous_commit off, so that the append lock it holds is released without waiting for the
-- disk; this one synchronous write then flushes the log up to its own commit record, past the
-- transaction's. One row per server process (pg_backend_pid()), so that sessions flushing at the
-- same moment never wait for each other's row; the count is only there to make the write. It
-- holds no personal data.
CREATE TABLE writ_commit_flush (
    backend INTEGER PRIMARY KEY,
    flushes BIGINT NOT NULL
);
