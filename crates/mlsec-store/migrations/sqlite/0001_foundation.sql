-- Foundation: audit chain, checkpoints, blobs, principals and API tokens.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_idx BIGINT NOT NULL,
    head_hash BLOB NOT NULL
);
INSERT INTO audit_head (id, next_idx, head_hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE audit_events (
    idx BIGINT PRIMARY KEY,
    hash BLOB NOT NULL,
    canonical BLOB NOT NULL,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor, idx);
CREATE INDEX audit_events_action ON audit_events (action, idx);

CREATE TABLE audit_checkpoints (
    idx BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    head BLOB NOT NULL,
    time TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (idx, key_id)
);

CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE principals (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals (id),
    name TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);
