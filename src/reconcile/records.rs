//! The names one Service (or, for verified pod records, one Pod) publishes, per the Kubernetes
//! DNS specification (kubernetes/dns docs/specification.md, schema 1.1.0, section 2) and CoreDNS's
//! `kubernetes` plugin. Pure functions: no I/O. Names are relative to the zone (`nginx.default.svc`)
//! so that every configured zone serves them.
//!
//! Entry points: [`service_records`], [`pod_records`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use tracing::warn;

use crate::dns::names::{MAX_NAME, dashed_ip, valid_label};
use crate::index::{NameData, PtrEntry, Published, SrvData, ZoneTags, spread_weight};
use crate::model::{Endpoint, ImportKind, PodFacts, ServiceImportInfo, ServiceInfo, ServiceKind, ServicePort};

/// Which Services get `<endpoint>.<svc>.<ns>.svc` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointNames {
    /// Every Service with endpoints, ClusterIP ones too, as CoreDNS answers them (its
    /// `findServices` matches an endpoint name whatever the Service's type).
    #[default]
    All,
    /// Headless Services only.
    Headless,
}

/// What shapes the published names (CoreDNS `kubernetes` plugin options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// Which Services get endpoint names.
    pub endpoint_names: EndpointNames,
    /// Topology-pinned names `<zone>.pin._zone.<svc>` / `<zone>.prefer._zone.<svc>` for headless
    /// Services (the `zonal` option): their names carry [`ZoneTags`].
    pub zonal: bool,
    /// `endpoint_pod_names`: an endpoint without hostname is named by its pod's name.
    pub endpoint_pod_names: bool,
    /// `ignore_empty_service`: a ClusterIP Service without ready endpoints is NXDOMAIN.
    pub ignore_empty_service: bool,
    /// `noendpoints`: no endpoint records at all; headless Services are NXDOMAIN.
    pub noendpoints: bool,
    /// Longest relative name that still fits 253 octets under the longest zone.
    pub max_relative_len: usize,
    /// Publish PTR claims (only worth their memory when a reverse zone is served).
    pub ptr: bool,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            endpoint_names: EndpointNames::All,
            zonal: false,
            endpoint_pod_names: false,
            ignore_empty_service: false,
            noendpoints: false,
            max_relative_len: MAX_NAME - "cluster.local".len() - 1,
            ptr: true,
        }
    }
}

/// The label an endpoint is published under: its hostname; else, with `endpoint_pod_names`, its
/// pod's name when under 64 octets; else its dashed IP (CoreDNS `endpointHostname`).
pub(crate) fn endpoint_label(ep: &Endpoint, opts: &RecordOptions) -> (String, u8) {
    if let Some(h) = &ep.hostname {
        return (h.to_ascii_lowercase(), 0);
    }
    if opts.endpoint_pod_names
        && let Some(p) = &ep.pod_name
        && p.len() < 64
    {
        return (p.to_ascii_lowercase(), 1);
    }
    (dashed_ip(&ep.ip), 1)
}

/// Names skipped because they would be malformed are counted here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped(pub usize);

fn fits(name: &str, opts: &RecordOptions) -> bool {
    name.len() <= opts.max_relative_len
}

