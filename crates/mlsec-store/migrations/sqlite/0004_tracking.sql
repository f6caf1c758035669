-- Experiment tracking and the model registry: experiments, runs with their params, metrics
-- (full history and the latest value per key), tags and dataset inputs; artifacts with their
-- digests and scan results; registered models, immutable versions pinned by the digest of
-- every file, aliases; MLflow 3 logged models.
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    -- active | deleted
    lifecycle_stage TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, created_at, updated_at, created_by)
VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', 0, 0, 'system');

CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (id),
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- RUNNING | SCHEDULED | FINISHED | FAILED | KILLED
    status TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    parent_run_id TEXT,
    created_by TEXT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time);
CREATE INDEX runs_by_parent ON runs (parent_run_id);

CREATE TABLE run_params (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_params_by_value ON run_params (key, value);

CREATE TABLE run_tags (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_tags_by_value ON run_tags (key, value);

-- Every logged value, in the order it arrived.
CREATE TABLE run_metrics (
    -- Arrival order, the last tie-breaker of a metric's history.
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    key TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL
);
CREATE INDEX run_metrics_history ON run_metrics (run_id, key, step, timestamp, seq);

-- The value with the highest (step, timestamp, value) per key: what searches compare.
CREATE TABLE run_latest_metrics (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    key TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_latest_metrics_by_value ON run_latest_metrics (key, value);

-- Datasets a run consumed; pinned to an mlsec dataset version when one was named.
CREATE TABLE run_inputs (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema_json TEXT,
    profile TEXT,
    tags_json TEXT NOT NULL,
    mlsec_dataset TEXT,
    mlsec_number BIGINT,
    mlsec_digest TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, name, digest)
);
CREATE INDEX run_inputs_by_mlsec_digest ON run_inputs (mlsec_digest);
CREATE INDEX run_inputs_by_mlsec_version ON run_inputs (mlsec_dataset, mlsec_number);

-- MLflow 3 logged models: a model's artifacts, logged from a run.
CREATE TABLE logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (id),
    name TEXT NOT NULL,
    source_run_id TEXT,
    -- PENDING | READY | FAILED
    status TEXT NOT NULL,
    model_type TEXT,
    artifact_location TEXT NOT NULL,
    params_json TEXT NOT NULL,
    tags_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX logged_models_by_run ON logged_models (source_run_id);

-- Artifacts by their path in the artifact namespace (`EXP/RUN/artifacts/…`,
-- `EXP/models/MODEL/artifacts/…`): written once, never changed.
CREATE TABLE artifacts (
    path TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL,
    -- run | logged_model
    owner_kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    -- Model-scanner result: the worst severity (NULL when nothing was found), the coverage and
    -- the findings (JSON).
    scan_severity TEXT,
    scan_coverage TEXT NOT NULL,
    scan_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX artifacts_by_owner ON artifacts (owner_id);
CREATE INDEX artifacts_by_sha256 ON artifacts (sha256);

CREATE TABLE registered_models (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    -- Highest version number ever issued: numbers are never reused, even after a delete.
    last_version BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE registered_model_tags (
    name TEXT NOT NULL REFERENCES registered_models (name),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);

-- Versions: the files and their digests are fixed at creation; no statement updates them.
CREATE TABLE model_versions (
    name TEXT NOT NULL REFERENCES registered_models (name),
    version BIGINT NOT NULL,
    -- SHA-256 of the canonical manifest of the version's files.
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    file_count BIGINT NOT NULL,
    source TEXT NOT NULL,
    run_id TEXT,
    model_id TEXT,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    -- Worst scanner severity over the files; critical findings quarantine the version.
    scan_severity TEXT,
    quarantined BIGINT NOT NULL,
    scan_summary TEXT NOT NULL,
    deleted_at BIGINT,
    -- What the version was made from, frozen at creation: the run's pinned dataset inputs, code
    -- commit and parent (JSON), so later changes to the run cannot rewrite its lineage.
    lineage_json TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_by_run ON model_versions (run_id);
CREATE INDEX model_versions_by_digest ON model_versions (digest);

CREATE TABLE model_version_files (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    scan_severity TEXT,
    PRIMARY KEY (name, version, path),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
);

CREATE TABLE model_version_tags (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
);

CREATE TABLE model_aliases (
    name TEXT NOT NULL REFERENCES registered_models (name),
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
);
CREATE INDEX model_aliases_by_version ON model_aliases (name, version);
