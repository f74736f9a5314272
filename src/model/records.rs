//! The names one Service publishes, per the Kubernetes DNS specification (kubernetes/dns
//! docs/specification.md, schema 1.1.0, sections 2.3 and 2.4). Pure functions: no I/O.
//!
//! Entry point: [`service_names`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;
use tracing::warn;

use super::{Endpoint, ServiceInfo, ServiceKind};
use crate::index::NameData;

/// RFC 1035 section 2.3.4: a label is at most 63 octets.
const MAX_LABEL: usize = 63;
/// RFC 1035 section 2.3.4: a name is at most 255 octets on the wire, 253 in presentation form.
const MAX_NAME: usize = 253;

/// Whether `label` can be served as one DNS label: 1..=63 octets of letters, digits and hyphens.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= MAX_LABEL && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The label of an endpoint without a hostname: its IP with `.` or `:` replaced by `-`
/// (`10-244-1-5`, `fd00--5`), as CoreDNS names them.
pub fn dashed_ip(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// Every name `svc` publishes under `zone_key` (e.g. `cluster.local.`), with its data, given the
/// Service's endpoints (only ready ones are published; duplicates are merged).
///
/// - `<svc>.<ns>.svc.<zone>`: a headless Service's ready endpoint IPs (nothing when none is
///   ready, so the name is NXDOMAIN); a ClusterIP Service's cluster IPs; an ExternalName's CNAME.
/// - `<hostname>.<svc>.<ns>.svc.<zone>` for each ready endpoint of a headless Service; an endpoint
///   without hostname is named by its dashed IP.
///
/// Names that would be malformed (a label over 63 octets, a name over 253) are skipped with a
/// warning.
pub fn service_names(svc: &ServiceInfo, endpoints: &[Endpoint], zone_key: &str) -> Vec<(String, NameData)> {
    let ns = &svc.key.namespace;
    let name = &svc.key.name;
    if !valid_label(name) || !valid_label(ns) {
        warn!(service = %svc.key, "skipping service: its name or namespace is not a valid DNS label");
        return Vec::new();
    }
    let base = format!("{name}.{ns}.svc.{zone_key}");
    if base.len() > MAX_NAME + 1 {
        warn!(service = %svc.key, "skipping service: its DNS name is longer than 253 octets");
        return Vec::new();
    }
    match &svc.kind {
        ServiceKind::ClusterIp(ips) => {
            let data = addresses(ips.iter().copied());
            if data.is_empty() { Vec::new() } else { vec![(base, data)] }
        }
        ServiceKind::ExternalName(target) => {
            let target = target.trim_end_matches('.');
            match Name::from_ascii(format!("{target}.")) {
                Ok(cname) if !target.is_empty() => {
                    vec![(base, NameData { cname: Some(cname.to_lowercase()), ..Default::default() })]
                }
                _ => {
                    warn!(service = %svc.key, external_name = target, "skipping ExternalName service: not a valid domain name");
                    Vec::new()
                }
            }
        }
        ServiceKind::Headless => {
            let mut per_label: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
            let mut all: Vec<IpAddr> = Vec::new();
            for ep in endpoints.iter().filter(|e| e.ready) {
                let label = match &ep.hostname {
                    Some(h) => h.to_ascii_lowercase(),
                    None => dashed_ip(&ep.ip),
                };
                if !valid_label(&label) || base.len() + label.len() + 1 > MAX_NAME + 1 {
                    warn!(service = %svc.key, label, "skipping endpoint name: not a valid DNS label or too long");
                } else {
                    per_label.entry(label).or_default().push(ep.ip);
                }
                all.push(ep.ip);
            }
            if all.is_empty() {
                return Vec::new();
            }
            let mut out = Vec::with_capacity(per_label.len() + 1);
            out.push((base.clone(), addresses(all)));
            for (label, ips) in per_label {
                out.push((format!("{label}.{base}"), addresses(ips)));
            }
            out
        }
    }
}

/// Sorted, de-duplicated A and AAAA data from a list of addresses.
fn addresses(ips: impl IntoIterator<Item = IpAddr>) -> NameData {
    let mut data = NameData::default();
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => data.v4.push(v4),
            IpAddr::V6(v6) => data.v6.push(v6),
        }
    }
    data.v4.sort_unstable();
    data.v4.dedup();
    data.v6.sort_unstable();
    data.v6.dedup();
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectKey;

    fn headless(name: &str) -> ServiceInfo {
        ServiceInfo {
            key: ObjectKey::new("default", name),
            kind: ServiceKind::Headless,
            selector: None,
            publish_not_ready: false,
        }
    }

    fn ep(ip: &str, host: Option<&str>, ready: bool) -> Endpoint {
        Endpoint { ip: ip.parse().unwrap(), hostname: host.map(str::to_owned), ready }
    }

    /// Renders names as zone-file lines, the way tests state expectations.
    fn zone_text(names: &[(String, NameData)]) -> Vec<String> {
        let mut out = Vec::new();
        for (n, d) in names {
            out.extend(d.v4.iter().map(|ip| format!("{n} A {ip}")));
            out.extend(d.v6.iter().map(|ip| format!("{n} AAAA {ip}")));
            out.extend(d.cname.iter().map(|c| format!("{n} CNAME {c}")));
        }
        out
    }

    #[test]
    fn headless_service_publishes_service_and_endpoint_names() {
        let names = service_names(
            &headless("nginx"),
            &[
                ep("10.244.1.5", Some("web-0"), true),
                ep("10.244.2.7", Some("web-1"), true),
                ep("10.244.3.9", None, true),
                ep("10.244.4.1", Some("web-2"), false),
                ep("fd00::5", None, true),
            ],
            "cluster.local.",
        );
        assert_eq!(
            zone_text(&names),
            [
                "nginx.default.svc.cluster.local. A 10.244.1.5",
                "nginx.default.svc.cluster.local. A 10.244.2.7",
                "nginx.default.svc.cluster.local. A 10.244.3.9",
                "nginx.default.svc.cluster.local. AAAA fd00::5",
                "10-244-3-9.nginx.default.svc.cluster.local. A 10.244.3.9",
                "fd00--5.nginx.default.svc.cluster.local. AAAA fd00::5",
                "web-0.nginx.default.svc.cluster.local. A 10.244.1.5",
                "web-1.nginx.default.svc.cluster.local. A 10.244.2.7",
            ]
        );
    }

    #[test]
    fn headless_service_without_ready_endpoints_publishes_nothing() {
        assert!(
            service_names(&headless("nginx"), &[ep("10.0.0.1", Some("web-0"), false)], "cluster.local.").is_empty()
        );
    }

    #[test]
    fn duplicate_addresses_are_served_once() {
        let names = service_names(
            &headless("db"),
            &[ep("10.0.0.1", Some("db-0"), true), ep("10.0.0.1", Some("db-0"), true)],
            "cluster.local.",
        );
        assert_eq!(
            zone_text(&names),
            ["db.default.svc.cluster.local. A 10.0.0.1", "db-0.db.default.svc.cluster.local. A 10.0.0.1"]
        );
    }

    #[test]
    fn cluster_ip_and_external_name_services() {
        let mut svc = headless("api");
        svc.kind = ServiceKind::ClusterIp(vec!["10.96.0.10".parse().unwrap(), "fd00::10".parse().unwrap()]);
        assert_eq!(
            zone_text(&service_names(&svc, &[ep("10.244.0.1", Some("x"), true)], "cluster.local.")),
            ["api.default.svc.cluster.local. A 10.96.0.10", "api.default.svc.cluster.local. AAAA fd00::10"]
        );
        svc.kind = ServiceKind::ExternalName("Example.COM".into());
        assert_eq!(
            zone_text(&service_names(&svc, &[], "cluster.local.")),
            ["api.default.svc.cluster.local. CNAME example.com."]
        );
    }

    #[test]
    fn over_long_labels_are_skipped_not_served() {
        let long = "a".repeat(64);
        let names = service_names(&headless("nginx"), &[ep("10.0.0.1", Some(&long), true)], "cluster.local.");
        assert_eq!(zone_text(&names), ["nginx.default.svc.cluster.local. A 10.0.0.1"]);
        assert!(service_names(&headless(&long), &[ep("10.0.0.1", None, true)], "cluster.local.").is_empty());
    }
}