/// Every name `svc` publishes, given its endpoints (only ready ones are published; duplicates
/// are merged), and the number of names skipped as malformed (a label over 63 octets, a name over
/// 253), each with a warning.
///
/// - `<svc>.<ns>.svc`: a headless Service's ready endpoint IPs (nothing when none is ready, so
///   the name is NXDOMAIN); a ClusterIP Service's cluster IPs; an ExternalName's CNAME.
/// - `<label>.<svc>.<ns>.svc` for each ready endpoint of a headless Service.
/// - `_<port>._<proto>.<svc>.<ns>.svc` SRV for each named port (spec 2.3.1 / 2.4.1), and SRV on
///   `<svc>.<ns>.svc` itself listing every port (a CoreDNS extension), with `_<proto>...` as an
///   empty non-terminal.
/// - PTR claims: endpoint IPs to endpoint names, cluster IPs to the Service name.
pub fn service_records(svc: &ServiceInfo, endpoints: &[Endpoint], opts: &RecordOptions) -> (Published, Skipped) {
    let ns = &svc.key.namespace;
    let name = &svc.key.name;
    let mut skipped = Skipped::default();
    if !valid_label(name) || !valid_label(ns) {
        warn!(service = %svc.key, "skipping service: its name or namespace is not a valid DNS label");
        return (Published::default(), Skipped(1));
    }
    // One allocation per name, shared by its key, the SRV records and PTR lists that name it.
    let base: Arc<str> = format!("{name}.{ns}.svc").into();
    if !fits(&base, opts) {
        warn!(service = %svc.key, "skipping service: its DNS name is longer than 253 octets");
        return (Published::default(), Skipped(1));
    }
    let mut out = Published::default();
    let ready: Vec<&Endpoint> = endpoints.iter().filter(|e| e.ready).collect();
    match &svc.kind {
        ServiceKind::ClusterIp(ips) => {
            if ips.is_empty() || (opts.ignore_empty_service && ready.is_empty()) {
                return (out, skipped);
            }
            push_virtual_ip(&mut out, ips, &svc.ports, &base, opts, &mut skipped);
            // CoreDNS answers `<endpoint>.<svc>` for every Service (`svc.Headless() ||
            // r.endpoint != ""` in its findServices), and PTR for those endpoint addresses; the
            // SRV records keep naming the Service.
            if opts.endpoint_names == EndpointNames::All && !opts.noendpoints {
                let mut per_label: BTreeMap<String, (Arc<str>, Vec<IpAddr>)> = BTreeMap::new();
                for ep in &ready {
                    let (label, rank) = endpoint_label(ep, opts);
                    if !valid_label(&label) || !fits(&format!("{label}.{base}"), opts) {
                        warn!(service = %svc.key, label, "skipping endpoint name: not a valid DNS label or too long");
                        skipped.0 += 1;
                        continue;
                    }
                    let entry = per_label
                        .entry(label)
                        .or_insert_with_key(|label| (format!("{label}.{base}").into(), Vec::new()));
                    entry.1.push(ep.ip);
                    if opts.ptr {
                        out.ptrs.push(PtrEntry { ip: ep.ip, rank, name: entry.0.clone() });
                    }
                }
                for (_, (full, ips)) in per_label {
                    out.names.push((full, addresses(ips)));
                }
            }
        }
        ServiceKind::ExternalName(target) => {
            let target = target.trim_end_matches('.');
            match Name::from_ascii(format!("{target}.")) {
                Ok(cname) if !target.is_empty() => out.names.push((
                    base.clone(),
                    NameData { cname: Some(Box::new(cname.to_lowercase())), ..Default::default() },
                )),
                _ => {
                    warn!(service = %svc.key, external_name = target, "skipping ExternalName service: not a valid domain name");
                    skipped.0 += 1;
                }
            }
        }
        ServiceKind::Headless => {
            if opts.noendpoints {
                return (out, skipped);
            }
            let mut per_label: BTreeMap<String, (Arc<str>, Vec<IpAddr>)> = BTreeMap::new();
            let mut all: Vec<IpAddr> = Vec::new();
            let mut bare_srv: BTreeSet<SrvData> = BTreeSet::new();
            let mut per_port: BTreeMap<String, Vec<SrvData>> = BTreeMap::new();
            // The topology zone of each address and SRV target, for the zone-pinned names
            // (`zonal`); the first endpoint's when two share one.
            let mut zone_of_ip: HashMap<IpAddr, &Arc<str>> = HashMap::new();
            let mut zone_of_target: HashMap<Arc<str>, &Arc<str>> = HashMap::new();
            for ep in &ready {
                all.push(ep.ip);
                let zone = ep.zone.as_ref().filter(|_| opts.zonal);
                if let Some(z) = zone {
                    zone_of_ip.entry(ep.ip).or_insert(z);
                }
                let (label, rank) = endpoint_label(ep, opts);
                if !valid_label(&label) || !fits(&format!("{label}.{base}"), opts) {
                    warn!(service = %svc.key, label, "skipping endpoint name: not a valid DNS label or too long");
                    skipped.0 += 1;
                    continue;
                }
                let entry =
                    per_label.entry(label).or_insert_with_key(|label| (format!("{label}.{base}").into(), Vec::new()));
                entry.1.push(ep.ip);
                let full = entry.0.clone();
                if let Some(z) = zone {
                    zone_of_target.entry(full.clone()).or_insert(z);
                }
                if opts.ptr {
                    out.ptrs.push(PtrEntry { ip: ep.ip, rank, name: full.clone() });
                }
                for p in &ep.ports {
                    let record = SrvData { priority: 0, weight: 0, port: p.port, target: full.clone() };
                    bare_srv.insert(record.clone());
                    if let Some(port_name) = p.name.as_deref().filter(|n| valid_label(n)) {
                        let srv_name = format!("_{port_name}._{}.{base}", p.protocol);
                        let list = per_port.entry(srv_name).or_default();
                        if !list.contains(&record) {
                            list.push(record);
                        }
                    }
                }
            }
            if all.is_empty() {
                return (Published::default(), skipped);
            }
            let mut data = addresses(all);
            let mut bare_srv: Vec<SrvData> = bare_srv.into_iter().collect();
            finish_srv(&mut bare_srv);
            data.srv = bare_srv.into();
            if opts.zonal {
                // `<zone>.pin._zone.<base>` and the rest of the rule are answered from these
                // tags (`dns::answer`); no name of their own is held.
                let tags = ZoneTags::new(&data, |ip| zone_of_ip.get(&ip).copied(), |t| zone_of_target.get(t).copied());
                data.zones = Some(Arc::new(tags));
            }
            out.names.push((base.clone(), data));
            for (_, (full, ips)) in per_label {
                out.names.push((full, addresses(ips)));
            }
            push_srv_names(&mut out, per_port, &base, opts, &mut skipped);
        }
    }
    out.ptrs.sort();
    out.ptrs.dedup();
    (out, skipped)
}

