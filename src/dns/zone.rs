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
    /// Negative caching time of a name a StatefulSet expects but that has no address now (its
    /// pod missing, Pending, not Ready or terminating): the SOA's TTL and MINIMUM in that answer.
    pub expected_negative: u32,
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
    /// Topology-pinned names are served (`<zone>.<pin|prefer>._zone.<svc>.<ns>.svc`).
    pub zonal: bool,
    /// Multicluster zones (`clusterset.local`), served from their own names.
    pub multicluster: Vec<Name>,
    /// Who may transfer the zones (AXFR, IXFR).
    pub transfer: super::xfr::TransferPolicy,
    /// The TSIG keys requests may be signed with.
    pub keys: std::sync::Arc<super::tsig::KeyRing>,
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
    check_forward_len(&name)?;
    Ok(vec![ZoneSpec::Forward(name)])
}

/// Longest forward zone, in octets of its presentation form without the final dot. The SOA of a
/// zone names `hostmaster.<zone>.` and `ns.dns.<zone>.`, and a name is at most 255 octets on the
/// wire (RFC 1035 section 2.3.4): `hostmaster.` adds 11 octets to the zone's 242 + 2.
pub const MAX_ZONE_LEN: usize = 242;

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

/// Checks that a forward zone leaves room for its SOA's names ([`MAX_ZONE_LEN`]).
fn check_forward_len(name: &Name) -> Result<(), String> {
    let len = name.to_ascii().trim_end_matches('.').len();
    if len > MAX_ZONE_LEN {
        return Err(format!(
            "zone {name} is {len} octets long; a zone may be at most {MAX_ZONE_LEN} octets, so that its SOA's \
             `hostmaster.<zone>` fits in a 255-octet name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_too_long_for_their_soa_names_are_refused() {
        let label = |c: char| c.to_string().repeat(60);
        let longest = format!("{}.{}.{}.{}", label('a'), label('b'), label('c'), "d".repeat(59));
        assert_eq!(longest.len(), MAX_ZONE_LEN);
        let apex = match &parse_zone_spec(&longest).unwrap()[0] {
            ZoneSpec::Forward(n) => n.clone(),
            other => panic!("{other:?}"),
        };
        assert!(Name::from_ascii("hostmaster").unwrap().append_domain(&apex).is_ok(), "the SOA's names fit");
        let err = parse_zone_spec(&format!("{longest}d")).unwrap_err();
        assert!(err.contains("243 octets") && err.contains("at most 242"), "{err}");
    }
}
