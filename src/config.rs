//! Configuration: one type, [`Config`]. Each of its fields is at once a command-line flag (its doc
//! comment is the `--help` text), an environment variable (`HEADLESS_DNS_<FLAG>`) and a key of the
//! TOML file named by `--config` (spelt like the flag), so an option is added in one place.
//!
//! Precedence, highest first: a flag, its environment variable, the file, the default. Values are
//! checked where they are read (clap for flags and variables, serde for the file), so an error
//! names the flag or the key and the file; [`Config::load`] then checks what spans several keys.
//! The running configuration is one value: [`reload`] decides, key by key and checked by the
//! compiler, what a SIGHUP may change while running.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use hickory_proto::rr::Name;
use serde::{Deserialize, Deserializer};

use crate::dns::names::valid_label;
use crate::dns::notify::NotifyTarget;
use crate::dns::server::Limits;
use crate::dns::tsig::KeyRing;
use crate::dns::xfr::AllowTransfer;
use crate::dns::zone::{PodsMode, PtrMode, Ttls, ZoneSettings, ZoneSpec, parse_zone_spec};
use crate::journal::JournalLimits;
use crate::model::selector::LabelFilter;
use crate::reconcile::records::{EndpointNames, RecordOptions};
use crate::reconcile::{EndpointsFrom, ReconcileOptions, Watches};

/// Why the configuration could not be loaded. Every variant names the file or flag, and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The flags or environment variables could not be parsed (clap's message names the flag).
    #[error("{0}")]
    Flags(String),
    /// The `--config` file could not be read.
    #[error("config file {path}: cannot read it: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML, or has an unknown key or a bad value.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The key (when known), the line, and what is wrong.
        message: String,
    },
    /// A value is well-formed but not acceptable with the others.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// Where the value came from: the command line, an environment variable or the file.
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

/// A whole number within `MIN..=MAX` (seconds, or a count), checked where it is read so that the
/// error names the flag or the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }

    fn check(v: i128) -> Result<Self, String> {
        if (i128::from(MIN)..=i128::from(MAX)).contains(&v) {
            Ok(Self(v as u64))
        } else {
            Err(format!("{v} is outside {MIN}..={MAX}"))
        }
    }
}

impl<const MIN: u64, const MAX: u64> FromStr for Bounded<MIN, MAX> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let v: i128 = s.trim().parse().map_err(|_| format!("`{s}` is not a whole number"))?;
        Self::check(v)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::check(i128::from(i64::deserialize(d)?)).map_err(serde::de::Error::custom)
    }
}

/// Seconds of a TTL: at most an hour, as CoreDNS's `ttl` option allows.
pub type TtlSecs = Bounded<0, { MAX_TTL as u64 }>;

/// Largest TTL accepted: an hour, as CoreDNS's `ttl` option allows.
pub const MAX_TTL: u32 = 3600;

/// One `zone` value: a forward zone, a reverse zone, or a CIDR and the reverse zones covering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneArg {
    text: String,
    zones: Vec<ZoneSpec>,
}

impl FromStr for ZoneArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Self { text: s.trim().to_owned(), zones: parse_zone_spec(s)? })
    }
}