/// The names a ServiceImport publishes in a multicluster zone (the Kubernetes multicluster DNS
/// specification, KEP-1645 / mcs-api, section 2), relative to that zone:
///
/// - ClusterSetIP: `<svc>.<ns>.svc` A/AAAA with `spec.ips`, SRV for every port and
///   `_<port>._<proto>.<svc>.<ns>.svc` for named ones, targeting the Service name (2.3);
/// - Headless: `<svc>.<ns>.svc` with every ready endpoint of every cluster (none: nothing, so
///   NXDOMAIN), `<hostname>.<clusterid>.<svc>.<ns>.svc` per endpoint (its hostname, else its
///   dashed IP, as in the cluster zone), SRV targeting those names (2.4), and
///   `<clusterid>.<svc>.<ns>.svc` as an empty non-terminal (no records of its own, as 2.4.4 wants,
///   but NODATA rather than NXDOMAIN: RFC 8020, or QNAME-minimising resolvers would never reach
///   the names below it);
/// - PTR claims for those addresses.
///
/// `endpoints` pairs each endpoint with its source cluster.
pub fn import_records(
    imp: &ServiceImportInfo,
    endpoints: &[(Option<Arc<str>>, Endpoint)],
    opts: &RecordOptions,
) -> (Published, Skipped) {
    let (ns, name) = (&imp.key.namespace, &imp.key.name);
    let mut skipped = Skipped::default();
    if !valid_label(name) || !valid_label(ns) {
        return (Published::default(), Skipped(1));
    }
    let base: Arc<str> = format!("{name}.{ns}.svc").into();
    if !fits(&base, opts) {
        return (Published::default(), Skipped(1));
    }
    let mut out = Published::default();
    match &imp.kind {
        ImportKind::ClusterSetIp(ips) => {
            if ips.is_empty() {
                return (out, skipped);
            }
            push_virtual_ip(&mut out, ips, &imp.ports, &base, opts, &mut skipped);
        }
        ImportKind::Headless => {
            let ready: Vec<&(Option<Arc<str>>, Endpoint)> = endpoints.iter().filter(|(_, e)| e.ready).collect();
            if ready.is_empty() || opts.noendpoints {
                return (out, skipped);
            }
            let mut all = Vec::new();
            let mut per_name: BTreeMap<String, (Arc<str>, Vec<IpAddr>)> = BTreeMap::new();
            let mut clusters = BTreeSet::new();
            let mut bare_srv: BTreeSet<SrvData> = BTreeSet::new();
            let mut per_port: BTreeMap<String, Vec<SrvData>> = BTreeMap::new();
            for (cluster, ep) in ready {
                all.push(ep.ip);
                let Some(cluster) = cluster.as_deref().filter(|c| valid_label(c)) else { continue };
                let (label, rank) = endpoint_label(ep, opts);
                let full = format!("{label}.{cluster}.{base}");
                if !valid_label(&label) || !fits(&full, opts) {
                    skipped.0 += 1;
                    continue;
                }
                clusters.insert(format!("{cluster}.{base}"));
                let entry = per_name.entry(full).or_insert_with_key(|full| (full.as_str().into(), Vec::new()));
                entry.1.push(ep.ip);
                let full = entry.0.clone();
                if opts.ptr {
                    out.ptrs.push(PtrEntry { ip: ep.ip, rank, name: full.clone() });
                }
                for p in &ep.ports {
                    let record = SrvData { priority: 0, weight: 0, port: p.port, target: full.clone() };
                    bare_srv.insert(record.clone());
                    if let Some(port_name) = p.name.as_deref().filter(|n| valid_label(n)) {
                        let list = per_port.entry(format!("_{port_name}._{}.{base}", p.protocol)).or_default();
                        if !list.contains(&record) {
                            list.push(record);
                        }
                    }
                }
            }
            let mut data = addresses(all);
            let mut bare_srv: Vec<SrvData> = bare_srv.into_iter().collect();
            finish_srv(&mut bare_srv);
            data.srv = bare_srv.into();
            out.names.push((base.clone(), data));
            for (_, (full, ips)) in per_name {
                out.names.push((full, addresses(ips)));
            }
            out.names.extend(clusters.into_iter().map(|c| (c.into(), NameData::default())));
            push_srv_names(&mut out, per_port, &base, opts, &mut skipped);
        }
    }
    out.ptrs.sort();
    out.ptrs.dedup();
    (out, skipped)
}

