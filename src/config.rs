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
use ipnet::IpNet;
use serde::Deserialize;

use crate::dns::reverse::{net_of_reverse_zone, zones_for_cidr};
use crate::model::selector::LabelFilter;

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

/// Pod records `a-b-c-d.<ns>.pod.<zone>`, with CoreDNS's `pods` semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PodsMode {
    /// No pod records: every name under `pod.<zone>` is NXDOMAIN (CoreDNS's default).
    #[default]
    Disabled,
    /// Answer any well-formed dashed IP in any exposed namespace, without checking (kube-dns compatible).
    Insecure,
    /// Answer only when a pod with that IP exists in that namespace.
    Verified,
}

/// How many PTR records an address gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PtrMode {
    /// One deterministic name: a headless endpoint's hostname record first, then the smallest name.
    #[default]
    First,
    /// Every name that resolves to the address, as CoreDNS lists them.
    All,
}

/// Command-line flags. Every flag has an environment fallback (`HEADLESS_DNS_*`) and a TOML key
/// spelt like the flag (`http-listen = "..."`). A flag beats its variable, which beats the file.
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
    /// A zone served authoritatively (repeatable; env: comma-separated): a domain (cluster.local), a
    /// reverse zone (10.in-addr.arpa) or a CIDR (10.96.0.0/12) for PTR records. Default cluster.local.
    #[arg(long, env = "HEADLESS_DNS_ZONE", value_name = "NAME|CIDR", value_delimiter = ',')]
    pub zone: Vec<String>,
    /// Kubeconfig to reach the API server (else KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "HEADLESS_DNS_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve from a YAML file or folder of Kubernetes objects instead of a cluster (watched for changes).
    #[arg(long, env = "HEADLESS_DNS_MANIFESTS", value_name = "PATH")]
    pub manifests: Option<PathBuf>,
    /// Address for the HTTP endpoints /healthz and /readyz. Default: none.
    #[arg(long, env = "HEADLESS_DNS_HTTP_LISTEN", value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,
    /// TTL of answer records in seconds (0..=3600). Default 5.
    #[arg(long, env = "HEADLESS_DNS_TTL", value_name = "SECS")]
    pub ttl: Option<u32>,
    /// TTL of the SOA record itself (0..=3600). Default: the TTL.
    #[arg(long, env = "HEADLESS_DNS_SOA_TTL", value_name = "SECS")]
    pub soa_ttl: Option<u32>,
    /// SOA minimum: how long resolvers may cache a negative answer (RFC 2308; 0..=3600). Default: the TTL.
    #[arg(long, env = "HEADLESS_DNS_SOA_MINIMUM", value_name = "SECS")]
    pub soa_minimum: Option<u32>,
    /// Log format. Default text.
    #[arg(long, env = "HEADLESS_DNS_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Where Services with a selector take their endpoints from. Default pods.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINTS_FROM", value_name = "SOURCE")]
    pub endpoints_from: Option<EndpointsFrom>,
    /// Pod records a-b-c-d.<ns>.pod.<zone>. Default disabled.
    #[arg(long, env = "HEADLESS_DNS_PODS", value_name = "MODE")]
    pub pods: Option<PodsMode>,
    /// PTR records per address. Default first.
    #[arg(long, env = "HEADLESS_DNS_PTR", value_name = "MODE")]
    pub ptr: Option<PtrMode>,
    /// Only these namespaces are served (repeatable; env: comma-separated); others are NXDOMAIN. Default: all.
    #[arg(long, env = "HEADLESS_DNS_NAMESPACES", value_name = "NS", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Only Services (and their EndpointSlices) matching this label selector are served; applied server-side.
    #[arg(long, env = "HEADLESS_DNS_LABELS", value_name = "SELECTOR")]
    pub labels: Option<String>,
    /// Only namespaces whose labels match this selector are served (watches Namespaces).
    #[arg(long, env = "HEADLESS_DNS_NAMESPACE_LABELS", value_name = "SELECTOR")]
    pub namespace_labels: Option<String>,
    /// Name endpoints without a hostname by their pod's name (when under 64 octets) instead of the dashed IP.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINT_POD_NAMES", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub endpoint_pod_names: Option<bool>,
    /// A ClusterIP Service without any ready endpoint answers NXDOMAIN (so search paths go on).
    #[arg(long, env = "HEADLESS_DNS_IGNORE_EMPTY_SERVICE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub ignore_empty_service: Option<bool>,
    /// Serve no endpoint records: headless Services and endpoint names are NXDOMAIN; no Pod/EndpointSlice watch.
    #[arg(long, env = "HEADLESS_DNS_NOENDPOINTS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub noendpoints: Option<bool>,
    /// Idle timeout of a DNS TCP connection, in seconds. Default 10.
    #[arg(long, env = "HEADLESS_DNS_TCP_IDLE_TIMEOUT", value_name = "SECS")]
    pub tcp_idle_timeout: Option<u64>,
    /// Seconds a started TCP message (or a reply write) may take (slowloris guard). Default 2.
    #[arg(long, env = "HEADLESS_DNS_TCP_READ_TIMEOUT", value_name = "SECS")]
    pub tcp_read_timeout: Option<u64>,
    /// Most DNS TCP connections open at once per listen address; the oldest is closed to admit a new one. Default 1024.
    #[arg(long, env = "HEADLESS_DNS_TCP_MAX_CONNECTIONS", value_name = "N")]
    pub tcp_max_connections: Option<u64>,
    /// UDP worker threads per listen address. Default: the number of CPUs.
    #[arg(long, env = "HEADLESS_DNS_UDP_WORKERS", value_name = "N")]
    pub udp_workers: Option<u64>,
    /// On SIGTERM, seconds to keep answering with /readyz failing before closing (lame duck). Default 0.
    #[arg(long, env = "HEADLESS_DNS_SHUTDOWN_DELAY", value_name = "SECS")]
    pub shutdown_delay: Option<u64>,
    /// /readyz fails when a watch has had no successful API contact for this many seconds
    /// (0: report the age only, never fail on it). Default 0.
    #[arg(long, env = "HEADLESS_DNS_STALE_AFTER", value_name = "SECS")]
    pub stale_after: Option<u64>,
}

