//! Configuration: command-line flags, their environment fallbacks and one TOML file, merged into a
//! validated [`Config`].
//!
//! Precedence, highest first: a flag, its environment variable, the `--config` file, the default.
//! The entry point is [`Config::load`]; every error names the flag or key at fault and the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hickory_proto::rr::Name;
use serde::Deserialize;

/// Why the configuration could not be loaded. Every variant names the file and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("config file {path}: cannot read it: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, including the key and line.
        message: String,
    },
    /// A value is syntactically fine but not acceptable.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// Where the value came from: `command line` or `config file PATH`.
        origin: String,
        /// The key or flag name.
        key: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the endpoints of a Service with a selector come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EndpointsFrom {
    /// Watch Pods and apply the EndpointSlice controller's rules ourselves (fastest propagation).
    #[default]
    Pods,
    /// Use the EndpointSlices of every Service (cheaper on huge clusters: no Pod watch).
    Endpointslices,
}

/// Command-line flags. Every flag has an environment fallback (`HEADLESS_DNS_*`) and a TOML key
/// spelt like the flag (`http-listen = "..."`).
#[derive(Debug, Parser, Default)]
#[command(
    name = "headless-dns",
    version,
    about = "Authoritative DNS for Kubernetes headless Services and StatefulSet pods"
)]
pub struct Cli {
    /// TOML configuration file; flags and environment variables override its keys.
    #[arg(long, env = "HEADLESS_DNS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve DNS on, UDP and TCP (repeatable; env: comma-separated). Default 127.0.0.1:5353.
    #[arg(long, env = "HEADLESS_DNS_LISTEN", value_name = "ADDR:PORT", value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,
    /// The zone served authoritatively. Default cluster.local.
    #[arg(long, env = "HEADLESS_DNS_ZONE", value_name = "NAME")]
    pub zone: Option<String>,
    /// Kubeconfig to reach the API server (else KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "HEADLESS_DNS_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve from a YAML file or folder of Kubernetes objects instead of a cluster (watched for changes).
    #[arg(long, env = "HEADLESS_DNS_MANIFESTS", value_name = "PATH")]
    pub manifests: Option<PathBuf>,
    /// Address for the HTTP endpoints /healthz and /readyz. Default: none.
    #[arg(long, env = "HEADLESS_DNS_HTTP_LISTEN", value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,
    /// TTL of answers in seconds (0..=3600). Default 5.
    #[arg(long, env = "HEADLESS_DNS_TTL", value_name = "SECS")]
    pub ttl: Option<u32>,
    /// Log format. Default text.
    #[arg(long, env = "HEADLESS_DNS_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Where Services with a selector take their endpoints from. Default pods.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINTS_FROM", value_name = "SOURCE")]
    pub endpoints_from: Option<EndpointsFrom>,
    /// Idle timeout of a DNS TCP connection, in seconds. Default 10.
    #[arg(long, env = "HEADLESS_DNS_TCP_IDLE_TIMEOUT", value_name = "SECS")]
    pub tcp_idle_timeout: Option<u64>,
}

/// The `--config` TOML file: the same keys as the flags, in kebab-case. Unknown keys are errors.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// See [`Cli::listen`].
    pub listen: Option<Vec<String>>,
    /// See [`Cli::zone`].
    pub zone: Option<String>,
    /// See [`Cli::kubeconfig`]; relative paths are relative to the config file.
    pub kubeconfig: Option<PathBuf>,
    /// See [`Cli::manifests`]; relative paths are relative to the config file.
    pub manifests: Option<PathBuf>,
    /// See [`Cli::http_listen`].
    pub http_listen: Option<String>,
    /// See [`Cli::ttl`].
    pub ttl: Option<i64>,
    /// See [`Cli::log_format`].
    pub log_format: Option<LogFormat>,
    /// See [`Cli::endpoints_from`].
    pub endpoints_from: Option<EndpointsFrom>,
    /// See [`Cli::tcp_idle_timeout`].
    pub tcp_idle_timeout: Option<i64>,
}

/// Where the records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// A Kubernetes API server, reached with this kubeconfig (None: infer).
    Kubernetes {
        /// Explicit kubeconfig file.
        kubeconfig: Option<PathBuf>,
    },
    /// A YAML file or folder.
    Manifests(PathBuf),
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// DNS listen addresses (UDP and TCP each).
    pub listen: Vec<SocketAddr>,
    /// The zone apex, lower-cased and fully qualified.
    pub zone: Name,
    /// Where records come from.
    pub source: SourceConfig,
    /// HTTP address for health endpoints.
    pub http_listen: Option<SocketAddr>,
    /// Answer TTL in seconds.
    pub ttl: u32,
    /// Log format.
    pub log_format: LogFormat,
    /// Endpoint source for Services with a selector.
    pub endpoints_from: EndpointsFrom,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
}

/// Largest TTL accepted: an hour, as CoreDNS's `ttl` option allows.
pub const MAX_TTL: u32 = 3600;

impl Config {
    /// Parses the process's flags and environment, reads the `--config` file and validates all.
    /// Clap itself reports bad flags (exit status 2); every other error is a [`ConfigError`].
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_cli(Cli::parse())
    }

    /// Builds the configuration from parsed flags (and the file they name).
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let (file, file_path) = match &cli.config {
            Some(path) => (read_file(path)?, Some(path.clone())),
            None => (FileConfig::default(), None),
        };
        merge(cli, file, file_path.as_deref())
    }
}

/// Reads and parses a TOML configuration file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string().trim_end().replace('\n', " ") })
}

