-- Provenance: signing keys bound to principals, and the signed documents kept with model
-- versions (OMS bundles, provenance envelopes).
CREATE TABLE signing_keys (
    -- The key's hint: lower-case hex SHA-256 of its SPKI PEM (what OMS bundles carry).
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    principal_id TEXT NOT NULL REFERENCES principals (id),
    curve TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    -- PKCS#8 private key sealed with a key derived from the server key; NULL when only the
    -- public half is registered (the signer keeps the private key elsewhere).
    private_sealed BLOB,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    revoke_reason TEXT
);
CREATE INDEX signing_keys_by_principal ON signing_keys (principal_id);

CREATE TABLE model_version_attestations (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- 'oms' (Sigstore bundle of the version's files) or 'provenance' (DSSE envelope).
    kind TEXT NOT NULL,
    -- SHA-256 of the document bytes.
    digest TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES signing_keys (id),
    -- The subject's root digest (OMS v1.0) the document is about.
    root_digest TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (name, version, kind, digest),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
);
