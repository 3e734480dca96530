-- The authority registry: who may send orders, of which registered kind, from which country,
-- and the public keys their requests must be signed with. What an order says about its own
-- issuer is never trusted; these rows are.
CREATE TABLE authorities (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    country TEXT NOT NULL CHECK (length(country) = 2),
    kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 40),
    -- Comma-separated e-mail addresses: the only addresses notices ever go to.
    contacts TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at BIGINT NOT NULL
);

-- Each key's algorithm is pinned: a token is verified with that algorithm only.
CREATE TABLE authority_keys (
    kid TEXT PRIMARY KEY NOT NULL CHECK (length(kid) BETWEEN 1 AND 128),
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    algorithm TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256', 'RS256')),
    public_key_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX authority_keys_by_authority ON authority_keys (authority_id);
