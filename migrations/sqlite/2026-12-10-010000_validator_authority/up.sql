-- The validating authority the registry knows by the carrier's identifier (e-Evidence's
-- ValidatingAuthority approval), so that a later decision takes its registered kind again.
ALTER TABLE order_versions ADD COLUMN validator_authority_id TEXT;
