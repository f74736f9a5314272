//! The zone logic: what the authoritative answer to one question is, read from the [`Index`]
//! only. Pure: no sockets, so every rule is table-tested.
//!
//! Entry point: [`Zones::answer`]. Every configured forward zone serves the same zone-relative
//! names; reverse zones serve PTR records for the addresses the index knows.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ipnet::IpNet;

use super::cookie::Cookies;
use super::names::{relative_key, undash_ip};
use super::reverse::{ip_of_ptr_name, net_of_reverse_zone, ptr_name_of};
use super::zone::{PodsMode, PtrMode, Ttls, ZoneSettings, ZoneSpec};
use crate::index::{Found, Index, NameData, PtrTargets};
use crate::journal::Journal;

/// SOA timers, as CoreDNS's `kubernetes` plugin sets them (refresh 2h, retry 30m, expire 24h).
const SOA_REFRESH: i32 = 7200;
const SOA_RETRY: i32 = 1800;
const SOA_EXPIRE: i32 = 86400;
/// The schema version of the Kubernetes DNS specification we implement (spec section 2.1).
pub const SPEC_VERSION: &str = "1.1.0";
/// The schema version of the Kubernetes multicluster DNS specification we implement (KEP-1645
/// `specification.md`, section 1: "version 1.0.0 of the schema").
pub const MULTICLUSTER_SPEC_VERSION: &str = "1.0.0";
/// Longest CNAME chain followed inside our zones.
const MAX_CHASE: usize = 8;

/// The answer to one question, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response code.
    pub rcode: ResponseCode,
    /// The AA bit: set on every answer from inside our zones (RFC 1035 section 4.1.1).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (the SOA on negative answers, RFC 2308 section 3).
    pub authority: Vec<Record>,
    /// Additional section (addresses of SRV targets).
    pub additional: Vec<Record>,
}

impl Answer {
    /// An answer with no records and not authoritative (an error, or the sections of a reply
    /// whose rcode is set elsewhere).
    pub(super) fn error(rcode: ResponseCode) -> Self {
        Self { rcode, authoritative: false, answers: Vec::new(), authority: Vec::new(), additional: Vec::new() }
    }
}

#[derive(Debug, Clone)]
struct Apex {
    name: Name,
    /// Reverse zones: the network covered.
    net: Option<IpNet>,
    /// A multicluster zone (answered from the multicluster names).
    multicluster: bool,
}

/// A zone apex in wire form, for the fast path.
#[derive(Debug, Clone)]
pub struct WireApex {
    /// Lower-cased labels, leftmost first.
    pub labels: Vec<Vec<u8>>,
    /// The lower-cased name in uncompressed wire form, root label included.
    pub wire: Vec<u8>,
    /// A forward zone (else a reverse zone, which the fast path leaves to the general path).
    pub forward: bool,
}

/// The authoritative zones served from an [`Index`].
#[derive(Debug, Clone)]
pub struct Zones {
    index: Arc<Index>,
    /// The multicluster zones' names (ServiceImports), relative to such a zone.
    multicluster: Arc<Index>,
    /// Forward and reverse apexes, most specific first.
    apexes: Vec<Apex>,
    /// The first forward zone: PTR targets are named in it.
    primary: Name,
    settings: ZoneSettings,
    /// The apexes in wire form, most specific first.
    wire_apexes: Vec<WireApex>,
    /// The server secret and clock for DNS cookies.
    cookies: Cookies,
    /// The versions zone transfers are served from (none: transfers are refused).
    journal: Option<Arc<Journal>>,
}

/// Where a question falls.
/// Where a name falls in the zones served ([`Zones::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Under a forward zone: its apex and the zone-relative key (`web-0.nginx.default.svc`).
    Forward {
        /// The zone.
        apex: Name,
        /// The key below it.
        key: String,
    },
    /// Under a multicluster zone: its apex and the zone-relative key (`db-0.c1.db.ns.svc`).
    Multicluster {
        /// The zone.
        apex: Name,
        /// The key below it.
        key: String,
    },
    /// Under a reverse zone: its apex and the address a full PTR name stands for.
    Reverse {
        /// The zone.
        apex: Name,
        /// The address, for a full PTR name.
        ip: Option<IpAddr>,
    },
}

