//! Configuration: built-in defaults, then a TOML file, then `MLSEC_*` environment variables, then
//! command-line flags; each later source overrides the earlier ones. Unknown keys in the file and
//! unknown `MLSEC_*` variables are errors that name the key, so a typo never silently falls back to
//! a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The settings file, as written by a user. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Directory holding the SQLite database, blobs and the server key (default `.mlsec`).
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to keep metadata in PostgreSQL instead of the embedded SQLite file.
    pub database_url: Option<String>,
    /// Address `mlsec serve` listens on (default `127.0.0.1:8750`).
    pub listen: Option<String>,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub blobs: BlobsSection,
    #[serde(default)]
    pub openlineage: OpenLineageSection,
}

/// OpenLineage RunEvents for runs and registered versions, POSTed to an HTTP endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLineageSection {
    /// The endpoint, e.g. `http://marquez:5000/api/v1/lineage` (unset: no events).
    pub url: Option<String>,
    /// Namespace of jobs and datasets (default `mlsec`).
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a filter such as `mlsec=debug,sqlx=warn`.
    pub level: Option<String>,
    /// `text` (default) or `json`.
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Sign a checkpoint of the chain head every this many events (default 1000).
    pub checkpoint_every: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsSection {
    /// Largest accepted upload in bytes (default 64 GiB).
    pub max_upload_bytes: Option<u64>,
    /// `local` (default: `DATA_DIR/blobs`) or `s3` (needs `[blobs.s3]`).
    pub backend: Option<String>,
    /// The S3-compatible bucket, when `backend = "s3"`.
    pub s3: Option<mlsec_core::store::S3Config>,
}

/// Values given on the command line.
#[derive(Debug, Default, Clone)]
pub struct FlagOverrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: String,
    pub log_level: String,
    /// Whether a source set the log level (otherwise CLI commands other than `serve` log only
    /// warnings, so their output stays readable).
    pub log_level_explicit: bool,
    pub log_format: LogFormat,
    pub checkpoint_every: u64,
    pub max_upload_bytes: u64,
    pub blob_backend: mlsec_core::BlobBackend,
    /// OpenLineage delivery, when configured. The API key comes from the environment only
    /// (`MLSEC_OPENLINEAGE_API_KEY`), so it never sits in a settings file.
    pub openlineage: Option<mlsec_server::OpenLineageConfig>,
    /// The file that was read, if any.
    pub source_file: Option<PathBuf>,
}

/// Environment variables mlsec reads. `MLSEC_TEST_*` belongs to the test suite and is ignored.
pub const ENV_VARS: &[&str] = &[
    "MLSEC_CONFIG",
    "MLSEC_DATA_DIR",
    "MLSEC_DATABASE_URL",
    "MLSEC_LISTEN",
    "MLSEC_LOG_LEVEL",
    "MLSEC_LOG_FORMAT",
    "MLSEC_AUDIT_CHECKPOINT_EVERY",
    "MLSEC_BLOBS_MAX_UPLOAD_BYTES",
    "MLSEC_OPENLINEAGE_URL",
    "MLSEC_OPENLINEAGE_NAMESPACE",
    "MLSEC_OPENLINEAGE_API_KEY",
];

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

impl Config {
    /// Loads from the process environment.
    pub fn load(flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::load_from(flags, &env)
    }