/// Adds the names of a virtual IP at `base` (a ClusterIP Service, or a ClusterSetIP
/// ServiceImport): its addresses, SRV to `base` for each port and `_port._proto.<base>` for each
/// named one, and PTR (rank 2) where PTR records are kept.
fn push_virtual_ip(
    out: &mut Published,
    ips: &[IpAddr],
    ports: &[ServicePort],
    base: &Arc<str>,
    opts: &RecordOptions,
    skipped: &mut Skipped,
) {
    let mut data = addresses(ips.iter().copied());
    let mut bare_srv = Vec::new();
    let mut per_port: BTreeMap<String, Vec<SrvData>> = BTreeMap::new();
    for p in ports {
        let record = SrvData { priority: 0, weight: 0, port: p.port, target: base.clone() };
        bare_srv.push(record.clone());
        if let Some(port_name) = p.name.as_deref().filter(|n| valid_label(n)) {
            per_port.entry(format!("_{port_name}._{}.{base}", p.protocol)).or_default().push(record);
        }
    }
    finish_srv(&mut bare_srv);
    data.srv = bare_srv.into();
    if opts.ptr {
        out.ptrs.extend(ips.iter().map(|ip| PtrEntry { ip: *ip, rank: 2, name: base.clone() }));
    }
    out.names.push((base.clone(), data));
    push_srv_names(out, per_port, base, opts, skipped);
}

/// Adds the `_port._proto.<base>` SRV names and their `_proto.<base>` empty non-terminals.
fn push_srv_names(
    out: &mut Published,
    per_port: BTreeMap<String, Vec<SrvData>>,
    base: &str,
    opts: &RecordOptions,
    skipped: &mut Skipped,
) {
    let mut protos = BTreeSet::new();
    for (name, mut srv) in per_port {
        if !fits(&name, opts) {
            skipped.0 += 1;
            continue;
        }
        if let Some(proto) = name.split('.').nth(1) {
            protos.insert(format!("{proto}.{base}"));
        }
        finish_srv(&mut srv);
        // The same records as the Service's own SRV set (one named port): share that list.
        let srv = match out.names.first() {
            Some((_, bare)) if *bare.srv == *srv => bare.srv.clone(),
            _ => srv.into(),
        };
        out.names.push((name.into(), NameData { srv, ..Default::default() }));
    }
    out.names.extend(protos.into_iter().map(|p| (p.into(), NameData::default())));
}

/// Sorts an SRV set and gives each record the same share of weight, as CoreDNS does
/// (`weight = 100 / n`, priority 0; RFC 2782 allows any split).
fn finish_srv(srv: &mut [SrvData]) {
    srv.sort();
    spread_weight(srv);
}