fn merge(cli: Cli, file: FileConfig, file_path: Option<&Path>) -> Result<Config, ConfigError> {
    // Destructure so that a new field cannot be silently ignored.
    let Cli {
        config: _,
        listen,
        zone,
        kubeconfig,
        manifests,
        http_listen,
        ttl,
        log_format,
        endpoints_from,
        tcp_idle_timeout,
    } = cli;
    let file_origin = || match file_path {
        Some(p) => format!("config file {}", p.display()),
        None => "config file".to_owned(),
    };
    let cli_origin = || "command line or environment".to_owned();
    let base_dir = file_path.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let relative = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };

    let listen = if !listen.is_empty() {
        listen
    } else if let Some(list) = file.listen {
        let mut out = Vec::new();
        for item in list {
            out.push(item.parse::<SocketAddr>().map_err(|e| ConfigError::Invalid {
                origin: file_origin(),
                key: "listen",
                reason: format!("`{item}` is not ADDR:PORT ({e})"),
            })?);
        }
        if out.is_empty() {
            return Err(ConfigError::Invalid {
                origin: file_origin(),
                key: "listen",
                reason: "needs at least one address".into(),
            });
        }
        out
    } else {
        vec!["127.0.0.1:5353".parse().expect("valid default")]
    };

    let (zone_text, zone_origin) = match (zone, file.zone) {
        (Some(z), _) => (z, cli_origin()),
        (None, Some(z)) => (z, file_origin()),
        (None, None) => ("cluster.local".to_owned(), "default".to_owned()),
    };
    let zone =
        parse_zone(&zone_text).map_err(|reason| ConfigError::Invalid { origin: zone_origin, key: "zone", reason })?;

    let kubeconfig = kubeconfig.or(file.kubeconfig.map(relative));
    let manifests = manifests.or(file.manifests.map(relative));
    let source = match (manifests, kubeconfig) {
        (Some(m), _) => SourceConfig::Manifests(m),
        (None, k) => SourceConfig::Kubernetes { kubeconfig: k },
    };

    let http_listen = match (http_listen, file.http_listen) {
        (Some(a), _) => Some(a),
        (None, Some(text)) => Some(text.parse().map_err(|e| ConfigError::Invalid {
            origin: file_origin(),
            key: "http-listen",
            reason: format!("`{text}` is not ADDR:PORT ({e})"),
        })?),
        (None, None) => None,
    };

    let (ttl, ttl_origin) = match (ttl.map(i64::from), file.ttl) {
        (Some(t), _) => (t, cli_origin()),
        (None, Some(t)) => (t, file_origin()),
        (None, None) => (5, "default".to_owned()),
    };
    if !(0..=i64::from(MAX_TTL)).contains(&ttl) {
        return Err(ConfigError::Invalid {
            origin: ttl_origin,
            key: "ttl",
            reason: format!("{ttl} is outside 0..={MAX_TTL}"),
        });
    }

    let (idle, idle_origin) = match (tcp_idle_timeout.map(|v| v as i64), file.tcp_idle_timeout) {
        (Some(t), _) => (t, cli_origin()),
        (None, Some(t)) => (t, file_origin()),
        (None, None) => (10, "default".to_owned()),
    };
    if !(1..=3600).contains(&idle) {
        return Err(ConfigError::Invalid {
            origin: idle_origin,
            key: "tcp-idle-timeout",
            reason: format!("{idle} is outside 1..=3600 seconds"),
        });
    }

    Ok(Config {
        listen,
        zone,
        source,
        http_listen,
        ttl: ttl as u32,
        log_format: log_format.or(file.log_format).unwrap_or_default(),
        endpoints_from: endpoints_from.or(file.endpoints_from).unwrap_or_default(),
        tcp_idle_timeout: Duration::from_secs(idle as u64),
    })
}

/// Parses a zone name: a valid, non-root domain name, returned lower-cased and fully qualified.
pub fn parse_zone(text: &str) -> Result<Name, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Err("the zone must be a domain name such as cluster.local, not the root".into());
    }
    let mut name = Name::from_ascii(trimmed).map_err(|e| format!("`{text}` is not a domain name ({e})"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut all = vec!["headless-dns"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::from_cli(cli(&[]).unwrap()).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.zone.to_string(), "cluster.local.");
        assert_eq!(c.ttl, 5);
        assert_eq!(c.endpoints_from, EndpointsFrom::Pods);
        assert_eq!(c.source, SourceConfig::Kubernetes { kubeconfig: None });
    }

    #[test]
    fn flags_override_the_file_and_file_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = [\"127.0.0.1:1053\"]\nzone = \"Example.ORG\"\nttl = 30\nmanifests = \"m\"\n")
            .unwrap();
        let p = path.to_str().unwrap();
        let c = Config::from_cli(cli(&["--config", p, "--ttl", "7"]).unwrap()).unwrap();
        assert_eq!(c.ttl, 7);
        assert_eq!(c.zone.to_string(), "example.org.");
        assert_eq!(c.listen[0].port(), 1053);
        assert_eq!(c.source, SourceConfig::Manifests(dir.path().join("m")));
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "zone = \"a.b\"\nbogus = 1\n").unwrap();
        let err = Config::from_cli(cli(&["--config", path.to_str().unwrap()]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn out_of_range_ttl_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "ttl = 99999\n").unwrap();
        let err = Config::from_cli(cli(&["--config", path.to_str().unwrap()]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("`ttl`") && err.contains("c.toml"), "{err}");
    }

    #[test]
    fn bad_flag_value_is_a_clap_error() {
        assert!(cli(&["--listen", "nonsense"]).is_err());
        assert!(cli(&["--log-format", "xml"]).is_err());
        assert!(Config::from_cli(cli(&["--zone", "."]).unwrap()).is_err());
    }
}
