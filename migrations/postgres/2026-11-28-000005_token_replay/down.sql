DROP TABLE used_token_ids;
