-- Legal model v2 (issue 17): the earliest follow-up task of an order's decision (e.g. asking
-- for legal process after a US emergency disclosure, checking that a Brazilian authority
-- applied to the court within 60 days), so the legal team is reminded of it like of the
-- ex-post validation and the end of a hold. UTC microseconds; NULL: none.
ALTER TABLE orders ADD COLUMN follow_up_due_at BIGINT;
