//! The zone logic: what the authoritative answer to one question is, read from the [`Index`]
//! only. Pure: no sockets, so every rule is table-tested.
//!
//! Entry point: [`Zone::answer`].

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::index::{Index, name_key};

/// SOA timers, as CoreDNS's `kubernetes` plugin sets them (refresh 2h, retry 30m, expire 24h).
const SOA_REFRESH: i32 = 7200;
const SOA_RETRY: i32 = 1800;
const SOA_EXPIRE: i32 = 86400;

/// The answer to one question, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response code.
    pub rcode: ResponseCode,
    /// The AA bit: set on every answer from inside the zone (RFC 1035 section 4.1.1).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (the SOA on negative answers, RFC 2308 section 3).
    pub authority: Vec<Record>,
}

impl Answer {
    fn error(rcode: ResponseCode) -> Self {
        Self { rcode, authoritative: false, answers: Vec::new(), authority: Vec::new() }
    }
}

/// One authoritative zone served from an [`Index`].
#[derive(Debug, Clone)]
pub struct Zone {
    index: Arc<Index>,
    apex: Name,
    ns_name: Name,
    hostmaster: Name,
    ttl: u32,
}

impl Zone {
    /// A zone over `index`, answering with `ttl`.
    pub fn new(index: Arc<Index>, ttl: u32) -> Self {
        let apex = index.zone().clone();
        let ns_name = Name::from_ascii("ns.dns").expect("valid").append_domain(&apex).expect("short");
        let hostmaster = Name::from_ascii("hostmaster").expect("valid").append_domain(&apex).expect("short");
        Self { index, apex, ns_name, hostmaster, ttl }
    }

    /// The index answered from.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The SOA record of the zone, with the current serial; its minimum is the TTL, which bounds
    /// negative caching (RFC 2308 section 5).
    pub fn soa(&self) -> Record {
        let soa = SOA::new(
            self.ns_name.clone(),
            self.hostmaster.clone(),
            self.index.serial(),
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            self.ttl,
        );
        Record::from_rdata(self.apex.clone(), self.ttl, RData::SOA(soa))
    }

