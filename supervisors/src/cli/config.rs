//! Settings: flags, then environment, then `config.toml` in the data directory, then defaults.
//!
//! clap already merges flags and environment variables; this module adds the file underneath and
//! resolves the data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// Name of the optional settings file inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";

/// What `config.toml` may hold. Unknown keys are an error, so a typo does not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Peer listen address.
    pub listen: Option<String>,
    /// Switchboards to use.
    #[serde(default)]
    pub switchboards: Vec<String>,
    /// Log filter.
    pub log: Option<String>,
    /// Serve policy: `everyone` or `follows`.
    pub serve: Option<String>,
    /// Introductions policy: `follows`, `relay` or `everyone`.
    pub introductions: Option<String>,
    /// Who may see this node's presence: `follows`, `followers` or `everyone`.
    pub presence_visible_to: Option<String>,
    /// The blob store's limits (`[blobs]`).
    #[serde(default)]
    pub blobs: BlobsConfig,
}

/// `[blobs]` in config.toml: `max_bytes` (largest blob stored, attached or fetched; default
/// 5 MiB) and `budget_bytes` (largest total held; default 1 GiB).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsConfig {
    /// Largest blob.
    pub max_bytes: Option<u64>,
    /// Largest total.
    pub budget_bytes: Option<u64>,
}

impl BlobsConfig {
    /// The limits these settings give, or a sentence saying what is wrong with them.
    pub fn limits(&self) -> Result<kith::blob::BlobLimits> {
        kith::blob::BlobLimits::from_config(self.max_bytes, self.budget_bytes).with_context(|| {
            format!(
                "[blobs] in {CONFIG_FILE}: max_bytes must be 1 to {} and budget_bytes at least max_bytes",
                kith::limits::BLOB_BYTES_CEILING
            )
        })
    }
}

/// The data directory: the flag or KITH_DATA_DIR, else the platform's data directory.
pub fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let dirs = directories::ProjectDirs::from("org", "kith", "kith").context(
        "cannot find a home directory for the default data directory; pass --data-dir DIR",
    )?;
    Ok(dirs.data_dir().to_path_buf())
}

/// The log filter, by the precedence the README gives: the `--log` flag or `KITH_LOG` (clap
/// merges those two), then `RUST_LOG`, then `log` in `config.toml`, then the command's own
/// default (benchmarks are quiet), then `info`.
pub fn log_filter(
    flag: Option<String>,
    rust_log: Option<String>,
    file: Option<String>,
    command_default: Option<String>,
) -> String {
    flag.or(rust_log)
        .or(file)
        .or(command_default)
        .unwrap_or_else(|| DEFAULT_LOG.to_string())
}

/// The log filter used when none is given, or when the one given is not valid.
pub const DEFAULT_LOG: &str = "info";

/// Read `config.toml` from `dir`, or defaults if there is none.
pub fn load(dir: &Path) -> Result<FileConfig> {
    let path = dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not valid; fix or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn the_environment_beats_the_file_and_the_flag_beats_both() {
        let filter = |flag, env, file, quiet| log_filter(flag, env, file, quiet);
        assert_eq!(
            filter(some("trace"), some("debug"), some("off"), None),
            "trace"
        );
        assert_eq!(filter(None, some("debug"), some("off"), None), "debug");
        assert_eq!(filter(None, None, some("off"), some("warn")), "off");
        assert_eq!(filter(None, None, None, some("warn")), "warn");
        assert_eq!(filter(None, None, None, None), DEFAULT_LOG);
    }
}