enum Place<'a> {
    Forward { apex: &'a Name, key: String },
    Reverse { apex: &'a Name, net: IpNet },
    Multicluster { apex: &'a Name, key: String },
}

impl Zones {
    /// Zones over `index`. `settings.zones` must hold at least one forward zone (the
    /// configuration guarantees it).
    pub fn new(index: Arc<Index>, settings: ZoneSettings) -> Self {
        let mut apexes: Vec<Apex> = settings
            .zones
            .iter()
            .map(|z| match z {
                ZoneSpec::Forward(n) => Apex { name: n.to_lowercase(), net: None, multicluster: false },
                ZoneSpec::Reverse { apex, net } => {
                    Apex { name: apex.to_lowercase(), net: Some(*net), multicluster: false }
                }
            })
            .chain(settings.multicluster.iter().map(|n| Apex { name: n.to_lowercase(), net: None, multicluster: true }))
            .collect();
        let primary = apexes
            .iter()
            .find(|a| a.net.is_none() && !a.multicluster)
            .map(|a| a.name.clone())
            .unwrap_or_else(Name::root);
        apexes.sort_by_key(|a| std::cmp::Reverse(a.name.num_labels()));
        let wire_apexes = apexes
            .iter()
            .map(|a| {
                let labels: Vec<Vec<u8>> = a.name.iter().map(|l| l.to_ascii_lowercase()).collect();
                let mut wire = Vec::new();
                for l in &labels {
                    wire.push(l.len() as u8);
                    wire.extend_from_slice(l);
                }
                wire.push(0);
                // The fast path answers the cluster zones' names only.
                WireApex { labels, wire, forward: a.net.is_none() && !a.multicluster }
            })
            .collect();
        Self {
            index,
            multicluster: Arc::new(Index::new()),
            apexes,
            primary,
            settings,
            wire_apexes,
            cookies: Cookies::process(),
            journal: None,
        }
    }

    /// Serves zone transfers from `journal` (to the clients the settings allow).
    pub fn with_journal(mut self, journal: Option<Arc<Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// The journal transfers are served from, if transfers are on.
    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Who may transfer the zones.
    pub fn transfer_policy(&self) -> &super::xfr::TransferPolicy {
        &self.settings.transfer
    }

    /// The TSIG keys.
    pub fn keys(&self) -> &Arc<super::tsig::KeyRing> {
        &self.settings.keys
    }

    /// Makes server cookies with `cookies` instead of the process's (tests pin the clock).
    pub fn with_cookies(mut self, cookies: Cookies) -> Self {
        self.cookies = cookies;
        self
    }

    /// The server secret and clock DNS cookies are made with.
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// Answers the multicluster zones from `index` (the reconciler publishes ServiceImports
    /// there).
    pub fn with_multicluster(mut self, index: Arc<Index>) -> Self {
        self.multicluster = index;
        self
    }

    fn is_multicluster(&self, apex: &Name) -> bool {
        self.apexes.iter().any(|a| a.multicluster && a.name == *apex)
    }

    /// The apexes in wire form, most specific first (for the fast path).
    pub fn wire_apexes(&self) -> &[WireApex] {
        &self.wire_apexes
    }

    /// The TTLs answers carry.
    pub fn ttls(&self) -> Ttls {
        self.settings.ttls
    }

    /// The index answered from.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// `prefix` under a forward `apex` (`ns.dns.cluster.local.`), or under the primary zone for a
    /// reverse apex, as CoreDNS names its SOA and NS.
    /// The configuration refuses zones too long for these names ([`super::zone::MAX_ZONE_LEN`]);
    /// were one to get here all the same, the apex itself stands in rather than a panic.
    fn server_name(&self, prefix: &str, apex: &Name) -> Name {
        let forward = self.apexes.iter().any(|a| a.net.is_none() && a.name == *apex);
        let base = if forward { apex } else { &self.primary };
        Name::from_ascii(prefix).and_then(|p| p.append_domain(base)).unwrap_or_else(|_| base.clone())
    }

    /// The SOA record of `apex`, with the current serial; its minimum bounds negative caching
    /// (RFC 2308 section 5).
    pub fn soa(&self, apex: &Name) -> Record {
        let t = &self.settings.ttls;
        let soa = SOA::new(
            self.server_name("ns.dns", apex),
            self.server_name("hostmaster", apex),
            if self.is_multicluster(apex) { self.multicluster.serial() } else { self.index.serial() },
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            t.soa_minimum,
        );
        Record::from_rdata(apex.clone(), t.soa, RData::SOA(soa))
    }

    /// The SOA record of `apex` carrying `serial` (zone transfers send the serial of the
    /// snapshot they send, whatever answers carry by then).
    pub fn soa_at(&self, apex: &Name, serial: u32) -> Record {
        let mut soa = self.soa(apex);
        if let RData::SOA(data) = &mut soa.data {
            data.serial = serial;
        }
        soa
    }

    /// The zones a transfer may ask for: every forward and reverse zone (a multicluster zone is
    /// answered from ServiceImports and is not offered). Reverse zones carry their network.
    pub fn transfer_zones(&self) -> Vec<(Name, Option<IpNet>)> {
        self.apexes.iter().filter(|a| !a.multicluster).map(|a| (a.name.clone(), a.net)).collect()
    }

    /// The transferable zone whose apex is `qname` (any case).
    pub fn transfer_zone(&self, qname: &Name) -> Option<(Name, Option<IpNet>)> {
        let mut q = qname.to_lowercase();
        q.set_fqdn(true);
        self.apexes.iter().find(|a| !a.multicluster && a.name == q).map(|a| (a.name.clone(), a.net))
    }

    /// The records at a zone's apex other than the SOA: its NS, and in a forward zone the
    /// specification's `dns-version` TXT (spec section 2.1).
    pub fn apex_records(&self, apex: &Name, forward: bool) -> Vec<Record> {
        let ttl = self.settings.ttls.record;
        let mut out = vec![Record::from_rdata(apex.clone(), ttl, RData::NS(NS(self.server_name("ns.dns", apex))))];
        if forward && let Ok(name) = Name::from_ascii("dns-version").and_then(|n| n.append_domain(apex)) {
            out.push(Record::from_rdata(name, ttl, RData::TXT(TXT::new(vec![SPEC_VERSION.to_owned()]))));
        }
        out
    }

    /// Every record of the forward name `key` under `apex` holding `data`, as a zone transfer
    /// carries it; none for a name answers do not serve from the index (pod records outside
    /// `verified` mode).
    pub fn name_records(&self, apex: &Name, key: &str, data: &NameData) -> Vec<Record> {
        if self.settings.pods != PodsMode::Verified && (key == "pod" || key.ends_with(".pod")) {
            return Vec::new();
        }
        let Some(owner) = under(key, apex) else { return Vec::new() };
        let ttl = self.settings.ttls.record;
        let mut out = Vec::with_capacity(data.v4.len() + data.v6.len() + data.srv.len() + 1);
        if let Some(target) = &data.cname {
            out.push(Record::from_rdata(owner, ttl, RData::CNAME(CNAME((**target).clone()))));
            return out;
        }
        out.extend(data.v4.iter().map(|ip| Record::from_rdata(owner.clone(), ttl, RData::A(A(*ip)))));
        out.extend(data.v6.iter().map(|ip| Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(*ip)))));
        for r in data.srv.iter() {
            if let Some(target) = under(&r.target, apex) {
                out.push(Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::SRV(SRV::new(r.priority, r.weight, r.port, target)),
                ));
            }
        }
        out
    }

    /// The PTR records of `ip` (owned by `owner`), as answers give them: per the `ptr` option,
    /// one record per name however many owners claim it, targets named in `zone`.
    fn ptr_records_in(&self, owner: &Name, targets: &PtrTargets, zone: &Name) -> Vec<Record> {
        let take = match self.settings.ptr {
            PtrMode::First => 1,
            PtrMode::All => targets.len(),
        };
        // One record per name, however many owners claim it (claims of one name sit side by side).
        let mut names: Vec<&str> = targets.iter().map(|(_, rel)| &**rel).collect();
        names.dedup();
        names
            .into_iter()
            .take(take)
            .filter_map(|rel| under(rel, zone))
            .map(|t| Record::from_rdata(owner.clone(), self.settings.ttls.record, RData::PTR(PTR(t))))
            .collect()
    }

    /// The PTR records of `ip`, as a transfer of its reverse zone carries them.
    pub fn ptr_records(&self, ip: IpAddr, targets: &PtrTargets) -> Vec<Record> {
        self.ptr_records_in(&ptr_name_of(ip), targets, &self.primary)
    }

    /// The SOA record of `apex` as a negative answer carries it: its TTL no longer than its
    /// minimum ([`Ttls::negative_soa`], RFC 2308 section 3).
    fn negative_soa(&self, apex: &Name) -> Record {
        let mut soa = self.soa(apex);
        soa.ttl = self.settings.ttls.negative_soa();
        soa
    }

    /// Where `qname` falls: the zone that answers it and what it asks of it, or `None` outside
    /// every zone (for explanations; answers use the same rule).
    pub fn locate(&self, qname: &Name) -> Option<Located> {
        let mut qname = qname.clone();
        qname.set_fqdn(true);
        Some(match self.place(&qname)? {
            Place::Forward { apex, key } => Located::Forward { apex: apex.clone(), key },
            Place::Multicluster { apex, key } => Located::Multicluster { apex: apex.clone(), key },
            Place::Reverse { apex, .. } => Located::Reverse { apex: apex.clone(), ip: ip_of_ptr_name(&qname) },
        })
    }

    fn place(&self, qname: &Name) -> Option<Place<'_>> {
        for a in &self.apexes {
            if a.name.zone_of(qname) {
                return Some(match a.net {
                    None if a.multicluster => Place::Multicluster { apex: &a.name, key: relative_key(qname, &a.name)? },
                    None => Place::Forward { apex: &a.name, key: relative_key(qname, &a.name)? },
                    Some(net) => Place::Reverse { apex: &a.name, net },
                });
            }
        }
        None
    }

    /// Answers one question. `qname` keeps the client's case: answer records are owned by it
    /// exactly as asked.
    pub fn answer(&self, qname: &Name, qtype: RecordType, qclass: DNSClass) -> Answer {
        // Only class IN is served; CHAOS `version.bind` and friends are refused.
        if qclass != DNSClass::IN && qclass != DNSClass::ANY {
            return Answer::error(ResponseCode::Refused);
        }
        let mut qname = qname.clone();
        qname.set_fqdn(true);
        // Outside our zones (including `. NS`, CoreDNS forward's health probe): not ours.
        let Some(place) = self.place(&qname) else {
            return Answer::error(ResponseCode::Refused);
        };
        // Before the first full list we do not know what does not exist: SERVFAIL, as CoreDNS
        // does, never a premature NXDOMAIN that resolvers would cache.
        if !self.index.is_synced() {
            return Answer::error(ResponseCode::ServFail);
        }
        // Zone transfers are not offered.
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Answer::error(ResponseCode::Refused);
        }
        match place {
            Place::Forward { apex, key } if key.is_empty() => self.apex_answer(apex, &qname, qtype),
            Place::Forward { apex, key } => self.forward_answer(apex, &qname, &key, qtype),
            Place::Reverse { apex, .. } if *apex == qname => self.apex_answer(apex, &qname, qtype),
            Place::Reverse { apex, net } => self.reverse_answer(apex, net, &qname, qtype),
            Place::Multicluster { apex, key } if key.is_empty() => self.apex_answer(apex, &qname, qtype),
            Place::Multicluster { apex, key } => self.multicluster_answer(apex, &qname, &key, qtype),
        }
    }

    /// A name in a multicluster zone, from the ServiceImports (Kubernetes multicluster DNS
    /// specification, KEP-1645): their names only, no pod records; `dns-version` carries that
    /// specification's schema version (section 1).
    fn multicluster_answer(&self, apex: &Name, qname: &Name, key: &str, qtype: RecordType) -> Answer {
        if key == "dns-version" {
            return match qtype {
                RecordType::TXT | RecordType::ANY => self.positive(vec![Record::from_rdata(
                    qname.clone(),
                    self.settings.ttls.record,
                    RData::TXT(TXT::new(vec![MULTICLUSTER_SPEC_VERSION.to_owned()])),
                )]),
                _ => self.negative(apex, ResponseCode::NoError),
            };
        }
        let Some(data) = self.multicluster.lookup(key) else {
            return self.negative(apex, ResponseCode::NXDomain);
        };
        let mut answer = self.positive(Vec::new());
        self.add_data_from(&self.multicluster, &mut answer, qname, &data, qtype, apex);
        if answer.answers.is_empty() {
            return self.negative(apex, ResponseCode::NoError);
        }
        answer
    }

    fn apex_answer(&self, apex: &Name, qname: &Name, qtype: RecordType) -> Answer {
        match qtype {
            // RFC 8482: ANY gets one RRset; the SOA is the obvious one at an apex.
            RecordType::SOA | RecordType::ANY => {
                let mut soa = self.soa(apex);
                soa.name = qname.clone();
                self.positive(vec![soa])
            }
            RecordType::NS => self.positive(vec![Record::from_rdata(
                qname.clone(),
                self.settings.ttls.record,
                RData::NS(NS(self.server_name("ns.dns", apex))),
            )]),
            _ => self.negative(apex, ResponseCode::NoError),
        }
    }

    /// The data at a forward key: the index, plus the names computed rather than stored
    /// (`dns-version`, insecure pod records and the `pod` non-terminals).
    fn resolve(&self, key: &str) -> Option<Found> {
        let labels: Vec<&str> = key.split('.').collect();
        if labels.last() == Some(&"pod") {
            return self.resolve_pod(key, &labels);
        }
        self.index.lookup(key).or_else(|| self.resolve_zonal(&labels))
    }

    /// A topology-pinned name (CoreDNS `zonal`, PR #8388), answered from the zone tags of a
    /// headless Service's name (the index holds no name below `_zone`, see `index::ZoneTags`):
    /// - `_zone.<svc>.<ns>.svc`, `pin._zone...` and `prefer._zone...`: empty non-terminals (NODATA);
    /// - `<zone>.pin._zone...` and `<zone>.prefer._zone...`: the Service's ready endpoints in that
    ///   zone; when it has none, `pin` is NODATA ("drained zones and typos alike") and `prefer`
    ///   answers every endpoint of the Service; a label of a dotted zone (`b` of `a.b`) is an
    ///   empty non-terminal;
    /// - any other directive, a Service that is not headless or has no ready endpoint, or the
    ///   option off: NXDOMAIN.
    fn resolve_zonal(&self, labels: &[&str]) -> Option<Found> {
        let n = labels.len();
        if !self.settings.zonal || n < 4 || labels[n - 4] != "_zone" || labels[n - 1] != "svc" {
            return None;
        }
        let data = self.index.lookup(&labels[n - 3..].join("."))?;
        let tags = data.zones.as_deref()?;
        let directive = if n > 4 { labels[n - 5] } else { "" };
        if !matches!(directive, "" | "pin" | "prefer") {
            return None;
        }
        if n <= 5 {
            return Some(NameData::default().into());
        }
        let zone = labels[..n - 5].join(".");
        if let Some(pinned) = data.in_zone(&zone) {
            return Some(pinned.into());
        }
        if directive == "pin" || tags.has_below(&zone) { Some(NameData::default().into()) } else { Some(data) }
    }

    /// Whether topology-pinned names are served (the fast path leaves their misses here).
    pub fn zonal(&self) -> bool {
        self.settings.zonal
    }

    fn namespace_exposed(&self, ns: &str) -> bool {
        (self.settings.namespaces.is_empty() || self.settings.namespaces.iter().any(|n| n == ns))
            && self.index.namespace_exposed(ns)
    }

    /// Pod records, CoreDNS `pods` semantics: disabled, insecure (any well-formed dashed IP),
    /// verified (a pod with that IP in that namespace, published by the reconciler).
    fn resolve_pod(&self, key: &str, labels: &[&str]) -> Option<Found> {
        match (self.settings.pods, labels.len()) {
            // `pod.<zone>` is an empty non-terminal in every mode (NODATA), as CoreDNS answers
            // it; below it, nothing exists while pod records are disabled.
            (_, 1) => Some(NameData::default().into()),
            (PodsMode::Disabled, _) => None,
            // `<ns>.pod.<zone>`: NODATA when the namespace exists and is served.
            (_, 2) => self.namespace_exposed(labels[0]).then(|| NameData::default().into()),
            (PodsMode::Insecure, 3) if self.namespace_exposed(labels[1]) => {
                let ip = undash_ip(labels[0])?;
                let mut data = NameData::default();
                match ip {
                    IpAddr::V4(v4) => data.v4.push(v4),
                    IpAddr::V6(v6) => data.v6.push(v6),
                }
                Some(data.into())
            }
            (PodsMode::Insecure, _) => None,
            (PodsMode::Verified, _) => self.index.lookup(key),
        }
    }

    fn forward_answer(&self, apex: &Name, qname: &Name, key: &str, qtype: RecordType) -> Answer {
        let ttl = self.settings.ttls.record;
        if key == "dns-version" {
            // Spec section 2.1: `dns-version.<zone>. IN TXT "<schema-version>"`.
            return match qtype {
                RecordType::TXT | RecordType::ANY => self.positive(vec![Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::TXT(TXT::new(vec![SPEC_VERSION.to_owned()])),
                )]),
                _ => self.negative(apex, ResponseCode::NoError),
            };
        }
        let Some(data) = self.resolve(key) else {
            return self.nxdomain(apex, key);
        };
        let mut answer = self.positive(Vec::new());
        let mut owner = qname.clone();
        let mut data = data;
        for _ in 0..MAX_CHASE {
            let Some(target) = &data.cname else { break };
            // RFC 1034 section 3.6.2: a CNAME answers every type at its owner; RFC 1034 section
            // 4.3.2 step 3a: restart at the target when it is ours, else stop (not chased outside).
            answer.answers.push(Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME((**target).clone()))));
            if qtype == RecordType::CNAME {
                return answer;
            }
            let Some(Place::Forward { key, apex: target_apex }) = self.place(target) else {
                return answer;
            };
            match self.resolve(&key) {
                Some(next) => {
                    owner = (**target).clone();
                    data = next;
                }
                None => {
                    // RFC 6604: the rcode reflects the last name in the chain.
                    answer.rcode = ResponseCode::NXDomain;
                    answer.authority.extend(self.nxdomain(target_apex, &key).authority);
                    return answer;
                }
            }
        }
        if data.cname.is_some() {
            return answer; // a chain longer than we follow
        }
        let before = answer.answers.len();
        self.add_data(&mut answer, &owner, &data, qtype, apex);
        if answer.answers.len() == before {
            if before > 0 {
                return answer; // CNAME chain to a name without this type
            }
            // The name exists but not with this type (or is an empty non-terminal): NODATA,
            // RFC 2308 section 2.2.
            return self.negative(apex, ResponseCode::NoError);
        }
        answer
    }

    /// Appends `data`'s records of `qtype` owned by `owner`; SRV targets' addresses go to the
    /// additional section (spec 2.3.1: they "should" be returned there).
    fn add_data(&self, answer: &mut Answer, owner: &Name, data: &NameData, qtype: RecordType, apex: &Name) {
        self.add_data_from(&self.index, answer, owner, data, qtype, apex);
    }

    /// As [`Zones::add_data`], with SRV targets' addresses read from `index`.
    fn add_data_from(
        &self,
        index: &Index,
        answer: &mut Answer,
        owner: &Name,
        data: &NameData,
        qtype: RecordType,
        apex: &Name,
    ) {
        let ttl = self.settings.ttls.record;
        let any = qtype == RecordType::ANY;
        if qtype == RecordType::A || any {
            answer.answers.extend(data.v4.iter().map(|ip| Record::from_rdata(owner.clone(), ttl, RData::A(A(*ip)))));
        }
        if qtype == RecordType::AAAA || any {
            answer
                .answers
                .extend(data.v6.iter().map(|ip| Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(*ip)))));
        }
        // RFC 8482 minimal ANY: addresses when the name has them, else SRV.
        if qtype == RecordType::SRV || (any && answer.answers.is_empty()) {
            let mut seen_targets: Vec<&str> = Vec::new();
            for s in data.srv.iter() {
                let Some(target) = under(&s.target, apex) else { continue };
                answer.answers.push(Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::SRV(SRV::new(s.priority, s.weight, s.port, target.clone())),
                ));
                if seen_targets.contains(&&*s.target) {
                    continue;
                }
                seen_targets.push(&s.target);
                if let Some(t) = index.lookup(&s.target) {
                    answer
                        .additional
                        .extend(t.v4.iter().map(|ip| Record::from_rdata(target.clone(), ttl, RData::A(A(*ip)))));
                    answer
                        .additional
                        .extend(t.v6.iter().map(|ip| Record::from_rdata(target.clone(), ttl, RData::AAAA(AAAA(*ip)))));
                }
            }
        }
    }

    fn reverse_answer(&self, apex: &Name, net: IpNet, qname: &Name, qtype: RecordType) -> Answer {
        // The cluster's own names first; an address only a ServiceImport has gets the multicluster
        // name (the multicluster DNS specification asks PTR only where no cluster-local one exists).
        let mc_zone = self.apexes.iter().find(|a| a.multicluster).map(|a| &a.name);
        let claims =
            ip_of_ptr_name(qname).filter(|ip| net.contains(ip)).and_then(|ip| match (self.index.ptr(&ip), mc_zone) {
                (Some(t), _) => Some((t, &self.primary)),
                (None, Some(zone)) => self.multicluster.ptr(&ip).map(|t| (t, zone)),
                (None, None) => None,
            });
        if let Some((targets, zone)) = claims {
            if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
                return self.negative(apex, ResponseCode::NoError);
            }
            return self.positive(self.ptr_records_in(qname, &targets, zone));
        }
        // A shorter reverse name above known addresses is an empty non-terminal.
        if let Some(sub) = net_of_reverse_zone(qname)
            && (self.index.has_addresses_under(&sub) || self.multicluster.has_addresses_under(&sub))
        {
            return self.negative(apex, ResponseCode::NoError);
        }
        self.negative(apex, ResponseCode::NXDomain)
    }

    fn positive(&self, answers: Vec<Record>) -> Answer {
        Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    /// NXDOMAIN for the forward `key`. A name a StatefulSet expects (its pod missing, Pending, not
    /// Ready or terminating) carries `expected-negative-ttl` as both the SOA's TTL and MINIMUM
    /// (RFC 2308 sections 3 and 5: the negative is cached for their minimum), so that resolvers
    /// ask again and see the pod the moment it is Ready; every other name keeps `soa-minimum`.
    fn nxdomain(&self, apex: &Name, key: &str) -> Answer {
        let mut answer = self.negative(apex, ResponseCode::NXDomain);
        if self.index.is_expected(key) {
            crate::metrics::count_expected_negative();
            let ttl = self.settings.ttls.expected_negative;
            for soa in &mut answer.authority {
                soa.ttl = ttl;
                if let RData::SOA(data) = &mut soa.data {
                    data.minimum = ttl;
                }
            }
        }
        answer
    }

    /// NXDOMAIN or NODATA: empty answer, the SOA in the authority section (RFC 2308 section 3).
    fn negative(&self, apex: &Name, rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            authoritative: true,
            answers: Vec::new(),
            authority: vec![self.negative_soa(apex)],
            additional: Vec::new(),
        }
    }
}

