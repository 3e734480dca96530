-- Nothing on SQLite: the PostgreSQL migration of the same name adds the table a write
-- transaction that appends to the audit log writes to wait for the disk flush after committing
-- without it (src/db/flush.rs). SQLite holds its one write lock through its own commit and
-- flush, as every write transaction there does.
SELECT 1;
