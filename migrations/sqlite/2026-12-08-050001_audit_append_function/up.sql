-- Nothing on SQLite: the PostgreSQL migration of the same name adds a server-side function
-- that appends an audit entry in one round trip. SQLite runs in the process, where round trips
-- cost nothing, and keeps appending statement by statement (src/audit/log.rs).
SELECT 1;