impl fmt::Display for ZoneArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A label selector option, parsed once (see [`LabelFilter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector(pub LabelFilter);

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        LabelFilter::parse(s).map(Self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A list key in the file: one text or a list of them, each parsed as its flag parses it, never
/// an empty list.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string or a list of strings")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    };
    if texts.is_empty() {
        return Err(serde::de::Error::custom("needs at least one value (leave the key out for the default)"));
    }
    texts.iter().map(|t| t.parse().map_err(|e| serde::de::Error::custom(format!("`{t}`: {e}")))).collect()
}

/// The whole configuration. Every field is a flag, an environment variable and a TOML key; unset
/// fields take the defaults their accessors document.
#[derive(Debug, Clone, Default, PartialEq, Parser, Deserialize)]
#[command(
    name = "headless-dns",
    version,
    about = "Authoritative DNS for Kubernetes headless Services and StatefulSet pods",
    after_help = "Explain what a running server answers for a name, and why: headless-dns explain <NAME> [<TYPE>] [--server ADDR] (see headless-dns explain --help)"
)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// TOML configuration file; flags and environment variables override its keys.
    #[arg(long, env = "HEADLESS_DNS_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to serve DNS on, UDP and TCP (repeatable; env: comma-separated); port 0 picks a free
    /// port. Default 127.0.0.1:5353.
    #[arg(long, env = "HEADLESS_DNS_LISTEN", value_name = "ADDR:PORT", value_delimiter = ',')]
    #[serde(default, deserialize_with = "one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// A zone served authoritatively (repeatable; env: comma-separated): a domain (cluster.local), a
    /// reverse zone (10.in-addr.arpa) or a CIDR (10.96.0.0/12) for PTR records. Default cluster.local.
    #[arg(long, env = "HEADLESS_DNS_ZONE", value_name = "NAME|CIDR", value_delimiter = ',')]
    #[serde(default, deserialize_with = "one_or_many")]
    pub zone: Vec<ZoneArg>,
    /// A multicluster zone (repeatable; env: comma-separated), such as clusterset.local: served
    /// from ServiceImports (`multicluster.x-k8s.io`) and EndpointSlices labelled
    /// `multicluster.kubernetes.io/service-name`, per the Kubernetes multicluster DNS
    /// specification (KEP-1645). Default: none.
    #[arg(long, env = "HEADLESS_DNS_MULTICLUSTER_ZONE", value_name = "NAME", value_delimiter = ',')]
    #[serde(default, deserialize_with = "one_or_many")]
    pub multicluster_zone: Vec<ZoneArg>,
    /// Kubeconfig to reach the API server (else KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "HEADLESS_DNS_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve from a YAML file or folder of Kubernetes objects instead of a cluster (watched for changes).
    #[arg(long, env = "HEADLESS_DNS_MANIFESTS", value_name = "PATH")]
    pub manifests: Option<PathBuf>,
    /// Address for the HTTP endpoints /healthz, /readyz and /metrics. Default: none.
    #[arg(long, env = "HEADLESS_DNS_HTTP_LISTEN", value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,
    /// Address for the debug endpoint /debug/explain (`headless-dns explain` asks it). Keep it on
    /// loopback: it describes the objects behind names. Default: none.
    #[arg(long, env = "HEADLESS_DNS_DEBUG_LISTEN", value_name = "ADDR:PORT")]
    pub debug_listen: Option<SocketAddr>,
    /// TTL of answer records in seconds (0..=3600). Default 5.
    #[arg(long, env = "HEADLESS_DNS_TTL", value_name = "SECS")]
    pub ttl: Option<TtlSecs>,
    /// TTL of the SOA record itself (0..=3600). Default: the TTL.
    #[arg(long, env = "HEADLESS_DNS_SOA_TTL", value_name = "SECS")]
    pub soa_ttl: Option<TtlSecs>,
    /// SOA minimum: how long resolvers may cache a negative answer (RFC 2308; 0..=3600). Default: the TTL.
    #[arg(long, env = "HEADLESS_DNS_SOA_MINIMUM", value_name = "SECS")]
    pub soa_minimum: Option<TtlSecs>,
    /// Negative caching time (SOA TTL and MINIMUM, RFC 2308) of a name a StatefulSet expects but
    /// that has no address now (pod missing, Pending, not Ready, terminating), so that resolvers
    /// ask again at once and see the pod the moment it is Ready (0..=3600). Default 0.
    #[arg(long, env = "HEADLESS_DNS_EXPECTED_NEGATIVE_TTL", value_name = "SECS")]
    pub expected_negative_ttl: Option<TtlSecs>,
    /// Watch StatefulSets to know the pod names they expect (apps/v1 list and watch; without the
    /// permission, expected names are simply unknown). Default true.
    #[arg(long, env = "HEADLESS_DNS_STATEFULSETS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub statefulsets: Option<bool>,
    /// List the watched kinds as watch streams (Kubernetes streaming lists, `sendInitialEvents`:
    /// served from the API server's watch cache, one object at a time, no etcd read) where the API
    /// server offers them, falling back to paged lists per kind where it does not (WatchList off,
    /// as on Kubernetes 1.33, or older than 1.27). false: paged lists only. Default true.
    #[arg(long, env = "HEADLESS_DNS_STREAMING_LISTS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub streaming_lists: Option<bool>,
    /// Log format. Default text.
    #[arg(long, env = "HEADLESS_DNS_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Where Services with a selector take their endpoints from. Default pods.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINTS_FROM", value_name = "SOURCE")]
    pub endpoints_from: Option<EndpointsFrom>,
    /// Pod records `a-b-c-d.<ns>.pod.<zone>`. Default disabled.
    #[arg(long, env = "HEADLESS_DNS_PODS", value_name = "MODE")]
    pub pods: Option<PodsMode>,
    /// PTR records per address. Default first.
    #[arg(long, env = "HEADLESS_DNS_PTR", value_name = "MODE")]
    pub ptr: Option<PtrMode>,
    /// Only these namespaces are served (repeatable; env: comma-separated); others are NXDOMAIN. Default: all.
    #[arg(long, env = "HEADLESS_DNS_NAMESPACES", value_name = "NS", value_delimiter = ',')]
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Only Services (and their EndpointSlices) matching this label selector are served; applied server-side.
    #[arg(long, env = "HEADLESS_DNS_LABELS", value_name = "SELECTOR")]
    pub labels: Option<Selector>,
    /// Only namespaces whose labels match this selector are served (watches Namespaces).
    #[arg(long, env = "HEADLESS_DNS_NAMESPACE_LABELS", value_name = "SELECTOR")]
    pub namespace_labels: Option<Selector>,
    /// Which Services get `<endpoint>.<svc>.<ns>.svc` names (and PTR records for those addresses):
    /// `all`, as CoreDNS, or `headless` only. Default all.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINT_NAMES", value_name = "WHICH")]
    pub endpoint_names: Option<EndpointNames>,
    /// Topology-pinned names for headless Services: `<zone>.pin._zone.<svc>.<ns>.svc` answers the
    /// ready endpoints in that zone (NODATA when it has none), `<zone>.prefer._zone...` those, or
    /// every endpoint when the zone has none. Zones come from EndpointSlices' `zone`, or in `pods`
    /// mode from each node's `topology.kubernetes.io/zone` (a metadata-only Node watch). Default false.
    #[arg(long, env = "HEADLESS_DNS_ZONAL", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub zonal: Option<bool>,
    /// Name endpoints without a hostname by their pod's name (when under 64 octets) instead of the dashed IP.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINT_POD_NAMES", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub endpoint_pod_names: Option<bool>,
    /// A ClusterIP Service without any ready endpoint answers NXDOMAIN (so search paths go on).
    #[arg(long, env = "HEADLESS_DNS_IGNORE_EMPTY_SERVICE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub ignore_empty_service: Option<bool>,
    /// Serve no endpoint records: headless Services and endpoint names are NXDOMAIN; no Pod/EndpointSlice watch.
    #[arg(long, env = "HEADLESS_DNS_NOENDPOINTS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub noendpoints: Option<bool>,
    /// Idle timeout of a DNS TCP connection, in seconds (1..=3600). Default 10.
    #[arg(long, env = "HEADLESS_DNS_TCP_IDLE_TIMEOUT", value_name = "SECS")]
    pub tcp_idle_timeout: Option<Bounded<1, 3600>>,
    /// Seconds a started TCP message (or a reply write) may take (slowloris guard; 1..=60). Default 2.
    #[arg(long, env = "HEADLESS_DNS_TCP_READ_TIMEOUT", value_name = "SECS")]
    pub tcp_read_timeout: Option<Bounded<1, 60>>,
    /// Most DNS TCP connections open at once per listen address; the oldest is closed to admit a new
    /// one (1..=65536). Default 1024.
    #[arg(long, env = "HEADLESS_DNS_TCP_MAX_CONNECTIONS", value_name = "N")]
    pub tcp_max_connections: Option<Bounded<1, 65536>>,
    /// UDP worker threads per listen address (1..=256). Default: the number of CPUs.
    #[arg(long, env = "HEADLESS_DNS_UDP_WORKERS", value_name = "N")]
    pub udp_workers: Option<Bounded<1, 256>>,
    /// On SIGTERM, seconds to keep answering with /readyz failing before closing (lame duck; 0..=300). Default 0.
    #[arg(long, env = "HEADLESS_DNS_SHUTDOWN_DELAY", value_name = "SECS")]
    pub shutdown_delay: Option<Bounded<0, 300>>,
    /// /readyz fails when a watch has had no successful API contact for this many seconds
    /// (0: report the age only, never fail on it; 0..=86400). Default 0.
    #[arg(long, env = "HEADLESS_DNS_STALE_AFTER", value_name = "SECS")]
    pub stale_after: Option<Bounded<0, 86400>>,
    /// Clients allowed to transfer the zones (AXFR, IXFR), as `CIDR[,key=NAME]`: an address or
    /// network, and the TSIG key the request must be signed with when named (repeatable; env:
    /// space-separated). Turns on the transfer journal. Default: none (transfers are REFUSED).
    #[arg(long, env = "HEADLESS_DNS_ALLOW_TRANSFER", value_name = "CIDR[,key=NAME]", value_delimiter = ' ')]
    #[serde(default, deserialize_with = "one_or_many")]
    pub allow_transfer: Vec<AllowTransfer>,
    /// Milliseconds changes are gathered before they get a new SOA serial: every change in one
    /// window shares one serial, one journal entry and one NOTIFY (10..=60000). Default 100.
    #[arg(long, env = "HEADLESS_DNS_SERIAL_WINDOW", value_name = "MS")]
    pub serial_window: Option<Bounded<10, 60000>>,
    /// Most differences the transfer journal keeps for IXFR; an older client gets the whole zone
    /// (1..=1000000). Default 1000.
    #[arg(long, env = "HEADLESS_DNS_JOURNAL_ENTRIES", value_name = "N")]
    pub journal_entries: Option<Bounded<1, 1_000_000>>,
    /// Most octets the transfer journal keeps (65536..=4294967296). Default 16777216 (16 MiB).
    #[arg(long, env = "HEADLESS_DNS_JOURNAL_BYTES", value_name = "OCTETS")]
    pub journal_bytes: Option<Bounded<65536, 4_294_967_296>>,
    /// A secondary to send NOTIFY to after each new serial, as `ADDR:PORT[,key=NAME]` (signed
    /// with that TSIG key when named); retried until acknowledged (repeatable; env:
    /// space-separated). Turns on the transfer journal. Default: none.
    #[arg(long, env = "HEADLESS_DNS_NOTIFY", value_name = "ADDR:PORT[,key=NAME]", value_delimiter = ' ')]
    #[serde(default, deserialize_with = "one_or_many")]
    pub notify: Vec<NotifyTarget>,
    /// TSIG keys, in the format BIND's `tsig-keygen` prints (`key "name" { algorithm
    /// hmac-sha256; secret "..."; };`); read at start and on SIGHUP, never logged. Default: none.
    #[arg(long, env = "HEADLESS_DNS_TSIG_KEY_FILE", value_name = "PATH")]
    pub tsig_key_file: Option<PathBuf>,
    /// The keys read from `tsig-key-file` (not an option).
    #[arg(skip)]
    #[serde(skip)]
    pub keys: Arc<KeyRing>,
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

/// Where a value came from, for error messages.
struct Origins<'a> {
    matches: &'a ArgMatches,
    file: Option<&'a Path>,
}

impl Origins<'_> {
    /// The flag, the environment variable or the file that set `key` (kebab-case).
    fn of(&self, key: &str) -> String {
        let id = key.replace('-', "_");
        match self.matches.value_source(&id) {
            Some(ValueSource::CommandLine) => format!("command line (--{key})"),
            Some(ValueSource::EnvVariable) => {
                format!("environment (HEADLESS_DNS_{})", id.to_ascii_uppercase())
            }
            _ => match self.file {
                Some(p) => format!("config file {}", p.display()),
                None => "default".to_owned(),
            },
        }
    }

    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { origin: self.of(key), key, reason: reason.into() }
    }
}