/// A zone value in the file: one name or a list.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `zone = "cluster.local"`
    One(String),
    /// `zone = ["cluster.local", "10.96.0.0/12"]`
    Many(Vec<String>),
}

/// The `--config` TOML file: the same keys as the flags, in kebab-case. Unknown keys are errors.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// See [`Cli::listen`].
    pub listen: Option<Vec<String>>,
    /// See [`Cli::zone`].
    pub zone: Option<OneOrMany>,
    /// See [`Cli::kubeconfig`]; relative paths are relative to the config file.
    pub kubeconfig: Option<PathBuf>,
    /// See [`Cli::manifests`]; relative paths are relative to the config file.
    pub manifests: Option<PathBuf>,
    /// See [`Cli::http_listen`].
    pub http_listen: Option<String>,
    /// See [`Cli::ttl`].
    pub ttl: Option<i64>,
    /// See [`Cli::soa_ttl`].
    pub soa_ttl: Option<i64>,
    /// See [`Cli::soa_minimum`].
    pub soa_minimum: Option<i64>,
    /// See [`Cli::log_format`].
    pub log_format: Option<LogFormat>,
    /// See [`Cli::endpoints_from`].
    pub endpoints_from: Option<EndpointsFrom>,
    /// See [`Cli::pods`].
    pub pods: Option<PodsMode>,
    /// See [`Cli::ptr`].
    pub ptr: Option<PtrMode>,
    /// See [`Cli::namespaces`].
    pub namespaces: Option<Vec<String>>,
    /// See [`Cli::labels`].
    pub labels: Option<String>,
    /// See [`Cli::namespace_labels`].
    pub namespace_labels: Option<String>,
    /// See [`Cli::endpoint_pod_names`].
    pub endpoint_pod_names: Option<bool>,
    /// See [`Cli::ignore_empty_service`].
    pub ignore_empty_service: Option<bool>,
    /// See [`Cli::noendpoints`].
    pub noendpoints: Option<bool>,
    /// See [`Cli::tcp_idle_timeout`].
    pub tcp_idle_timeout: Option<i64>,
    /// See [`Cli::tcp_read_timeout`].
    pub tcp_read_timeout: Option<i64>,
    /// See [`Cli::tcp_max_connections`].
    pub tcp_max_connections: Option<i64>,
    /// See [`Cli::udp_workers`].
    pub udp_workers: Option<i64>,
    /// See [`Cli::shutdown_delay`].
    pub shutdown_delay: Option<i64>,
    /// See [`Cli::stale_after`].
    pub stale_after: Option<i64>,
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