/// `rel` (zone-relative) as an absolute name under `apex`. The index's keys are plain labels, so
/// the name is read from the wire form they spell (2.3x faster than parsing the text, which a
/// zone transfer does for every owner and SRV target); text with an escape or an empty or
/// over-long label goes through the text parser, which judges it.
fn under(rel: &str, apex: &Name) -> Option<Name> {
    if rel.contains('\\') || rel.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Name::from_ascii(rel).ok()?.append_domain(apex).ok();
    }
    let mut wire = Vec::with_capacity(rel.len() + 2 + apex.len());
    for label in rel.split('.').map(str::as_bytes).chain(apex.iter()) {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    Name::read(&mut BinDecoder::new(&wire)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Owner, PtrEntry, Published, SrvData};
    use crate::model::ObjectKey;

    fn data(v4: &[&str]) -> NameData {
        NameData { v4: v4.iter().map(|s| s.parse().unwrap()).collect(), ..Default::default() }
    }

    fn settings(pods: PodsMode, ptr: PtrMode) -> ZoneSettings {
        ZoneSettings {
            zones: vec![
                ZoneSpec::Forward(Name::from_ascii("cluster.local.").unwrap()),
                ZoneSpec::Forward(Name::from_ascii("example.org.").unwrap()),
                ZoneSpec::Reverse {
                    apex: Name::from_ascii("10.in-addr.arpa.").unwrap(),
                    net: "10.0.0.0/8".parse().unwrap(),
                },
            ],
            ttls: Ttls { record: 5, soa: 30, soa_minimum: 2, expected_negative: 0 },
            pods,
            ptr,
            namespaces: vec![],
            zonal: false,
            multicluster: vec![],
            transfer: Default::default(),
            keys: Default::default(),
        }
    }

    fn zones(pods: PodsMode, ptr: PtrMode) -> Zones {
        let index = Arc::new(Index::new());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut nginx = data(&["10.0.0.1", "10.0.0.2"]);
        nginx.srv =
            vec![SrvData { priority: 0, weight: 100, port: 80, target: "web-0.nginx.default.svc".into() }].into();
        index.publish(
            &Owner::Service(ObjectKey::new("default", "nginx")),
            Published {
                names: vec![
                    ("nginx.default.svc".into(), nginx),
                    ("web-0.nginx.default.svc".into(), data(&["10.0.0.1"])),
                    ("_tcp.nginx.default.svc".into(), NameData::default()),
                ],
                ptrs: vec![PtrEntry { ip, rank: 0, name: "web-0.nginx.default.svc".into() }],
            },
        );
        index.publish(
            &Owner::Service(ObjectKey::new("default", "api")),
            Published {
                names: vec![("api.default.svc".into(), data(&["10.0.0.1"]))],
                ptrs: vec![PtrEntry { ip, rank: 2, name: "api.default.svc".into() }],
            },
        );
        let cname =
            |target: &str| NameData { cname: Some(Box::new(Name::from_ascii(target).unwrap())), ..Default::default() };
        index.publish(
            &Owner::Service(ObjectKey::new("default", "ext")),
            Published { names: vec![("ext.default.svc".into(), cname("example.com."))], ptrs: vec![] },
        );
        index.publish(
            &Owner::Service(ObjectKey::new("default", "alias")),
            Published {
                names: vec![("alias.default.svc".into(), cname("nginx.default.svc.cluster.local."))],
                ptrs: vec![],
            },
        );
        index.set_namespace_exposed("default", true);
        index.set_synced(true);
        Zones::new(index, settings(pods, ptr))
    }

    /// One line per record, in zone-file form, after the rcode and AA: how the cases read.
    fn ask(z: &Zones, name: &str, qtype: RecordType) -> Vec<String> {
        let a = z.answer(&Name::from_ascii(name).unwrap(), qtype, DNSClass::IN);
        let mut out = vec![format!("{:?} aa={}", a.rcode, a.authoritative)];
        let line = |r: &Record| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data);
        out.extend(a.answers.iter().map(line));
        out.extend(a.authority.iter().map(|r| format!("AUTH {} {} {}", r.name, r.ttl, r.record_type())));
        out.extend(a.additional.iter().map(|r| format!("ADD {}", line(r))));
        out
    }

    #[test]
    fn names_under_an_apex_read_from_wire_equal_the_parsed_ones() {
        let apex = Name::from_ascii("Cluster.Local.").unwrap();
        let long = "a".repeat(63);
        for rel in ["web-0.nginx.default.svc", "Web-0.NGINX.default.svc", "_web._tcp.x.y.svc", "svc", long.as_str()] {
            let parsed = Name::from_ascii(rel).unwrap().append_domain(&apex).unwrap();
            let read = under(rel, &apex).unwrap();
            assert_eq!(read.to_string(), parsed.to_string(), "{rel}");
            assert!(read.is_fqdn());
        }
        // What the text parser judges: escapes, empty and over-long labels, over-long names.
        assert_eq!(under("a\\.b.svc", &apex).unwrap().num_labels(), 4);
        assert!(under("a..b", &apex).is_none());
        assert!(under(&"a".repeat(64), &apex).is_none());
        let too_long = [long.as_str(); 4].join(".");
        assert!(under(&too_long, &apex).is_none(), "over 255 octets");
    }

    #[test]
    fn answer_rules_as_zone_text() {
        let z = zones(PodsMode::Disabled, PtrMode::First);
        // RFC 2308 section 3: a negative answer's SOA carries min(SOA TTL 30, MINIMUM 2).
        let nx = |zone: &str| vec!["NXDomain aa=true".to_string(), format!("AUTH {zone} 2 SOA")];
        let nodata = |zone: &str| vec!["NoError aa=true".to_string(), format!("AUTH {zone} 2 SOA")];
        let cases: Vec<(&str, RecordType, Vec<String>)> = vec![
            ("web-0.nginx.default.svc.cluster.local.", RecordType::A, vec!["NoError aa=true".into(), "web-0.nginx.default.svc.cluster.local. 5 IN A 10.0.0.1".into()]),
            ("Web-0.NGINX.default.svc.example.org.", RecordType::A, vec!["NoError aa=true".into(), "Web-0.NGINX.default.svc.example.org. 5 IN A 10.0.0.1".into()]),
            ("nginx.default.svc.cluster.local.", RecordType::A, vec!["NoError aa=true".into(), "nginx.default.svc.cluster.local. 5 IN A 10.0.0.1".into(), "nginx.default.svc.cluster.local. 5 IN A 10.0.0.2".into()]),
            ("nginx.default.svc.cluster.local.", RecordType::SRV, vec!["NoError aa=true".into(), "nginx.default.svc.cluster.local. 5 IN SRV 0 100 80 web-0.nginx.default.svc.cluster.local.".into(), "ADD web-0.nginx.default.svc.cluster.local. 5 IN A 10.0.0.1".into()]),
            ("web-0.nginx.default.svc.cluster.local.", RecordType::AAAA, nodata("cluster.local.")),
            ("_tcp.nginx.default.svc.cluster.local.", RecordType::SRV, nodata("cluster.local.")),
            ("_udp.nginx.default.svc.cluster.local.", RecordType::SRV, nx("cluster.local.")),
            ("web-9.nginx.default.svc.cluster.local.", RecordType::A, nx("cluster.local.")),
            ("default.svc.cluster.local.", RecordType::A, nodata("cluster.local.")),
            ("svc.example.org.", RecordType::A, nodata("example.org.")),
            ("other.svc.cluster.local.", RecordType::A, nx("cluster.local.")),
            ("cluster.local.", RecordType::NS, vec!["NoError aa=true".into(), "cluster.local. 5 IN NS ns.dns.cluster.local.".into()]),
            ("cluster.local.", RecordType::A, nodata("cluster.local.")),
            ("dns-version.cluster.local.", RecordType::TXT, vec!["NoError aa=true".into(), "dns-version.cluster.local. 5 IN TXT 1.1.0".into()]),
            ("dns-version.cluster.local.", RecordType::A, nodata("cluster.local.")),
            ("example.com.", RecordType::A, vec!["Refused aa=false".into()]),
            (".", RecordType::NS, vec!["Refused aa=false".into()]),
            ("cluster.local.", RecordType::AXFR, vec!["Refused aa=false".into()]),
            ("ext.default.svc.cluster.local.", RecordType::A, vec!["NoError aa=true".into(), "ext.default.svc.cluster.local. 5 IN CNAME example.com.".into()]),
            ("alias.default.svc.cluster.local.", RecordType::A, vec!["NoError aa=true".into(), "alias.default.svc.cluster.local. 5 IN CNAME nginx.default.svc.cluster.local.".into(), "nginx.default.svc.cluster.local. 5 IN A 10.0.0.1".into(), "nginx.default.svc.cluster.local. 5 IN A 10.0.0.2".into()]),
            ("1.0.0.10.in-addr.arpa.", RecordType::PTR, vec!["NoError aa=true".into(), "1.0.0.10.in-addr.arpa. 5 IN PTR web-0.nginx.default.svc.cluster.local.".into()]),
            ("0.0.10.in-addr.arpa.", RecordType::PTR, nodata("10.in-addr.arpa.")),
            ("9.0.0.10.in-addr.arpa.", RecordType::PTR, nx("10.in-addr.arpa.")),
            ("10.in-addr.arpa.", RecordType::SOA, vec!["NoError aa=true".into(), "10.in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 2".into()]),
            ("1.0.0.11.in-addr.arpa.", RecordType::PTR, vec!["Refused aa=false".into()]),
            ("10-0-0-1.default.pod.cluster.local.", RecordType::A, nx("cluster.local.")),
        ];
        let serial = z.index().serial().to_string();
        for (name, qtype, want) in cases {
            let want: Vec<String> = want.into_iter().map(|l| l.replace("SERIAL", &serial)).collect();
            assert_eq!(ask(&z, name, qtype), want, "{name} {qtype}");
        }
    }

    #[test]
    fn ptr_all_lists_every_name() {
        let z = zones(PodsMode::Disabled, PtrMode::All);
        assert_eq!(
            ask(&z, "1.0.0.10.in-addr.arpa.", RecordType::PTR),
            [
                "NoError aa=true",
                "1.0.0.10.in-addr.arpa. 5 IN PTR web-0.nginx.default.svc.cluster.local.",
                "1.0.0.10.in-addr.arpa. 5 IN PTR api.default.svc.cluster.local.",
            ]
        );
    }

    #[test]
    fn insecure_pod_records() {
        let z = zones(PodsMode::Insecure, PtrMode::First);
        assert_eq!(
            ask(&z, "10-244-1-5.default.pod.cluster.local.", RecordType::A),
            ["NoError aa=true", "10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"]
        );
        assert_eq!(
            ask(&z, "fd00--5.default.pod.cluster.local.", RecordType::AAAA),
            ["NoError aa=true", "fd00--5.default.pod.cluster.local. 5 IN AAAA fd00::5"]
        );
        assert_eq!(ask(&z, "fd00--5.default.pod.cluster.local.", RecordType::A)[0], "NoError aa=true");
        assert_eq!(ask(&z, "default.pod.cluster.local.", RecordType::A)[0], "NoError aa=true");
        assert_eq!(ask(&z, "pod.cluster.local.", RecordType::A)[0], "NoError aa=true");
        assert_eq!(ask(&z, "web.default.pod.cluster.local.", RecordType::A)[0], "NXDomain aa=true");
    }

    #[test]
    fn servfail_before_first_sync_and_chaos_refused() {
        let z = Zones::new(Arc::new(Index::new()), settings(PodsMode::Disabled, PtrMode::First));
        let name = Name::from_ascii("web-0.nginx.default.svc.cluster.local.").unwrap();
        assert_eq!(z.answer(&name, RecordType::A, DNSClass::IN).rcode, ResponseCode::ServFail);
        let vb = Name::from_ascii("version.bind.").unwrap();
        assert_eq!(z.answer(&vb, RecordType::TXT, DNSClass::CH).rcode, ResponseCode::Refused);
    }

    #[test]
    fn names_a_statefulset_expects_get_the_short_negative_ttl() {
        let mut z = zones(PodsMode::Disabled, PtrMode::First);
        let mut settings = z.settings.clone();
        settings.ttls.expected_negative = 0;
        z = Zones::new(z.index().clone(), settings);
        z.index().set_expected("default", "web", Some(("nginx.default.svc".into(), 0..2)));
        let soa = |name: &str, qtype: RecordType| {
            let a = z.answer(&Name::from_ascii(name).unwrap(), qtype, DNSClass::IN);
            let RData::SOA(soa) = &a.authority[0].data else { panic!("{name}: {a:?}") };
            (a.rcode, a.authority[0].ttl, soa.minimum)
        };
        // web-1: expected, not served: both the SOA's TTL and MINIMUM at expected-negative-ttl.
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
            assert_eq!(soa("web-1.nginx.default.svc.cluster.local.", qtype), (ResponseCode::NXDomain, 0, 0), "{qtype}");
        }
        // Beyond the replicas, other names, and a served expected name's NODATA keep soa-minimum.
        assert_eq!(soa("web-2.nginx.default.svc.cluster.local.", RecordType::A), (ResponseCode::NXDomain, 2, 2));
        assert_eq!(soa("api-1.nginx.default.svc.cluster.local.", RecordType::A), (ResponseCode::NXDomain, 2, 2));
        assert_eq!(soa("web-0.nginx.default.svc.cluster.local.", RecordType::AAAA), (ResponseCode::NoError, 2, 2));
    }
}