impl Config {
    /// Parses the process's flags and environment, reads the `--config` file and checks the
    /// whole. Bad flags, `--help` and `--version` are clap's to report (it exits, status 2 for an
    /// error); every other problem is a [`ConfigError`].
    pub fn load() -> Result<Self, ConfigError> {
        let matches = Self::command().get_matches();
        Self::from_matches(&matches)
    }

    /// As [`Config::load`] from explicit arguments (the first is the program name), returning
    /// every error, clap's included (for reloads and tests).
    pub fn load_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args).map_err(|e| ConfigError::Flags(e.to_string()))?;
        Self::from_matches(&matches)
    }

    fn from_matches(matches: &ArgMatches) -> Result<Self, ConfigError> {
        let flags = Self::from_arg_matches(matches).map_err(|e| ConfigError::Flags(e.to_string()))?;
        let mut config = match &flags.config {
            Some(path) => read_file(path)?,
            None => Self::default(),
        };
        // Flags and their variables override the file's keys, one by one.
        config.update_from_arg_matches(matches).map_err(|e| ConfigError::Flags(e.to_string()))?;
        let origins = Origins { matches, file: flags.config.as_deref() };
        config.check(&origins)?;
        config.read_keys(&origins)?;
        Ok(config)
    }

    /// Reads `tsig-key-file` and checks that every key named by `allow-transfer` and `notify`
    /// is in it.
    fn read_keys(&mut self, o: &Origins<'_>) -> Result<(), ConfigError> {
        if let Some(path) = &self.tsig_key_file {
            self.keys = Arc::new(KeyRing::read(path).map_err(|e| o.invalid("tsig-key-file", e.to_string()))?);
        }
        let named = self
            .allow_transfer
            .iter()
            .filter_map(|r| r.key.as_ref().map(|k| ("allow-transfer", k)))
            .chain(self.notify.iter().filter_map(|t| t.key.as_ref().map(|k| ("notify", k))));
        for (key, name) in named {
            if !self.keys.contains(name) {
                let reason = match &self.tsig_key_file {
                    Some(path) => format!("key {name} is not in the tsig-key-file {}", path.display()),
                    None => format!("key {name} needs a tsig-key-file that defines it"),
                };
                return Err(o.invalid(key, reason));
            }
        }
        Ok(())
    }

    /// What no single key can check alone.
    fn check(&self, o: &Origins<'_>) -> Result<(), ConfigError> {
        let zones = self.zones();
        let forward: Vec<&Name> = zones
            .iter()
            .filter_map(|z| match z {
                ZoneSpec::Forward(n) => Some(n),
                ZoneSpec::Reverse { .. } => None,
            })
            .collect();
        if forward.is_empty() {
            return Err(
                o.invalid("zone", "at least one forward zone (such as cluster.local) is needed next to reverse zones")
            );
        }
        // A forward zone inside another would hide the outer zone's names below it: the most
        // specific zone answers a question, and it holds none of them.
        for inner in &forward {
            if let Some(outer) = forward.iter().find(|outer| *outer != inner && outer.zone_of(inner)) {
                return Err(o.invalid(
                    "zone",
                    format!(
                        "zone {inner} lies inside zone {outer}; serve one of them (names below {inner} would be hidden)"
                    ),
                ));
            }
        }
        let multicluster = self.multicluster_zones();
        if self.multicluster_zone.iter().flat_map(|a| a.zones.iter()).any(|z| !matches!(z, ZoneSpec::Forward(_))) {
            return Err(o.invalid("multicluster-zone", "a multicluster zone is a domain name such as clusterset.local"));
        }
        for mc in &multicluster {
            if let Some(other) = forward.iter().find(|f| f.zone_of(mc) || mc.zone_of(f)) {
                return Err(o.invalid(
                    "multicluster-zone",
                    format!("zone {mc} overlaps the zone {other}; a multicluster zone is a zone of its own"),
                ));
            }
        }
        for ns in &self.namespaces {
            if !valid_label(ns) {
                return Err(o.invalid("namespaces", format!("`{ns}` is not a namespace name")));
            }
        }
        Ok(())
    }

    /// The DNS listen addresses (default 127.0.0.1:5353).
    pub fn listen(&self) -> Vec<SocketAddr> {
        if self.listen.is_empty() { vec![SocketAddr::from(([127, 0, 0, 1], 5353))] } else { self.listen.clone() }
    }

    /// The zones served, each once (default `cluster.local`).
    pub fn zones(&self) -> Vec<ZoneSpec> {
        if self.zone.is_empty() {
            return parse_zone_spec("cluster.local").unwrap_or_default();
        }
        let mut zones: Vec<ZoneSpec> = Vec::new();
        for z in self.zone.iter().flat_map(|a| a.zones.iter()) {
            if !zones.contains(z) {
                zones.push(z.clone());
            }
        }
        zones
    }

    /// The multicluster zones, each once.
    pub fn multicluster_zones(&self) -> Vec<Name> {
        let mut out: Vec<Name> = Vec::new();
        for z in self.multicluster_zone.iter().flat_map(|a| a.zones.iter()) {
            if let ZoneSpec::Forward(n) = z
                && !out.contains(n)
            {
                out.push(n.clone());
            }
        }
        out
    }

    /// The first forward zone: PTR targets are named in it. `None` only before [`Config::load`]
    /// has checked the zones.
    pub fn primary_zone(&self) -> Option<Name> {
        self.zones().into_iter().find_map(|z| match z {
            ZoneSpec::Forward(n) => Some(n),
            ZoneSpec::Reverse { .. } => None,
        })
    }

    /// Where records come from: the manifests when set, else the cluster.
    pub fn source(&self) -> SourceConfig {
        match &self.manifests {
            Some(m) => SourceConfig::Manifests(m.clone()),
            None => SourceConfig::Kubernetes { kubeconfig: self.kubeconfig.clone() },
        }
    }

    /// The TTLs: records 5 s; the SOA's own TTL and its minimum default to the record TTL.
    pub fn ttls(&self) -> Ttls {
        let secs = |v: Option<TtlSecs>, default: u32| v.map_or(default, |v| v.get() as u32);
        let record = secs(self.ttl, 5);
        Ttls {
            record,
            soa: secs(self.soa_ttl, record),
            soa_minimum: secs(self.soa_minimum, record),
            expected_negative: secs(self.expected_negative_ttl, 0),
        }
    }

    /// The log format (default text).
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or_default()
    }

    /// Where Services with a selector take their endpoints (default pods).
    pub fn endpoints_from(&self) -> EndpointsFrom {
        self.endpoints_from.unwrap_or_default()
    }

    /// The pod records mode (default disabled).
    pub fn pods(&self) -> PodsMode {
        self.pods.unwrap_or_default()
    }

    /// The Service label selector.
    pub fn labels(&self) -> Option<&LabelFilter> {
        self.labels.as_ref().map(|s| &s.0)
    }

    /// The namespace label selector.
    pub fn namespace_labels(&self) -> Option<&LabelFilter> {
        self.namespace_labels.as_ref().map(|s| &s.0)
    }

    /// How answers are shaped.
    pub fn zone_settings(&self) -> ZoneSettings {
        ZoneSettings {
            zones: self.zones(),
            ttls: self.ttls(),
            pods: self.pods(),
            ptr: self.ptr.unwrap_or_default(),
            namespaces: self.namespaces.clone(),
            zonal: self.zonal.unwrap_or(false),
            multicluster: self.multicluster_zones(),
            transfer: crate::dns::xfr::TransferPolicy { allow: self.allow_transfer.clone() },
            keys: self.keys.clone(),
        }
    }

    /// The transport limits.
    pub fn limits(&self) -> Limits {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            udp_workers: self.udp_workers.map_or(cpus, |n| n.get() as usize),
            tcp_max_connections: self.tcp_max_connections.map_or(1024, |n| n.get() as usize),
            tcp_idle_timeout: Duration::from_secs(self.tcp_idle_timeout.map_or(10, Bounded::get)),
            tcp_read_timeout: Duration::from_secs(self.tcp_read_timeout.map_or(2, Bounded::get)),
        }
    }

    /// The lame-duck time on SIGTERM (default none).
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay.map_or(0, Bounded::get))
    }

    /// Watch staleness that fails readiness (None: never; the default).
    pub fn stale_after(&self) -> Option<Duration> {
        self.stale_after.map(Bounded::get).filter(|s| *s > 0).map(Duration::from_secs)
    }

    /// Whether zone transfers are served or announced (and the journal kept).
    pub fn transfers(&self) -> bool {
        !self.allow_transfer.is_empty() || !self.notify.is_empty()
    }

    /// The publication window: changes within it share one serial (default 100 ms).
    pub fn serial_window(&self) -> Duration {
        Duration::from_millis(self.serial_window.map_or(100, Bounded::get))
    }

    /// The transfer journal's bounds (default 1000 differences, 16 MiB).
    pub fn journal_limits(&self) -> JournalLimits {
        let default = JournalLimits::default();
        JournalLimits {
            entries: self.journal_entries.map_or(default.entries, |n| n.get() as usize),
            bytes: self.journal_bytes.map_or(default.bytes, |n| n.get() as usize),
        }
    }

    /// Which kinds the configuration needs watched.
    pub fn watches(&self) -> Watches {
        let noendpoints = self.noendpoints.unwrap_or(false);
        Watches {
            pods: (self.endpoints_from() == EndpointsFrom::Pods && !noendpoints) || self.pods() == PodsMode::Verified,
            slices: !noendpoints,
            controller_slices: !noendpoints && self.endpoints_from() == EndpointsFrom::Endpointslices,
            namespaces: true,
            statefulsets: self.statefulsets.unwrap_or(true),
            nodes: self.zonal.unwrap_or(false) && self.endpoints_from() == EndpointsFrom::Pods && !noendpoints,
            imports: !self.multicluster_zone.is_empty(),
            streaming_lists: self.streaming_lists.unwrap_or(true),
        }
    }

    /// What the reconciler is told.
    pub fn reconcile_options(&self) -> ReconcileOptions {
        let zones = self.zones();
        let longest_zone = zones
            .iter()
            .map(|z| match z {
                ZoneSpec::Forward(n) => n.to_ascii().trim_end_matches('.').len(),
                ZoneSpec::Reverse { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        ReconcileOptions {
            mode: self.endpoints_from(),
            watches: self.watches(),
            records: RecordOptions {
                endpoint_names: self.endpoint_names.unwrap_or_default(),
                zonal: self.zonal.unwrap_or(false),
                endpoint_pod_names: self.endpoint_pod_names.unwrap_or(false),
                ignore_empty_service: self.ignore_empty_service.unwrap_or(false),
                noendpoints: self.noendpoints.unwrap_or(false),
                max_relative_len: crate::dns::names::MAX_NAME.saturating_sub(longest_zone + 1),
                ptr: zones.iter().any(|z| matches!(z, ZoneSpec::Reverse { .. })),
            },
            namespaces: self.namespaces.clone(),
            namespace_labels: self.namespace_labels().cloned(),
            pods_verified: self.pods() == PodsMode::Verified,
        }
    }
}

/// Reads and parses a TOML configuration file; relative paths in it are made relative to it.
pub fn read_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let mut config: Config = toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: toml_message(&text, &e) })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let relative = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    config.kubeconfig = config.kubeconfig.map(relative);
    config.manifests = config.manifests.map(relative);
    Ok(config)
}