/// One zone served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSpec {
    /// A forward zone such as `cluster.local.` (lower-cased, fully qualified).
    Forward(Name),
    /// A reverse zone and the network it covers.
    Reverse {
        /// The apex, e.g. `96.10.in-addr.arpa.`.
        apex: Name,
        /// The addresses it covers.
        net: IpNet,
    },
}

/// What is published and how: the CoreDNS `kubernetes` plugin options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Pod records.
    pub pods: PodsMode,
    /// PTR records per address.
    pub ptr: PtrMode,
    /// Namespace allow-list; empty: all.
    pub namespaces: Vec<String>,
    /// Service label selector (server-side on the watches).
    pub labels: Option<LabelFilter>,
    /// Namespace label selector.
    pub namespace_labels: Option<LabelFilter>,
    /// Endpoint names from pod names.
    pub endpoint_pod_names: bool,
    /// ClusterIP Services without ready endpoints are NXDOMAIN.
    pub ignore_empty_service: bool,
    /// No endpoint records at all.
    pub noendpoints: bool,
}

/// Answer TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    /// Record TTL.
    pub record: u32,
    /// The SOA record's own TTL.
    pub soa: u32,
    /// The SOA minimum field (negative caching, RFC 2308 section 5).
    pub soa_minimum: u32,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// DNS listen addresses (UDP and TCP each).
    pub listen: Vec<SocketAddr>,
    /// The zones served; at least one forward zone.
    pub zones: Vec<ZoneSpec>,
    /// Where records come from.
    pub source: SourceConfig,
    /// HTTP address for health endpoints.
    pub http_listen: Option<SocketAddr>,
    /// TTLs.
    pub ttls: Ttls,
    /// Log format.
    pub log_format: LogFormat,
    /// Endpoint source for Services with a selector.
    pub endpoints_from: EndpointsFrom,
    /// Publishing options.
    pub options: Options,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
    /// TCP read deadline for a started message.
    pub tcp_read_timeout: Duration,
    /// TCP connection limit per listen address.
    pub tcp_max_connections: usize,
    /// UDP worker threads per listen address.
    pub udp_workers: usize,
    /// Lame-duck time on SIGTERM.
    pub shutdown_delay: Duration,
    /// Watch staleness that fails readiness (None: never).
    pub stale_after: Option<Duration>,
}

impl Config {
    /// The first forward zone (PTR targets are named in it).
    pub fn primary_zone(&self) -> &Name {
        self.zones
            .iter()
            .find_map(|z| match z {
                ZoneSpec::Forward(n) => Some(n),
                ZoneSpec::Reverse { .. } => None,
            })
            .expect("validated: at least one forward zone")
    }
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

/// Where a value came from, for error messages.
struct Origins<'a> {
    file: Option<&'a Path>,
}

