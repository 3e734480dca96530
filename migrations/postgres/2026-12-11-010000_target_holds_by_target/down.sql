DROP INDEX target_holds_by_target;
