-- A preservation request's renewals are counted from the earlier holds of its targets
-- (src/orders/holds.rs, earlier_preservations) at every preservation intake: found by target,
-- not by reading every hold.
CREATE INDEX target_holds_by_target ON target_holds (target_kind, target_value);