impl Origins<'_> {
    fn file(&self) -> String {
        match self.file {
            Some(p) => format!("config file {}", p.display()),
            None => "config file".to_owned(),
        }
    }
    fn cli(&self) -> String {
        "command line or environment".to_owned()
    }
    /// The flag's value, else the file's, else the default, with the origin of the one chosen.
    fn pick<T>(&self, flag: Option<T>, file: Option<T>, default: T) -> (T, String) {
        match (flag, file) {
            (Some(v), _) => (v, self.cli()),
            (None, Some(v)) => (v, self.file()),
            (None, None) => (default, "default".to_owned()),
        }
    }
    fn seconds(
        &self,
        key: &'static str,
        flag: Option<i64>,
        file: Option<i64>,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let (v, origin) = self.pick(flag, file, default);
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError::Invalid {
                origin,
                key,
                reason: format!("{v} is outside {}..={}", range.start(), range.end()),
            })
        }
    }
    fn selector(
        &self,
        key: &'static str,
        flag: Option<String>,
        file: Option<String>,
    ) -> Result<Option<LabelFilter>, ConfigError> {
        let (v, origin) = self.pick(flag.map(Some), file.map(Some), None);
        v.map(|text| LabelFilter::parse(&text).map_err(|reason| ConfigError::Invalid { origin, key, reason }))
            .transpose()
    }
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
        soa_ttl,
        soa_minimum,
        log_format,
        endpoints_from,
        pods,
        ptr,
        namespaces,
        labels,
        namespace_labels,
        endpoint_pod_names,
        ignore_empty_service,
        noendpoints,
        tcp_idle_timeout,
        tcp_read_timeout,
        tcp_max_connections,
        udp_workers,
        shutdown_delay,
        stale_after,
    } = cli;
    let o = Origins { file: file_path };
    let base_dir = file_path.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let relative = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
    let non_empty = |v: Vec<String>| if v.is_empty() { None } else { Some(v) };

    let listen = if !listen.is_empty() {
        listen
    } else if let Some(list) = file.listen {
        let mut out = Vec::new();
        for item in list {
            out.push(item.parse::<SocketAddr>().map_err(|e| ConfigError::Invalid {
                origin: o.file(),
                key: "listen",
                reason: format!("`{item}` is not ADDR:PORT ({e})"),
            })?);
        }
        if out.is_empty() {
            return Err(ConfigError::Invalid {
                origin: o.file(),
                key: "listen",
                reason: "needs at least one address".into(),
            });
        }
        out
    } else {
        vec!["127.0.0.1:5353".parse().expect("valid default")]
    };

    let file_zones = file.zone.map(|z| match z {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    });
    let (zone_texts, zone_origin) = o.pick(non_empty(zone), file_zones, vec!["cluster.local".to_owned()]);
    let mut zones = Vec::new();
    for text in &zone_texts {
        let parsed = parse_zone_spec(text).map_err(|reason| ConfigError::Invalid {
            origin: zone_origin.clone(),
            key: "zone",
            reason,
        })?;
        for z in parsed {
            if !zones.contains(&z) {
                zones.push(z);
            }
        }
    }
    if !zones.iter().any(|z| matches!(z, ZoneSpec::Forward(_))) {
        return Err(ConfigError::Invalid {
            origin: zone_origin,
            key: "zone",
            reason: "at least one forward zone (such as cluster.local) is needed next to reverse zones".into(),
        });
    }

    let kubeconfig = kubeconfig.or(file.kubeconfig.map(relative));
    let manifests = manifests.or(file.manifests.map(relative));
    let source = match (manifests, kubeconfig) {
        (Some(m), _) => SourceConfig::Manifests(m),
        (None, k) => SourceConfig::Kubernetes { kubeconfig: k },
    };

    let http_listen = match (http_listen, file.http_listen) {
        (Some(a), _) => Some(a),
        (None, Some(text)) => Some(text.parse().map_err(|e| ConfigError::Invalid {
            origin: o.file(),
            key: "http-listen",
            reason: format!("`{text}` is not ADDR:PORT ({e})"),
        })?),
        (None, None) => None,
    };

    let max = i64::from(MAX_TTL);
    let record = o.seconds("ttl", ttl.map(i64::from), file.ttl, 5, 0..=max)?;
    let ttls = Ttls {
        record: record as u32,
        soa: o.seconds("soa-ttl", soa_ttl.map(i64::from), file.soa_ttl, record, 0..=max)? as u32,
        soa_minimum: o.seconds("soa-minimum", soa_minimum.map(i64::from), file.soa_minimum, record, 0..=max)? as u32,
    };
    let idle =
        o.seconds("tcp-idle-timeout", tcp_idle_timeout.map(|v| v as i64), file.tcp_idle_timeout, 10, 1..=3600)?;
    let read = o.seconds("tcp-read-timeout", tcp_read_timeout.map(|v| v as i64), file.tcp_read_timeout, 2, 1..=60)?;
    let max_conns = o.seconds(
        "tcp-max-connections",
        tcp_max_connections.map(|v| v as i64),
        file.tcp_max_connections,
        1024,
        1..=65536,
    )?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let workers = o.seconds("udp-workers", udp_workers.map(|v| v as i64), file.udp_workers, cpus, 1..=256)?;
    let delay = o.seconds("shutdown-delay", shutdown_delay.map(|v| v as i64), file.shutdown_delay, 0, 0..=300)?;
    let stale = o.seconds("stale-after", stale_after.map(|v| v as i64), file.stale_after, 0, 0..=86400)?;

    let (namespaces, ns_origin) = o.pick(non_empty(namespaces), file.namespaces, Vec::new());
    for ns in &namespaces {
        if !crate::model::records::valid_label(ns) {
            return Err(ConfigError::Invalid {
                origin: ns_origin,
                key: "namespaces",
                reason: format!("`{ns}` is not a namespace name"),
            });
        }
    }
    let options = Options {
        pods: pods.or(file.pods).unwrap_or_default(),
        ptr: ptr.or(file.ptr).unwrap_or_default(),
        namespaces,
        labels: o.selector("labels", labels, file.labels)?,
        namespace_labels: o.selector("namespace-labels", namespace_labels, file.namespace_labels)?,
        endpoint_pod_names: endpoint_pod_names.or(file.endpoint_pod_names).unwrap_or(false),
        ignore_empty_service: ignore_empty_service.or(file.ignore_empty_service).unwrap_or(false),
        noendpoints: noendpoints.or(file.noendpoints).unwrap_or(false),
    };

    Ok(Config {
        listen,
        zones,
        source,
        http_listen,
        ttls,
        log_format: log_format.or(file.log_format).unwrap_or_default(),
        endpoints_from: endpoints_from.or(file.endpoints_from).unwrap_or_default(),
        options,
        tcp_idle_timeout: Duration::from_secs(idle as u64),
        tcp_read_timeout: Duration::from_secs(read as u64),
        tcp_max_connections: max_conns as usize,
        udp_workers: workers as usize,
        shutdown_delay: Duration::from_secs(delay as u64),
        stale_after: (stale > 0).then(|| Duration::from_secs(stale as u64)),
    })
}

