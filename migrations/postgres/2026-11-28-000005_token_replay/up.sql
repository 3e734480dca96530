-- Token ids (JWT jti) already used, per authority: a token is accepted once, whichever
-- instance receives it. Rows are kept until the token would have expired anyway.
CREATE TABLE used_token_ids (
    authority_id TEXT NOT NULL,
    jti TEXT NOT NULL CHECK (length(jti) BETWEEN 1 AND 128),
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (authority_id, jti)
);
CREATE INDEX used_token_ids_expiry ON used_token_ids (expires_at);
