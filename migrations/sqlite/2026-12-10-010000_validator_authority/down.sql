ALTER TABLE order_versions DROP COLUMN validator_authority_id;
