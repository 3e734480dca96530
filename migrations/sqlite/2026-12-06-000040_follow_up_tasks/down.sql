ALTER TABLE orders DROP COLUMN follow_up_due_at;