/// A TOML error as one line naming the key and the line: `key `ttl` (line 3): 99999 is outside
/// 0..=3600`.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else { return message };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line =
        text[..start].rsplit('\n').next().unwrap_or("").to_owned() + text[start..].split('\n').next().unwrap_or("");
    match line.split_once('=').map(|(key, _)| key.trim()) {
        Some(key) if !key.is_empty() && !message.contains(&format!("`{key}`")) => {
            format!("key `{key}` (line {line_no}): {message}")
        }
        _ => format!("line {line_no}: {message}"),
    }
}

/// The outcome of a reload: the configuration now running, and the changed keys that were not
/// applied because they need a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Reloaded {
    /// The running configuration after the reload: `running` with every key that may change
    /// while running taken from the new configuration.
    pub config: Config,
    /// Keys whose new value needs a restart (kept at their running value).
    pub needs_restart: Vec<&'static str>,
}

/// Decides what a reload applies. Every key is classified here, and the compiler checks it: the
/// new configuration is destructured without `..`, so a new key that is not classified does not
/// compile. TTLs (the expected-name negative TTL included) and `ptr` change at once; `pods` changes at once between `disabled` and
/// `insecure` (both are answered without the reconciler), while `verified` on either side needs
/// the Pod watch and the published pod records, so a restart. Everything else needs a restart.
pub fn reload(running: &Config, new: Config) -> Reloaded {
    let Config {
        config,
        listen,
        zone,
        multicluster_zone,
        kubeconfig,
        manifests,
        http_listen,
        debug_listen,
        ttl,
        soa_ttl,
        soa_minimum,
        expected_negative_ttl,
        statefulsets,
        streaming_lists,
        log_format,
        endpoints_from,
        pods,
        ptr,
        namespaces,
        labels,
        namespace_labels,
        endpoint_names,
        zonal,
        endpoint_pod_names,
        ignore_empty_service,
        noendpoints,
        tcp_idle_timeout,
        tcp_read_timeout,
        tcp_max_connections,
        udp_workers,
        shutdown_delay,
        stale_after,
        allow_transfer,
        serial_window,
        journal_entries,
        journal_bytes,
        notify,
        tsig_key_file,
        keys,
    } = new;
    let mut next = running.clone();
    let mut needs_restart = Vec::new();
    // Applied at once.
    next.ttl = ttl;
    next.soa_ttl = soa_ttl;
    next.soa_minimum = soa_minimum;
    next.expected_negative_ttl = expected_negative_ttl;
    next.ptr = ptr;
    let verified = |p: Option<PodsMode>| p.unwrap_or_default() == PodsMode::Verified;
    if pods.unwrap_or_default() != running.pods() && (verified(pods) || verified(running.pods)) {
        needs_restart.push("pods");
    } else {
        next.pods = pods;
    }
    // The rules change at once while transfers stay on; turning them on or off starts or drops
    // the journal, so a restart.
    // The key file is read again at every reload; a new path applies too.
    next.tsig_key_file = tsig_key_file;
    next.keys = keys;
    if (!allow_transfer.is_empty() || !running.notify.is_empty()) != running.transfers() {
        needs_restart.push("allow-transfer");
    } else {
        next.allow_transfer = allow_transfer;
    }
    // Need a restart: kept at their running value, reported when asked to change.
    let mut restart = |key: &'static str, changed: bool| {
        if changed {
            needs_restart.push(key);
        }
    };
    restart("config", config != running.config);
    restart("listen", listen != running.listen);
    restart("zone", zone != running.zone);
    restart("multicluster-zone", multicluster_zone != running.multicluster_zone);
    restart("kubeconfig", kubeconfig != running.kubeconfig);
    restart("manifests", manifests != running.manifests);
    restart("http-listen", http_listen != running.http_listen);
    restart("debug-listen", debug_listen != running.debug_listen);
    restart("statefulsets", statefulsets != running.statefulsets);
    restart("streaming-lists", streaming_lists != running.streaming_lists);
    restart("log-format", log_format != running.log_format);
    restart("endpoints-from", endpoints_from != running.endpoints_from);
    restart("namespaces", namespaces != running.namespaces);
    restart("labels", labels != running.labels);
    restart("namespace-labels", namespace_labels != running.namespace_labels);
    restart("endpoint-names", endpoint_names != running.endpoint_names);
    restart("zonal", zonal != running.zonal);
    restart("endpoint-pod-names", endpoint_pod_names != running.endpoint_pod_names);
    restart("ignore-empty-service", ignore_empty_service != running.ignore_empty_service);
    restart("noendpoints", noendpoints != running.noendpoints);
    restart("tcp-idle-timeout", tcp_idle_timeout != running.tcp_idle_timeout);
    restart("tcp-read-timeout", tcp_read_timeout != running.tcp_read_timeout);
    restart("tcp-max-connections", tcp_max_connections != running.tcp_max_connections);
    restart("udp-workers", udp_workers != running.udp_workers);
    restart("shutdown-delay", shutdown_delay != running.shutdown_delay);
    restart("stale-after", stale_after != running.stale_after);
    restart("serial-window", serial_window != running.serial_window);
    restart("notify", notify != running.notify);
    restart("journal-entries", journal_entries != running.journal_entries);
    restart("journal-bytes", journal_bytes != running.journal_bytes);
    Reloaded { config: next, needs_restart }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Config, ConfigError> {
        let mut all = vec!["headless-dns"];
        all.extend_from_slice(args);
        Config::load_from(all)
    }

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap().to_owned();
        (dir, p)
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen(), vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.primary_zone().unwrap().to_string(), "cluster.local.");
        assert_eq!(c.ttls(), Ttls { record: 5, soa: 5, soa_minimum: 5, expected_negative: 0 });
        assert_eq!(c.endpoints_from(), EndpointsFrom::Pods);
        assert_eq!(c.source(), SourceConfig::Kubernetes { kubeconfig: None });
        assert_eq!(c.limits().tcp_max_connections, 1024);
    }

    #[test]
    fn flags_override_the_file_and_file_paths_are_relative_to_it() {
        let (dir, p) = file("listen = [\"127.0.0.1:1053\"]\nzone = \"Example.ORG\"\nttl = 30\nmanifests = \"m\"\n");
        let c = load(&["--config", &p, "--ttl", "7"]).unwrap();
        assert_eq!(c.ttls().record, 7);
        assert_eq!(c.primary_zone().unwrap().to_string(), "example.org.");
        assert_eq!(c.listen()[0].port(), 1053);
        assert_eq!(c.source(), SourceConfig::Manifests(dir.path().join("m")));
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let (_dir, p) = file("zone = \"a.b\"\nbogus = 1\n");
        let err = load(&["--config", &p]).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_key_the_line_and_the_limit() {
        let (_dir, p) = file("zone = \"a.b\"\nttl = 99999\n");
        let err = load(&["--config", &p]).unwrap_err().to_string();
        assert!(err.contains("`ttl`") && err.contains("c.toml") && err.contains("line 2"), "{err}");
        assert!(err.contains("0..=3600"), "{err}");
        let (_dir, p) = file("listen = []\n");
        let err = load(&["--config", &p]).unwrap_err().to_string();
        assert!(err.contains("`listen`") && err.contains("at least one"), "{err}");
        let err = load(&["--soa-minimum", "4000"]).unwrap_err().to_string();
        assert!(err.contains("--soa-minimum") && err.contains("0..=3600"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(load(&["--listen", "nonsense"]).is_err());
        assert!(load(&["--log-format", "xml"]).is_err());
        assert!(load(&["--zone", "."]).is_err());
        let err = load(&["--zone", "10.0.0.0/8"]).unwrap_err().to_string();
        assert!(err.contains("--zone") && err.contains("forward zone"), "reverse only: {err}");
        assert!(load(&["--labels", "a in b"]).is_err());
        let err = load(&["--zone", "cluster.local,svc.cluster.local"]).unwrap_err().to_string();
        assert!(err.contains("inside zone cluster.local."), "{err}");
        let err = load(&["--namespaces", "a,B_c"]).unwrap_err().to_string();
        assert!(err.contains("`namespaces`") && err.contains("B_c"), "{err}");
        let err = load(&["--multicluster-zone", "mc.cluster.local"]).unwrap_err().to_string();
        assert!(err.contains("--multicluster-zone") && err.contains("overlaps the zone cluster.local."), "{err}");
        let err = load(&["--multicluster-zone", "10.0.0.0/8"]).unwrap_err().to_string();
        assert!(err.contains("--multicluster-zone") && err.contains("domain name"), "{err}");
        let c = load(&["--multicluster-zone", "clusterset.local,ClusterSet.Local"]).unwrap();
        assert_eq!(c.multicluster_zones().iter().map(ToString::to_string).collect::<Vec<_>>(), ["clusterset.local."]);
    }

    #[test]
    fn zones_options_and_ttls() {
        let c = load(&[
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
        .unwrap();
        let zones = c.zones();
        assert_eq!(zones.len(), 1 + 16 + 1);
        assert!(matches!(&zones[1], ZoneSpec::Reverse { apex, .. } if apex.to_string() == "96.10.in-addr.arpa."));
        assert_eq!(c.pods(), PodsMode::Verified);
        assert_eq!(c.zone_settings().ptr, PtrMode::All);
        assert_eq!(c.namespaces, ["a", "b"]);
        assert_eq!(c.labels().map(LabelFilter::as_str), Some("app=web"));
        let r = c.reconcile_options();
        assert!(r.records.endpoint_pod_names && !r.records.ignore_empty_service && r.records.ptr);
        assert!(r.pods_verified && r.watches.pods);
        assert_eq!(c.ttls(), Ttls { record: 30, soa: 30, soa_minimum: 1, expected_negative: 0 });
    }

    #[test]
    fn a_reload_applies_safe_keys_and_keeps_the_running_value_of_the_others() {
        let start = load(&["--ttl", "5"]).unwrap();
        let insecure = load(&["--ttl", "9", "--pods", "insecure", "--udp-workers", "3"]).unwrap();
        let first = reload(&start, insecure);
        assert_eq!(first.needs_restart, ["udp-workers"]);
        assert_eq!((first.config.ttls().record, first.config.pods()), (9, PodsMode::Insecure));
        assert_eq!(first.config.udp_workers, None, "kept at the running value");
        // A second reload asking for `verified` keeps the running `insecure`, not the start-up value.
        let verified = load(&["--ttl", "9", "--pods", "verified"]).unwrap();
        let second = reload(&first.config, verified);
        assert_eq!(second.needs_restart, ["pods"]);
        assert_eq!(second.config.pods(), PodsMode::Insecure);
        // Two reloads in a row behave like one.
        let again = reload(&second.config, load(&["--ttl", "9", "--pods", "insecure"]).unwrap());
        assert!(again.needs_restart.is_empty());
        assert_eq!(again.config, second.config);
    }

    #[test]
    fn transfer_options_check_their_keys_and_reload_with_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("transfer.key");
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
        std::fs::write(&keys, format!("key \"k1\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};")).unwrap();
        let file = keys.to_str().unwrap();
        // A key no file defines, or a file that does not parse: exit 2, naming the key or line.
        let err = load(&["--allow-transfer", "10.0.0.0/8,key=k2"]).unwrap_err().to_string();
        assert!(err.contains("--allow-transfer") && err.contains("k2") && err.contains("tsig-key-file"), "{err}");
        let err = load(&["--notify", "127.0.0.1:53,key=k2", "--tsig-key-file", file]).unwrap_err().to_string();
        assert!(err.contains("--notify") && err.contains("not in the tsig-key-file"), "{err}");
        let err = load(&["--allow-transfer", "10.0.0.0/33"]).unwrap_err().to_string();
        assert!(err.contains("allow-transfer"), "{err}");
        let start = load(&["--allow-transfer", "10.0.0.0/8,key=k1", "--tsig-key-file", file]).unwrap();
        assert!(start.transfers() && start.keys.contains(&Name::from_ascii("k1").unwrap()));
        assert!(!format!("{start:?}").contains(secret), "the secret is never printed");
        // A reload reads the key file again and applies new rules at once.
        std::fs::write(&keys, format!("key \"k3\" {{ algorithm hmac-sha512; secret \"{secret}\"; }};")).unwrap();
        let new =
            load(&["--allow-transfer", "127.0.0.1", "--allow-transfer", "10.0.0.0/8,key=k3", "--tsig-key-file", file])
                .unwrap();
        let r = reload(&start, new);
        assert!(r.needs_restart.is_empty(), "{:?}", r.needs_restart);
        assert_eq!(r.config.allow_transfer.len(), 2);
        assert!(r.config.keys.contains(&Name::from_ascii("k3").unwrap()));
        // Turning transfers off (the journal) or changing NOTIFY targets needs a restart.
        let r = reload(&start, load(&[]).unwrap());
        assert_eq!(r.needs_restart, ["allow-transfer"]);
        assert!(r.config.transfers());
        let r = reload(
            &start,
            load(&["--allow-transfer", "10.0.0.0/8,key=k3", "--tsig-key-file", file, "--notify", "127.0.0.1:53"])
                .unwrap(),
        );
        assert_eq!(r.needs_restart, ["notify"]);
        assert_eq!(start.serial_window(), Duration::from_millis(100));
        assert!(load(&["--serial-window", "5"]).unwrap_err().to_string().contains("serial-window"));
    }

    /// Every key of the one configuration type (so every flag and variable) is documented in
    /// `config/example.toml` and in the README's configuration table, and the example loads.
    #[test]
    fn every_key_is_in_the_example_file_and_the_readme_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let example = std::fs::read_to_string(root.join("config/example.toml")).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let table: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `--")).collect();
        let cmd = Config::command();
        let mut keys = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            keys += 1;
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_else(|| panic!("--{long} has no variable"));
            assert_eq!(env, format!("HEADLESS_DNS_{}", long.replace('-', "_").to_ascii_uppercase()));
            let row = table.iter().find(|l| {
                l.strip_prefix(&format!("| `--{long}")).is_some_and(|rest| rest.starts_with([' ', '`', '[']))
            });
            let row = row.unwrap_or_else(|| panic!("README.md's configuration table has no row for --{long}"));
            assert!(row.contains(env), "README.md's row for --{long} names {env}: {row}");
            if long != "config" {
                let documented = example.lines().any(|l| {
                    let l = l.trim_start_matches('#').trim_start();
                    l.starts_with(&format!("{long} =")) || l.starts_with(&format!("{long}="))
                });
                assert!(documented, "config/example.toml documents `{long}`");
            }
        }
        assert!(keys >= 25, "the keys were read: {keys}");
        let path = root.join("config/example.toml");
        let c = load(&["--config", path.to_str().unwrap()]).unwrap();
        assert!(matches!(c.source(), SourceConfig::Manifests(_)), "the example serves its manifests");
    }
}