    /// Answers one question. `qname` keeps the client's case: answer records are owned by it
    /// exactly as asked.
    pub fn answer(&self, qname: &Name, qtype: RecordType, qclass: DNSClass) -> Answer {
        // Only class IN is served; CHAOS `version.bind` and friends are refused.
        if qclass != DNSClass::IN && qclass != DNSClass::ANY {
            return Answer::error(ResponseCode::Refused);
        }
        // Outside the zone (including `. NS`, CoreDNS forward's health probe): not ours.
        if !self.apex.zone_of(qname) {
            return Answer::error(ResponseCode::Refused);
        }
        // Before the first full list we do not know what does not exist: SERVFAIL, as CoreDNS does,
        // never a premature NXDOMAIN that resolvers would cache.
        if !self.index.is_synced() {
            return Answer::error(ResponseCode::ServFail);
        }
        // Zone transfers are not offered.
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Answer::error(ResponseCode::Refused);
        }
        let mut qname_fqdn = qname.clone();
        qname_fqdn.set_fqdn(true);
        let key = name_key(&qname_fqdn);
        if key == self.index.zone_key() {
            return self.apex_answer(&qname_fqdn, qtype);
        }
        match self.index.lookup(&key) {
            None => self.negative(ResponseCode::NXDomain),
            Some(data) => {
                let mut answers = Vec::new();
                if let Some(target) = &data.cname {
                    // RFC 1034 section 3.6.2: a CNAME answers every type at its owner. The target
                    // is outside the zone for ExternalName services, so it is not chased here.
                    answers.push(Record::from_rdata(qname_fqdn.clone(), self.ttl, RData::CNAME(CNAME(target.clone()))));
                    return self.positive(answers);
                }
                let want_a = matches!(qtype, RecordType::A | RecordType::ANY);
                let want_aaaa = matches!(qtype, RecordType::AAAA | RecordType::ANY);
                if want_a {
                    answers.extend(
                        data.v4.iter().map(|ip| Record::from_rdata(qname_fqdn.clone(), self.ttl, RData::A(A(*ip)))),
                    );
                }
                if want_aaaa {
                    answers.extend(
                        data.v6
                            .iter()
                            .map(|ip| Record::from_rdata(qname_fqdn.clone(), self.ttl, RData::AAAA(AAAA(*ip)))),
                    );
                }
                if answers.is_empty() {
                    // The name exists but not with this type (or is an empty non-terminal):
                    // NODATA, RFC 2308 section 2.2.
                    self.negative(ResponseCode::NoError)
                } else {
                    self.positive(answers)
                }
            }
        }
    }

    fn apex_answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        match qtype {
            // RFC 8482: ANY gets one RRset; the SOA is the obvious one at an apex.
            RecordType::SOA | RecordType::ANY => {
                let mut soa = self.soa();
                soa.name = qname.clone();
                self.positive(vec![soa])
            }
            RecordType::NS => {
                self.positive(vec![Record::from_rdata(qname.clone(), self.ttl, RData::NS(NS(self.ns_name.clone())))])
            }
            _ => self.negative(ResponseCode::NoError),
        }
    }

    fn positive(&self, answers: Vec<Record>) -> Answer {
        Answer { rcode: ResponseCode::NoError, authoritative: true, answers, authority: Vec::new() }
    }

    /// NXDOMAIN or NODATA: empty answer, the SOA in the authority section (RFC 2308 section 3).
    fn negative(&self, rcode: ResponseCode) -> Answer {
        Answer { rcode, authoritative: true, answers: Vec::new(), authority: vec![self.soa()] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::NameData;
    use crate::model::ObjectKey;

    fn zone() -> Zone {
        let index = Arc::new(Index::new(Name::from_ascii("cluster.local.").unwrap()));
        index.publish(
            &ObjectKey::new("default", "nginx"),
            vec![
                (
                    "nginx.default.svc.cluster.local.".into(),
                    NameData {
                        v4: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
                        ..Default::default()
                    },
                ),
                (
                    "web-0.nginx.default.svc.cluster.local.".into(),
                    NameData { v4: vec!["10.0.0.1".parse().unwrap()], ..Default::default() },
                ),
            ],
        );
        index.publish(
            &ObjectKey::new("default", "ext"),
            vec![(
                "ext.default.svc.cluster.local.".into(),
                NameData { cname: Some(Name::from_ascii("example.com.").unwrap()), ..Default::default() },
            )],
        );
        index.set_synced(true);
        Zone::new(index, 5)
    }

    /// One line per record, in zone-file form, then the rcode and AA: how the cases read.
    fn ask(z: &Zone, name: &str, qtype: RecordType) -> Vec<String> {
        let a = z.answer(&Name::from_ascii(name).unwrap(), qtype, DNSClass::IN);
        let mut out = vec![format!("{:?} aa={}", a.rcode, a.authoritative)];
        out.extend(a.answers.iter().map(|r| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data)));
        out.extend(a.authority.iter().map(|r| format!("AUTH {} {}", r.name, r.record_type())));
        out
    }

    #[test]
    fn answer_rules_as_zone_text() {
        let z = zone();
        let cases: &[(&str, RecordType, &[&str])] = &[
            (
                "web-0.nginx.default.svc.cluster.local.",
                RecordType::A,
                &["NoError aa=true", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
            (
                "Web-0.NGINX.default.svc.cluster.local.",
                RecordType::A,
                &["NoError aa=true", "Web-0.NGINX.default.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
            (
                "nginx.default.svc.cluster.local.",
                RecordType::A,
                &[
                    "NoError aa=true",
                    "nginx.default.svc.cluster.local. 5 IN A 10.0.0.1",
                    "nginx.default.svc.cluster.local. 5 IN A 10.0.0.2",
                ],
            ),
            (
                "web-0.nginx.default.svc.cluster.local.",
                RecordType::AAAA,
                &["NoError aa=true", "AUTH cluster.local. SOA"],
            ),
            ("web-9.nginx.default.svc.cluster.local.", RecordType::A, &["NXDomain aa=true", "AUTH cluster.local. SOA"]),
            ("default.svc.cluster.local.", RecordType::A, &["NoError aa=true", "AUTH cluster.local. SOA"]),
            ("svc.cluster.local.", RecordType::A, &["NoError aa=true", "AUTH cluster.local. SOA"]),
            ("other.svc.cluster.local.", RecordType::A, &["NXDomain aa=true", "AUTH cluster.local. SOA"]),
            ("cluster.local.", RecordType::NS, &["NoError aa=true", "cluster.local. 5 IN NS ns.dns.cluster.local."]),
            ("cluster.local.", RecordType::A, &["NoError aa=true", "AUTH cluster.local. SOA"]),
            ("example.com.", RecordType::A, &["Refused aa=false"]),
            (".", RecordType::NS, &["Refused aa=false"]),
            ("cluster.local.", RecordType::AXFR, &["Refused aa=false"]),
            (
                "ext.default.svc.cluster.local.",
                RecordType::A,
                &["NoError aa=true", "ext.default.svc.cluster.local. 5 IN CNAME example.com."],
            ),
        ];
        for (name, qtype, want) in cases {
            assert_eq!(ask(&z, name, *qtype), *want, "{name} {qtype}");
        }
    }

    #[test]
    fn soa_minimum_is_the_ttl_and_serial_is_the_index_serial() {
        let z = zone();
        let soa = z.soa();
        let RData::SOA(s) = &soa.data else { panic!("not a SOA") };
        assert_eq!(s.minimum, 5);
        assert_eq!(s.serial, z.index().serial());
    }

    #[test]
    fn servfail_before_first_sync_and_chaos_refused() {
        let index = Arc::new(Index::new(Name::from_ascii("cluster.local.").unwrap()));
        let z = Zone::new(index, 5);
        let name = Name::from_ascii("web-0.nginx.default.svc.cluster.local.").unwrap();
        assert_eq!(z.answer(&name, RecordType::A, DNSClass::IN).rcode, ResponseCode::ServFail);
        let vb = Name::from_ascii("version.bind.").unwrap();
        assert_eq!(z.answer(&vb, RecordType::TXT, DNSClass::CH).rcode, ResponseCode::Refused);
    }
}
