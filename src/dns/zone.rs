//! What the DNS side is told to serve: the zones (forward names, reverse zones and the CIDRs
//! they come from), the TTLs, and the CoreDNS `kubernetes` plugin options that shape answers.
//! These are the DNS side's own types; the configuration builds them.
//!
//! Entry points: [`parse_zone_spec`] (one `zone` value) and [`ZoneSettings`].

use clap::ValueEnum;
use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;

use super::reverse::{net_of_reverse_zone, zones_for_cidr};

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

impl Ttls {
    /// The TTL of the SOA record in a negative answer. RFC 2308 section 3: "the TTL of this
    /// record is set from the minimum of the MINIMUM field of the SOA record and the TTL of the
    /// SOA itself", because resolvers cache the negative answer for that TTL.
    pub fn negative_soa(&self) -> u32 {
        self.soa.min(self.soa_minimum)
    }
}

/// How the answers are shaped.
#[derive(Debug, Clone)]
pub struct ZoneSettings {
    /// The zones served.
    pub zones: Vec<ZoneSpec>,
    /// TTLs.
    pub ttls: Ttls,
    /// Pod records.
    pub pods: PodsMode,
    /// PTR records per address.
    pub ptr: PtrMode,
    /// Namespace allow-list (empty: all), for insecure pod records.
    pub namespaces: Vec<String>,
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
