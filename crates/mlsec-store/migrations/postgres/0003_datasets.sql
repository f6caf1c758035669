-- Datasets: immutable, content-addressed versions with their files, profiles and schema, and
-- the checks recorded on them.
CREATE TABLE datasets (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    -- The schema enforced on new versions (JSON): inferred from the first version, editable.
    schema_json TEXT,
    schema_revision BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

CREATE TABLE dataset_versions (
    dataset TEXT NOT NULL REFERENCES datasets (name),
    number BIGINT NOT NULL,
    -- SHA-256 of the canonical manifest: names the content, wherever it was added.
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    file_count BIGINT NOT NULL,
    -- Rows of the tabular files; NULL when the version has none.
    row_count BIGINT,
    message TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    profile_json TEXT,
    -- unchecked | passed | failed; a failed version is quarantined.
    status TEXT NOT NULL DEFAULT 'unchecked',
    quarantined BIGINT NOT NULL DEFAULT 0,
    checked_at BIGINT,
    PRIMARY KEY (dataset, number),
    UNIQUE (dataset, digest)
);
CREATE INDEX dataset_versions_by_digest ON dataset_versions (digest);

CREATE TABLE dataset_files (
    dataset TEXT NOT NULL,
    number BIGINT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    format TEXT,
    row_count BIGINT,
    PRIMARY KEY (dataset, number, path),
    FOREIGN KEY (dataset, number) REFERENCES dataset_versions (dataset, number)
);
CREATE INDEX dataset_files_by_sha256 ON dataset_files (sha256);

CREATE TABLE dataset_checks (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    number BIGINT NOT NULL,
    reference_number BIGINT,
    verdict TEXT NOT NULL,
    result_json TEXT NOT NULL,
    -- The HTML report, stored as a blob.
    report_digest TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    FOREIGN KEY (dataset, number) REFERENCES dataset_versions (dataset, number)
);
CREATE INDEX dataset_checks_by_version ON dataset_checks (dataset, number, created_at);