    /// Loads from the given environment (tests pass their own).
    pub fn load_from(
        flags: &FlagOverrides,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        for (key, _) in env {
            if key.starts_with("MLSEC_")
                && !key.starts_with("MLSEC_TEST_")
                && !ENV_VARS.contains(&key.as_str())
            {
                return Err(err(format!(
                    "unknown environment variable `{key}` (known: {})",
                    ENV_VARS.join(", ")
                )));
            }
        }

        let file_path = flags
            .config
            .clone()
            .or_else(|| get("MLSEC_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("mlsec.toml")).filter(|p| p.is_file()));
        let file = match &file_path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };

        let parse_u64 = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| err(format!("`{name}` must be a whole number, got `{v}`")))
        };

        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| get("MLSEC_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(".mlsec"));
        let database_url = flags
            .database_url
            .clone()
            .or_else(|| get("MLSEC_DATABASE_URL"))
            .or(file.database_url)
            .filter(|u| !u.is_empty());
        let listen = flags
            .listen
            .clone()
            .or_else(|| get("MLSEC_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8750".to_owned());
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(err(format!(
                "`listen` must be an address like 127.0.0.1:8750, got `{listen}`"
            )));
        }
        let explicit_level = flags
            .log_level
            .clone()
            .or_else(|| get("MLSEC_LOG_LEVEL"))
            .or(file.log.level);
        let log_level_explicit = explicit_level.is_some();
        let log_level = explicit_level.unwrap_or_else(|| "info".to_owned());
        let log_format = match flags
            .log_format
            .clone()
            .or_else(|| get("MLSEC_LOG_FORMAT"))
            .or(file.log.format)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(format!(
                    "`log.format` must be `text` or `json`, got `{other}`"
                )));
            }
        };
        let checkpoint_every = match get("MLSEC_AUDIT_CHECKPOINT_EVERY") {
            Some(v) => parse_u64("MLSEC_AUDIT_CHECKPOINT_EVERY", v)?,
            None => file.audit.checkpoint_every.unwrap_or(1000),
        };
        if checkpoint_every == 0 {
            return Err(err("`audit.checkpoint_every` must be at least 1"));
        }
        let max_upload_bytes = match get("MLSEC_BLOBS_MAX_UPLOAD_BYTES") {
            Some(v) => parse_u64("MLSEC_BLOBS_MAX_UPLOAD_BYTES", v)?,
            None => file.blobs.max_upload_bytes.unwrap_or(64 << 30),
        };
        let openlineage = match get("MLSEC_OPENLINEAGE_URL")
            .or(file.openlineage.url)
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    // Not echoed: a URL may carry credentials.
                    return Err(err("`openlineage.url` must be an http:// or https:// URL"));
                }
                let namespace = get("MLSEC_OPENLINEAGE_NAMESPACE")
                    .or(file.openlineage.namespace)
                    .unwrap_or_else(|| "mlsec".to_owned());
                if namespace.is_empty() || namespace.len() > 256 {
                    return Err(err("`openlineage.namespace` must be 1 to 256 characters"));
                }
                Some(mlsec_server::OpenLineageConfig {
                    url,
                    namespace,
                    api_key: get("MLSEC_OPENLINEAGE_API_KEY").filter(|k| !k.is_empty()),
                    timeout: std::time::Duration::from_secs(10),
                    queue: 10_000,
                })
            }
        };
        let blob_backend = match (file.blobs.backend.as_deref(), file.blobs.s3) {
            (None | Some("local"), None) => mlsec_core::BlobBackend::Local,
            (None | Some("local"), Some(_)) => {
                return Err(err("`[blobs.s3]` is set but `blobs.backend` is not `s3`"));
            }
            (Some("s3"), Some(s3)) => mlsec_core::BlobBackend::S3(s3),
            (Some("s3"), None) => {
                return Err(err("`blobs.backend = \"s3\"` needs a `[blobs.s3]` section"));
            }
            (Some(other), _) => {
                return Err(err(format!(
                    "`blobs.backend` must be `local` or `s3`, got `{other}`"
                )));
            }
        };
        Ok(Config {
            blob_backend,
            openlineage,
            data_dir,
            database_url,
            listen,
            log_level,
            log_level_explicit,
            log_format,
            checkpoint_every,
            max_upload_bytes,
            source_file: file_path,
        })
    }

    pub fn core(&self) -> mlsec_core::CoreConfig {
        mlsec_core::CoreConfig {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            checkpoint_every: self.checkpoint_every,
            max_upload_bytes: self.max_upload_bytes,
            blob_backend: self.blob_backend.clone(),
            access: mlsec_core::AccessConfig::default(),
            clock: mlsec_core::Clock::system(),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read config file `{}`: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        err(format!(
            "config file `{}`: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_any_source() {
        let c = Config::load_from(&FlagOverrides::default(), &[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from(".mlsec"));
        assert_eq!(c.listen, "127.0.0.1:8750");
        assert_eq!(c.database_url, None);
        assert_eq!(c.checkpoint_every, 1000);
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"/from/file\"\n[audit]\ncheckpoint_every = 5\n",
        )
        .unwrap();
        let mut flags = FlagOverrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load_from(&flags, &[]).unwrap();
        assert_eq!((c.listen.as_str(), c.checkpoint_every), ("127.0.0.1:1", 5));
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));

        let e = env(&[
            ("MLSEC_LISTEN", "127.0.0.1:2"),
            ("MLSEC_AUDIT_CHECKPOINT_EVERY", "7"),
        ]);
        let c = Config::load_from(&flags, &e).unwrap();
        assert_eq!((c.listen.as_str(), c.checkpoint_every), ("127.0.0.1:2", 7));

        flags.listen = Some("127.0.0.1:3".into());
        let c = Config::load_from(&flags, &e).unwrap();
        assert_eq!(c.listen, "127.0.0.1:3");
    }

    #[test]
    fn openlineage_from_file_and_environment() {
        let c = Config::load_from(&FlagOverrides::default(), &[]).unwrap();
        assert!(c.openlineage.is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "[openlineage]\nurl = \"http://marquez:5000/api/v1/lineage\"\nnamespace = \"prod\"\n",
        )
        .unwrap();
        let flags = FlagOverrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load_from(&flags, &env(&[("MLSEC_OPENLINEAGE_API_KEY", "k")])).unwrap();
        let ol = c.openlineage.unwrap();
        assert_eq!(ol.url, "http://marquez:5000/api/v1/lineage");
        assert_eq!(ol.namespace, "prod");
        assert_eq!(ol.api_key.as_deref(), Some("k"));
        assert!(
            !format!("{ol:?}").contains("\"k\""),
            "the key is not in Debug output"
        );
        let e = Config::load_from(
            &FlagOverrides::default(),
            &env(&[("MLSEC_OPENLINEAGE_URL", "ftp://x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("openlineage.url"), "{e}");
        // The key is not a file setting.
        std::fs::write(
            &file,
            "[openlineage]\nurl = \"http://x\"\napi_key = \"k\"\n",
        )
        .unwrap();
        let e = Config::load_from(&flags, &[]).unwrap_err().to_string();
        assert!(e.contains("api_key"), "{e}");
    }

    #[test]
    fn unknown_keys_and_variables_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "[audit]\ncheckpoint_evry = 5\n").unwrap();
        let flags = FlagOverrides {
            config: Some(file),
            ..Default::default()
        };
        let e = Config::load_from(&flags, &[]).unwrap_err().to_string();
        assert!(e.contains("checkpoint_evry"), "{e}");

        let e = Config::load_from(&FlagOverrides::default(), &env(&[("MLSEC_LISTN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`MLSEC_LISTN`"), "{e}");
        // The test suite's own variables are not mlsec settings.
        assert!(
            Config::load_from(
                &FlagOverrides::default(),
                &env(&[("MLSEC_TEST_DATABASE_URL", "x")])
            )
            .is_ok()
        );

        let e = Config::load_from(&FlagOverrides::default(), &env(&[("MLSEC_LISTEN", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`nope`"), "{e}");
    }
}