/// The verified pod record of `pod` in `namespace`: `<dashed-ip>.<ns>.pod` for each IP, while the pod is
/// neither terminal nor terminating (CoreDNS ignores terminating pods).
pub fn pod_records(namespace: &str, pod: &PodFacts, opts: &RecordOptions) -> Published {
    let mut out = Published::default();
    if pod.terminal() || pod.terminating() || !valid_label(namespace) {
        return out;
    }
    for ip in pod.ips.iter() {
        let name = format!("{}.{namespace}.pod", dashed_ip(&ip));
        if fits(&name, opts) {
            out.names.push((name.into(), addresses([ip])));
        }
    }
    out
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
    use crate::model::{EndpointPort, ObjectKey};

    fn headless(name: &str) -> ServiceInfo {
        ServiceInfo {
            key: ObjectKey::new("default", name),
            kind: ServiceKind::Headless,
            selector: None,
            publish_not_ready: false,
            ports: vec![],
            labels: Default::default(),
        }
    }

    fn ep(ip: &str, host: Option<&str>, ready: bool) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            hostname: host.map(str::to_owned),
            ready,
            pod_name: None,
            ports: vec![],
            zone: None,
        }
    }

    fn web_port(port: u16) -> EndpointPort {
        EndpointPort { name: Some("web".into()), port, protocol: "tcp".into() }
    }

    /// Renders names as zone-file lines (relative owners), the way tests state expectations.
    fn zone_text(p: &Published) -> Vec<String> {
        let mut out = Vec::new();
        for (n, d) in &p.names {
            out.extend(d.v4.iter().map(|ip| format!("{n} A {ip}")));
            out.extend(d.v6.iter().map(|ip| format!("{n} AAAA {ip}")));
            out.extend(d.cname.iter().map(|c| format!("{n} CNAME {c}")));
            out.extend(d.srv.iter().map(|s| format!("{n} SRV {} {} {} {}", s.priority, s.weight, s.port, s.target)));
            if d.is_empty() {
                out.push(format!("{n} (empty non-terminal)"));
            }
        }
        out.extend(p.ptrs.iter().map(|e| format!("PTR {} {} {}", e.ip, e.rank, e.name)));
        out
    }

    fn records(svc: &ServiceInfo, eps: &[Endpoint]) -> Vec<String> {
        zone_text(&service_records(svc, eps, &RecordOptions::default()).0)
    }

    #[test]
    fn headless_service_publishes_service_endpoint_and_srv_names() {
        let mut a = ep("10.244.1.5", Some("web-0"), true);
        a.ports = vec![web_port(8080)];
        let mut b = ep("10.244.3.9", None, true);
        b.ports = vec![web_port(8080)];
        let names =
            records(&headless("nginx"), &[a, b, ep("10.244.4.1", Some("web-2"), false), ep("fd00::5", None, true)]);
        assert_eq!(
            names,
            [
                "nginx.default.svc A 10.244.1.5",
                "nginx.default.svc A 10.244.3.9",
                "nginx.default.svc AAAA fd00::5",
                "nginx.default.svc SRV 0 50 8080 10-244-3-9.nginx.default.svc",
                "nginx.default.svc SRV 0 50 8080 web-0.nginx.default.svc",
                "10-244-3-9.nginx.default.svc A 10.244.3.9",
                "fd00--5.nginx.default.svc AAAA fd00::5",
                "web-0.nginx.default.svc A 10.244.1.5",
                "_web._tcp.nginx.default.svc SRV 0 50 8080 10-244-3-9.nginx.default.svc",
                "_web._tcp.nginx.default.svc SRV 0 50 8080 web-0.nginx.default.svc",
                "_tcp.nginx.default.svc (empty non-terminal)",
                "PTR 10.244.1.5 0 web-0.nginx.default.svc",
                "PTR 10.244.3.9 1 10-244-3-9.nginx.default.svc",
                "PTR fd00::5 1 fd00--5.nginx.default.svc",
            ]
        );
    }

    #[test]
    fn headless_service_without_ready_endpoints_publishes_nothing() {
        assert!(records(&headless("nginx"), &[ep("10.0.0.1", Some("web-0"), false)]).is_empty());
    }

    #[test]
    fn duplicate_addresses_are_served_once() {
        let names = records(&headless("db"), &[ep("10.0.0.1", Some("db-0"), true), ep("10.0.0.1", Some("db-0"), true)]);
        assert_eq!(
            names,
            ["db.default.svc A 10.0.0.1", "db-0.db.default.svc A 10.0.0.1", "PTR 10.0.0.1 0 db-0.db.default.svc"]
        );
    }

    #[test]
    fn cluster_ip_and_external_name_services() {
        let mut svc = headless("api");
        svc.kind = ServiceKind::ClusterIp(vec!["10.96.0.10".parse().unwrap(), "fd00::10".parse().unwrap()]);
        svc.ports = vec![
            ServicePort { name: Some("http".into()), port: 80, protocol: "tcp".into(), target_port: None },
            ServicePort { name: None, port: 53, protocol: "udp".into(), target_port: None },
        ];
        assert_eq!(
            records(&svc, &[ep("10.244.0.1", Some("x"), true)]),
            [
                "api.default.svc A 10.96.0.10",
                "api.default.svc AAAA fd00::10",
                "api.default.svc SRV 0 50 53 api.default.svc",
                "api.default.svc SRV 0 50 80 api.default.svc",
                "_http._tcp.api.default.svc SRV 0 100 80 api.default.svc",
                "_tcp.api.default.svc (empty non-terminal)",
                "x.api.default.svc A 10.244.0.1",
                "PTR 10.96.0.10 2 api.default.svc",
                "PTR 10.244.0.1 0 x.api.default.svc",
                "PTR fd00::10 2 api.default.svc",
            ]
        );
        // endpoint-names = headless: a ClusterIP Service names no endpoint.
        let headless_only = RecordOptions { endpoint_names: EndpointNames::Headless, ..Default::default() };
        let names = zone_text(&service_records(&svc, &[ep("10.244.0.1", Some("x"), true)], &headless_only).0);
        assert!(!names.iter().any(|n| n.starts_with("x.") || n.contains("10.244.0.1")), "{names:?}");
        let opts = RecordOptions { ignore_empty_service: true, ..Default::default() };
        assert!(service_records(&svc, &[], &opts).0.names.is_empty(), "ignore-empty-service");
        svc.kind = ServiceKind::ExternalName("Example.COM".into());
        assert_eq!(records(&svc, &[]), ["api.default.svc CNAME example.com."]);
    }

    #[test]
    fn endpoint_pod_names_and_noendpoints_options() {
        let mut e = ep("10.0.0.1", None, true);
        e.pod_name = Some("db-7f9c".into());
        let opts = RecordOptions { endpoint_pod_names: true, ..Default::default() };
        let names = zone_text(&service_records(&headless("db"), &[e.clone()], &opts).0);
        assert!(names.contains(&"db-7f9c.db.default.svc A 10.0.0.1".to_string()), "{names:?}");
        e.pod_name = Some("p".repeat(64));
        let names = zone_text(&service_records(&headless("db"), &[e.clone()], &opts).0);
        assert!(names.contains(&"10-0-0-1.db.default.svc A 10.0.0.1".to_string()), "{names:?}");
        let opts = RecordOptions { noendpoints: true, ..Default::default() };
        assert!(service_records(&headless("db"), &[e], &opts).0.names.is_empty());
    }

    #[test]
    fn over_long_labels_and_names_are_skipped_and_counted() {
        let long = "a".repeat(64);
        let (p, skipped) =
            service_records(&headless("nginx"), &[ep("10.0.0.1", Some(&long), true)], &RecordOptions::default());
        assert_eq!(zone_text(&p), ["nginx.default.svc A 10.0.0.1"]);
        assert_eq!(skipped, Skipped(1));
        let (p, skipped) = service_records(&headless(&long), &[ep("10.0.0.1", None, true)], &RecordOptions::default());
        assert!(p.names.is_empty());
        assert_eq!(skipped, Skipped(1));
        let tight = RecordOptions { max_relative_len: 20, ..Default::default() };
        let (p, skipped) = service_records(&headless("nginx"), &[ep("10.0.0.1", Some("web-0"), true)], &tight);
        assert_eq!(zone_text(&p), ["nginx.default.svc A 10.0.0.1"]);
        assert_eq!(skipped, Skipped(1));
    }
}
