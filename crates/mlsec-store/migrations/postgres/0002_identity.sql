-- Identity and access: passwords, deletion tombstones, token restrictions, role grants, TOTP
-- second factors and recovery codes, console sessions, brute-force throttles, the versioned
-- authorization policy, and the epoch that tells replicas to drop cached credentials.
ALTER TABLE principals ADD COLUMN password_hash TEXT;
ALTER TABLE principals ADD COLUMN deleted_at BIGINT;
ALTER TABLE principals ADD COLUMN updated_at BIGINT;

ALTER TABLE api_tokens ADD COLUMN read_only BIGINT NOT NULL DEFAULT 0;
-- JSON array of scopes the token is limited to; NULL means the owner's full reach.
ALTER TABLE api_tokens ADD COLUMN resources TEXT;

CREATE TABLE role_grants (
    principal_id TEXT NOT NULL REFERENCES principals (id),
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (principal_id, role, scope)
);

CREATE TABLE mfa_totp (
    principal_id TEXT PRIMARY KEY REFERENCES principals (id),
    -- The TOTP key, sealed with a key derived from the server key (it must be usable, so it
    -- cannot be hashed).
    secret_sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    -- Highest time step accepted: a code is never accepted twice.
    last_step BIGINT NOT NULL DEFAULT -1
);

CREATE TABLE mfa_recovery_codes (
    principal_id TEXT NOT NULL REFERENCES principals (id),
    code_hash BYTEA NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (principal_id, code_hash)
);

CREATE TABLE sessions (
    id_hash BYTEA PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals (id),
    csrf_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    stepped_up_at BIGINT,
    source TEXT NOT NULL
);
CREATE INDEX sessions_principal ON sessions (principal_id);

CREATE TABLE auth_throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

CREATE TABLE policies (
    version BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE identity_epoch (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO identity_epoch (id, epoch) VALUES (1, 0);
