DROP TABLE approvals;
DROP TABLE packages;
ALTER TABLE order_versions DROP COLUMN validation_checked_at;
ALTER TABLE order_versions DROP COLUMN validation_checked_by;
ALTER TABLE order_versions DROP COLUMN scope_json;
ALTER TABLE orders DROP COLUMN reminded_at;
ALTER TABLE orders DROP COLUMN entered_by;
DROP TABLE staff_sessions;
DROP TABLE staff_users;
