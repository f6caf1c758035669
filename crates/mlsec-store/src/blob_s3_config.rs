use serde::Deserialize;

/// Settings of the S3-compatible blob backend (`[blobs.s3]` in the config file).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Endpoint URL for S3-compatible services (MinIO, Ceph); empty for AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Credentials; when absent, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` are used.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Key prefix inside the bucket (default none).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Allow plain-HTTP endpoints (local test servers only).
    #[serde(default)]
    pub allow_http: bool,
}