/// Parses one `zone` value: a CIDR (its covering reverse zones), a reverse zone name, or a forward
/// zone name. Names are returned lower-cased and fully qualified.
pub fn parse_zone_spec(text: &str) -> Result<Vec<ZoneSpec>, String> {
    let trimmed = text.trim();
    if trimmed.contains('/') {
        let net: IpNet = trimmed.parse().map_err(|e| format!("`{text}` is not a CIDR ({e})"))?;
        return Ok(zones_for_cidr(net)?.into_iter().map(|(apex, net)| ZoneSpec::Reverse { apex, net }).collect());
    }
    let name = parse_zone(trimmed)?;
    let lower = name.to_ascii();
    if lower.ends_with("in-addr.arpa.") || lower.ends_with("ip6.arpa.") {
        let net = net_of_reverse_zone(&name).ok_or_else(|| format!("`{text}` is not a valid reverse zone"))?;
        return Ok(vec![ZoneSpec::Reverse { apex: name, net }]);
    }
    Ok(vec![ZoneSpec::Forward(name)])
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
        assert_eq!(c.primary_zone().to_string(), "cluster.local.");
        assert_eq!(c.ttls, Ttls { record: 5, soa: 5, soa_minimum: 5 });
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
        assert_eq!(c.ttls.record, 7);
        assert_eq!(c.primary_zone().to_string(), "example.org.");
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
        assert!(Config::from_cli(cli(&["--zone", "10.0.0.0/8"]).unwrap()).is_err(), "reverse only");
        assert!(Config::from_cli(cli(&["--labels", "a in b"]).unwrap()).is_err());
        assert!(Config::from_cli(cli(&["--soa-minimum", "4000"]).unwrap()).is_err());
    }

    #[test]
    fn zones_options_and_ttls() {
        let c = Config::from_cli(
            cli(&[
                "--zone",
                "cluster.local,10.96.0.0/12",
                "--zone",
                "244.10.in-addr.arpa",
                "--pods",
                "verified",
                "--ptr",
                "all",
                "--namespaces",
                "a,b",
                "--labels",
                "app=web",
                "--endpoint-pod-names",
                "--ignore-empty-service=false",
                "--ttl",
                "30",
                "--soa-minimum",
                "1",
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.zones.len(), 1 + 16 + 1);
        assert!(matches!(&c.zones[1], ZoneSpec::Reverse { apex, .. } if apex.to_string() == "96.10.in-addr.arpa."));
        assert_eq!(c.options.pods, PodsMode::Verified);
        assert_eq!(c.options.ptr, PtrMode::All);
        assert_eq!(c.options.namespaces, ["a", "b"]);
        assert_eq!(c.options.labels.as_ref().map(LabelFilter::as_str), Some("app=web"));
        assert!(c.options.endpoint_pod_names);
        assert!(!c.options.ignore_empty_service);
        assert_eq!(c.ttls, Ttls { record: 30, soa: 30, soa_minimum: 1 });
    }
}
