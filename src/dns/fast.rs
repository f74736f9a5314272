//! The lean UDP answer path for the common queries: a standard query with one IN question for A
//! or AAAA under a forward zone, with or without an EDNS(0) OPT (DO bit copied) that holds at most
//! a well-formed COOKIE option (echoed with a server cookie, [`super::cookie`]): what stub
//! resolvers, dig and forwarding resolvers such as BIND send. It parses only the header, the
//! question and the OPT, looks the lower-cased name up in the index and writes the reply straight
//! into the output buffer: no allocation beyond the index lookup.
//!
//! Everything else (other types, pod and apex names, CNAMEs, reverse zones, EDNS options we would
//! have to reason about, replies that need truncation, malformed input) returns
//! [`Fast::Fallback`] and goes to [`super::general`]. The bytes written are identical to what the
//! general path produces for the same query, name compression included; a test proves it.
//!
//! Entry point: [`answer`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::answer::Zones;
use super::cookie;
use super::general::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};

/// SOA timers, as the general path sets them.
const SOA_TIMERS: [u32; 3] = [7200, 1800, 86400];
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SOA: u16 = 6;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// The outcome of the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// The reply is in the output buffer.
    Answered {
        /// Its response code.
        rcode: ResponseCode,
        /// The question's type.
        qtype: RecordType,
    },
    /// Not a query this path handles: use the general path.
    Fallback,
}

/// The parts of a request the fast path needs.
struct Parsed<'a> {
    id: [u8; 2],
    rd: bool,
    cd: bool,
    /// The whole question: name, type and class, as the client sent it.
    question: &'a [u8],
    /// Length of the question's name in wire form.
    name_len: usize,
    qtype: u16,
    /// The client's EDNS payload size, when it sent a plain OPT.
    edns: Option<u16>,
    /// The OPT's DO bit (RFC 3225), copied into the reply's OPT.
    dnssec_ok: bool,
    /// The client cookie of the OPT's COOKIE option (RFC 7873), if it had one.
    cookie: Option<[u8; 8]>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parses header, question and optional OPT; `None` for anything unusual.
fn parse<'a>(raw: &'a [u8], labels: &mut [u16; 128], n_labels: &mut usize) -> Option<Parsed<'a>> {
    if raw.len() < 12 {
        return None;
    }
    let (b2, b3) = (raw[2], raw[3]);
    // QR=0, opcode QUERY, TC=0; Z and AD ignored as hickory does.
    if b2 & 0x80 != 0 || (b2 >> 3) & 0x0f != 0 || b2 & 0x02 != 0 {
        return None;
    }
    let (qd, an, ns, ar) = (u16_at(raw, 4)?, u16_at(raw, 6)?, u16_at(raw, 8)?, u16_at(raw, 10)?);
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut i = 12;
    *n_labels = 0;
    loop {
        let len = *raw.get(i)? as usize;
        if len == 0 {
            i += 1;
            break;
        }
        // Compression pointers and extended label types never appear in a sane question.
        if len > 63 || *n_labels == labels.len() {
            return None;
        }
        labels[*n_labels] = (i + 1) as u16;
        *n_labels += 1;
        i += 1 + len;
        // RFC 1035 section 3.1: at most 255 octets, the root octet included.
        if i - 12 >= 255 {
            return None;
        }
    }
    let name_len = i - 12;
    let qtype = u16_at(raw, i)?;
    if u16_at(raw, i + 2)? != CLASS_IN {
        return None;
    }
    let q_end = i + 4;
    let question = &raw[12..q_end];
    let mut dnssec_ok = false;
    let mut cookie = None;
    let edns = if ar == 1 {
        // RFC 6891 section 6.1.2: root owner, type OPT, class = payload size, TTL = ext-rcode,
        // version, flags; then the options. Only version 0 with no option or one well-formed
        // COOKIE is ours: other options (a malformed Client Subnet, a malformed cookie, say) are
        // the general path's to judge.
        let p = q_end;
        if *raw.get(p)? != 0 || u16_at(raw, p + 1)? != TYPE_OPT {
            return None;
        }
        let payload = u16_at(raw, p + 3)?;
        let version = *raw.get(p + 6)?;
        let rdlen = u16_at(raw, p + 9)? as usize;
        if version != 0 || p + 11 + rdlen != raw.len() {
            return None;
        }
        if rdlen > 0 {
            // One option: code, length, data filling the OPT's RDATA.
            let (code, len) = (u16_at(raw, p + 11)?, u16_at(raw, p + 13)? as usize);
            if code != cookie::OPTION_CODE || 4 + len != rdlen {
                return None;
            }
            cookie = Some(cookie::client_cookie(&raw[p + 15..]).ok()?);
        }
        dnssec_ok = *raw.get(p + 7)? & 0x80 != 0;
        Some(payload)
    } else {
        if q_end != raw.len() {
            return None;
        }
        None
    };
    Some(Parsed {
        id: [raw[0], raw[1]],
        rd: b2 & 0x01 != 0,
        cd: b3 & 0x10 != 0,
        question,
        name_len,
        qtype,
        edns,
        dnssec_ok,
        cookie,
    })
}

/// Answers `raw`, sent from `client`, into `out` (cleared first) when it is a query this path
/// handles.
pub fn answer(zones: &Zones, raw: &[u8], client: IpAddr, out: &mut Vec<u8>) -> Fast {
    // Where each label's octets start (its length is the octet before): the question ends by
    // offset 267, and 127 labels is the most 255 octets hold (RFC 1035 section 3.1).
    let mut labels = [0u16; 128];
    let mut n = 0usize;
    let Some(q) = parse(raw, &mut labels, &mut n) else {
        return Fast::Fallback;
    };
    let qtype = match q.qtype {
        TYPE_A => RecordType::A,
        TYPE_AAAA => RecordType::AAAA,
        _ => return Fast::Fallback,
    };
    let index = zones.index();
    if !index.is_synced() {
        return Fast::Fallback;
    }
    // The most specific zone whose labels end the question's.
    let label = |k: usize| {
        let at = usize::from(labels[k]);
        &raw[at..at + usize::from(raw[at - 1])]
    };
    let Some(apex) = zones.wire_apexes().iter().find(|a| {
        a.labels.len() <= n
            && a.labels.iter().rev().zip((0..n).rev()).all(|(z, k)| z.as_slice().eq_ignore_ascii_case(label(k)))
    }) else {
        return Fast::Fallback;
    };
    let rel = n - apex.labels.len();
    if !apex.forward || rel == 0 {
        return Fast::Fallback;
    }
    // The zone-relative key, lower-cased, in a stack buffer: the question's octets from its first
    // label to the end of its last one before the apex, in one pass, then a dot in place of each
    // length octet between them.
    let mut key_buf = [0u8; 256];
    let (start, end) = (usize::from(labels[0]), usize::from(labels[rel - 1]) + label(rel - 1).len());
    let k = end - start;
    for (to, &b) in key_buf[..k].iter_mut().zip(&raw[start..end]) {
        // A dot inside a label can never match a published key; keep it distinct.
        *to = if b == b'.' { 0 } else { b.to_ascii_lowercase() };
    }
    for &at in &labels[1..rel] {
        key_buf[usize::from(at) - 1 - start] = b'.';
    }
    let Ok(key) = std::str::from_utf8(&key_buf[..k]) else {
        return Fast::Fallback;
    };
    let last = &key_buf[k - label(rel - 1).len()..k];
    // Pod names are answered by rules, not only by the index: the general path's.
    if key == "dns-version" || last == b"pod" {
        return Fast::Fallback;
    }
    let ttls = zones.ttls();
    // The name's data is read in place (no copy, no reference count written) while the reply is
    // written; `None` from the closure is a fallback.
    let rcode = index.with_name(key, |data| {
        // A zone-pinned name the index does not hold is answered by a rule (`Zones::resolve_zonal`).
        if data.is_none() && zones.zonal() && (key.starts_with("_zone.") || key.contains("._zone.")) {
            return None;
        }
        if data.is_some_and(|d| d.is_cname()) {
            return None;
        }
        let limit = q.edns.map_or(MIN_UDP_PAYLOAD, |p| p.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)) as usize;

        out.clear();
        let header_at = |out: &mut Vec<u8>, rcode: ResponseCode, an: u16, ns: u16| {
            out.extend_from_slice(&q.id);
            // QR | opcode 0 | AA | RD as asked; RA 0, AD 0, CD as asked (hickory's
            // `Metadata::response_from_request`).
            out.push(0x80 | 0x04 | u8::from(q.rd));
            out.push((if q.cd { 0x10 } else { 0 }) | rcode.low());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&an.to_be_bytes());
            out.extend_from_slice(&ns.to_be_bytes());
            out.extend_from_slice(&u16::from(q.edns.is_some()).to_be_bytes());
            out.extend_from_slice(q.question);
        };
        let rcode = match data {
            Some(d)
                if (qtype == RecordType::A && !d.v4().is_empty())
                    || (qtype == RecordType::AAAA && !d.v6().is_empty()) =>
            {
                let count = if qtype == RecordType::A { d.v4().len() } else { d.v6().len() };
                let rdlen = if qtype == RecordType::A { 4 } else { 16 };
                let size = 12 + q.question.len() + count * (2 + 10 + rdlen) + edns_len(&q);
                if size > limit || count > u16::MAX as usize {
                    return None; // the general path truncates
                }
                out.reserve(size);
                header_at(out, ResponseCode::NoError, count as u16, 0);
                // Every owner is the question's name as sent: a pointer to it (RFC 1035 section
                // 4.1.4), at offset 12.
                if qtype == RecordType::A {
                    write_records::<_, 4, 16>(out, TYPE_A, ttls.record, d.v4(), Ipv4Addr::octets);
                } else {
                    write_records::<_, 16, 28>(out, TYPE_AAAA, ttls.record, d.v6(), Ipv6Addr::octets);
                }
                ResponseCode::NoError
            }
            // NODATA (the name exists) or NXDOMAIN, with the SOA (RFC 2308 section 3).
            other => {
                let rcode = if other.is_some() { ResponseCode::NoError } else { ResponseCode::NXDomain };
                // A name a StatefulSet expects: SOA TTL and MINIMUM at `expected-negative-ttl`, as
                // the general path sets them (`Zones::nxdomain`).
                let (soa_ttl, minimum) = if other.is_none() && index.is_expected(key) {
                    crate::metrics::count_expected_negative();
                    (ttls.expected_negative, ttls.expected_negative)
                } else {
                    (ttls.negative_soa(), ttls.soa_minimum)
                };
                header_at(out, rcode, 0, 1);
                // The SOA's owner (the apex), mname ns.dns.<apex> and rname hostmaster.<apex>,
                // each compressed against the question and the names before it, as the general
                // path's encoder does.
                let apex_labels = &apex.wire[..apex.wire.len() - 1];
                // The question's apex part: its first length octet (its root octet for a root
                // apex, which configuration refuses).
                let apex_at = if rel < n { usize::from(labels[rel]) - 1 } else { 12 + q.name_len - 1 };
                let usual = n <= 60
                    && !apex_labels.is_empty()
                    && raw[apex_at..12 + q.name_len - 1] == *apex_labels
                    && label(rel - 1) != b"dns"
                    && label(rel - 1) != b"hostmaster";
                let rdata_at;
                if usual {
                    // The question ends in the apex as we write it (lower case), and not in the
                    // mname's or rname's own labels: all three names end in a pointer to it.
                    let pointer = (0xC000 | apex_at as u16).to_be_bytes();
                    out.extend_from_slice(&pointer);
                    // RFC 2308 section 3: the SOA's TTL is no longer than its minimum.
                    rr_head(out, TYPE_SOA, soa_ttl, 0);
                    rdata_at = out.len();
                    out.extend_from_slice(b"\x02ns\x03dns");
                    out.extend_from_slice(&pointer);
                    out.extend_from_slice(b"\x0ahostmaster");
                    out.extend_from_slice(&pointer);
                } else {
                    // Anything else (another case, a question ending in dns.<apex> or
                    // hostmaster.<apex>, a question of more labels than the encoder keeps
                    // suffixes for): the encoder's own search, mirrored.
                    let (mut mname, mut rname) = ([0u8; 262], [0u8; 262]);
                    let mname = prefixed(&mut mname, b"\x02ns\x03dns", apex_labels);
                    let rname = prefixed(&mut rname, b"\x0ahostmaster", apex_labels);
                    let mut written = Written::new();
                    let question = &q.question[..q.name_len - 1];
                    written.store_prefix(12, question, question.len());
                    written.emit(out, apex_labels);
                    rr_head(out, TYPE_SOA, soa_ttl, 0);
                    rdata_at = out.len();
                    written.emit(out, mname);
                    written.emit(out, rname);
                }
                out.extend_from_slice(&index.serial().to_be_bytes());
                for t in SOA_TIMERS {
                    out.extend_from_slice(&t.to_be_bytes());
                }
                out.extend_from_slice(&minimum.to_be_bytes());
                let rdlen = (out.len() - rdata_at) as u16;
                out[rdata_at - 2..rdata_at].copy_from_slice(&rdlen.to_be_bytes());
                if out.len() + edns_len(&q) > limit {
                    return None;
                }
                rcode
            }
        };
        Some(rcode)
    });
    let Some(rcode) = rcode else {
        return Fast::Fallback;
    };
    if let Some(payload) = q.edns {
        // OPT: root owner, our payload size, ext-rcode 0, version 0, the query's DO bit (RFC 3225
        // section 3: copied into the response) and no other flag; the COOKIE option when the
        // query had one (RFC 7873 section 5.2.3: the client cookie and a server cookie).
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&payload.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD).to_be_bytes());
        out.extend_from_slice(&[0, 0, if q.dnssec_ok { 0x80 } else { 0 }, 0]);
        match &q.cookie {
            None => out.extend_from_slice(&[0, 0]),
            Some(client_cookie) => {
                out.extend_from_slice(&(4 + cookie::REPLY_OPTION_LEN as u16).to_be_bytes());
                out.extend_from_slice(&cookie::OPTION_CODE.to_be_bytes());
                out.extend_from_slice(&(cookie::REPLY_OPTION_LEN as u16).to_be_bytes());
                out.extend_from_slice(&zones.cookies().reply_option(client_cookie, client));
            }
        }
    }
    Fast::Answered { rcode, qtype }
}

/// A name pointer to the question's name, which starts right after the 12-octet header.
const QUESTION_POINTER: [u8; 2] = [0xC0, 12];

/// Names written so far that a later name may point at: the same candidates, in the same order
/// and under the same bounds, as hickory-proto's encoder keeps (`BinEncoder::store_label_pointer`,
/// at most 64, only below offset 0x3FFF), so that the fast path compresses exactly as the
/// general path does. Each is a name's labels from one label on, in wire form without the root,
/// compared octet for octet (so case counts, as in hickory).
struct Written<'a> {
    at: [u16; 64],
    labels: [&'a [u8]; 64],
    len: usize,
}

impl<'a> Written<'a> {
    fn new() -> Self {
        Written { at: [0; 64], labels: [&[]; 64], len: 0 }
    }

    fn store(&mut self, at: usize, end: usize, suffix: &'a [u8]) {
        if end < 0x3FFF && self.len < self.at.len() {
            self.at[self.len] = at as u16;
            self.labels[self.len] = suffix;
            self.len += 1;
        }
    }

    /// Writes `name` (labels in wire form, no root) as hickory-proto's `Name::emit` does: the
    /// longest of its label suffixes already written becomes a pointer (RFC 1035 section 4.1.4)
    /// after the labels before it; with none, the whole name and the root label. The suffixes
    /// written in full are recorded for the names after.
    fn emit(&mut self, out: &mut Vec<u8>, name: &'a [u8]) {
        let at = out.len();
        let mut i = 0;
        while i < name.len() {
            if let Some(k) = (0..self.len).find(|&k| self.labels[k] == &name[i..]) {
                let target = self.at[k];
                out.extend_from_slice(&name[..i]);
                out.extend_from_slice(&(0xC000 | target).to_be_bytes());
                self.store_prefix(at, name, i);
                return;
            }
            i += 1 + name[i] as usize;
        }
        out.extend_from_slice(name);
        out.push(0);
        self.store_prefix(at, name, name.len());
    }

    /// Records the suffixes of `name` (labels in wire form, no root), written from `at`, that
    /// start before octet `upto`, longest first, as hickory records the labels it wrote in full.
    fn store_prefix(&mut self, at: usize, name: &'a [u8], upto: usize) {
        let mut i = 0;
        while i < upto {
            self.store(at + i, at + name.len(), &name[i..]);
            i += 1 + name[i] as usize;
        }
    }
}

/// `prefix` and then `labels`, in `buf`.
fn prefixed<'b>(buf: &'b mut [u8; 262], prefix: &[u8], labels: &[u8]) -> &'b [u8] {
    buf[..prefix.len()].copy_from_slice(prefix);
    buf[prefix.len()..prefix.len() + labels.len()].copy_from_slice(labels);
    &buf[..prefix.len() + labels.len()]
}

/// The length of the reply's OPT: 11 octets, and the COOKIE option's 4 + 24.
fn edns_len(q: &Parsed<'_>) -> usize {
    match (q.edns, q.cookie) {
        (None, _) => 0,
        (Some(_), None) => 11,
        (Some(_), Some(_)) => 11 + 4 + cookie::REPLY_OPTION_LEN,
    }
}

/// Appends one address record per address, each written as one block of `R` octets (`R` = 12 +
/// `N`): the owner, a pointer to the question's name (RFC 1035 section 4.1.4); type, class IN,
/// TTL and RDLENGTH `N`; then the address's `N` octets. The 12 octets before the address are the
/// same for every record, so they are made once.
fn write_records<T, const N: usize, const R: usize>(
    out: &mut Vec<u8>,
    rtype: u16,
    ttl: u32,
    ips: &[T],
    octets: impl Fn(&T) -> [u8; N],
) {
    const { assert!(R == 12 + N) };
    let mut block = [0u8; R];
    block[..2].copy_from_slice(&QUESTION_POINTER);
    block[2..12].copy_from_slice(&rr_head_octets(rtype, ttl, N as u16));
    for ip in ips {
        block[12..].copy_from_slice(&octets(ip));
        out.extend_from_slice(&block);
    }
}

/// Type, class IN, TTL and RDLENGTH of a record: the 10 octets between its owner and its RDATA.
fn rr_head_octets(rtype: u16, ttl: u32, rdlen: u16) -> [u8; 10] {
    let mut head = [0u8; 10];
    head[..2].copy_from_slice(&rtype.to_be_bytes());
    head[2..4].copy_from_slice(&CLASS_IN.to_be_bytes());
    head[4..8].copy_from_slice(&ttl.to_be_bytes());
    head[8..].copy_from_slice(&rdlen.to_be_bytes());
    head
}

/// Appends a record's type, class IN, TTL and RDLENGTH ([`rr_head_octets`]).
fn rr_head(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdlen: u16) {
    out.extend_from_slice(&rr_head_octets(rtype, ttl, rdlen));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::opt::EdnsOption;

    use super::*;
    use crate::dns::general::{Responder, Transport};
    use crate::dns::zone::{PodsMode, PtrMode, Ttls, ZoneSettings, ZoneSpec};
    use crate::index::{Index, NameData, Owner, Published};
    use crate::model::ObjectKey;

    fn zones() -> Zones {
        let index = Arc::new(Index::new());
        let ips = |n: u8| NameData { v4: (1..=n).map(|i| [10, 0, 0, i].into()).collect(), ..Default::default() };
        index.publish(
            &Owner::Service(ObjectKey::new("default", "nginx")),
            Published {
                names: vec![
                    ("nginx.default.svc".into(), ips(10)),
                    ("web-0.nginx.default.svc".into(), ips(1)),
                    ("big.nginx.default.svc".into(), ips(120)),
                    (
                        "v6.nginx.default.svc".into(),
                        NameData { v6: vec!["fd00::5".parse().unwrap()].into(), ..Default::default() },
                    ),
                    // Several records of each type: each written as one block on the fast path.
                    (
                        "dual.nginx.default.svc".into(),
                        NameData {
                            v4: ips(3).v4,
                            v6: ["fd00::1", "fd00::a:2", "2001:db8::3"].iter().map(|a| a.parse().unwrap()).collect(),
                            ..Default::default()
                        },
                    ),
                    (
                        "ext.nginx.default.svc".into(),
                        NameData {
                            cname: Some(Box::new(Name::from_ascii("example.com.").unwrap())),
                            ..Default::default()
                        },
                    ),
                ],
                ptrs: vec![],
            },
        );
        // web-0..web-2 expected under nginx; web-0 is served, web-1 and web-2 are not.
        // fit25 .. fit30: replies of 455 to 535 octets without EDNS, around the 512 bound.
        index.publish(
            &Owner::Service(ObjectKey::new("default", "fit")),
            Published {
                names: (25..=30).map(|k| (format!("fit{k}.nginx.default.svc").into(), ips(k))).collect(),
                ptrs: vec![],
            },
        );
        index.set_expected("default", "web", Some(("nginx.default.svc".into(), 0..3)));
        index.set_synced(true);
        Zones::new(
            index,
            ZoneSettings {
                zones: vec![
                    ZoneSpec::Forward(Name::from_ascii("cluster.local.").unwrap()),
                    ZoneSpec::Forward(Name::from_ascii("svc.example.").unwrap()),
                    ZoneSpec::Reverse {
                        apex: Name::from_ascii("10.in-addr.arpa.").unwrap(),
                        net: "10.0.0.0/8".parse().unwrap(),
                    },
                ],
                ttls: Ttls { record: 5, soa: 7, soa_minimum: 3, expected_negative: 1 },
                pods: PodsMode::Insecure,
                ptr: PtrMode::First,
                namespaces: vec![],
                zonal: false,
                multicluster: vec![],
                transfer: Default::default(),
                keys: Default::default(),
            },
        )
    }

    fn query(name: &str, t: RecordType, edns: Option<u16>, rd: bool) -> Vec<u8> {
        query_do(name, t, edns, rd, false)
    }

    fn query_do(name: &str, t: RecordType, edns: Option<u16>, rd: bool, dnssec_ok: bool) -> Vec<u8> {
        query_options(name, t, edns, rd, dnssec_ok, &[])
    }

    /// A query whose OPT (when `edns`) carries `options` as (code, data).
    fn query_options(
        name: &str,
        t: RecordType,
        edns: Option<u16>,
        rd: bool,
        dnssec_ok: bool,
        options: &[(u16, &[u8])],
    ) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = rd;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(dnssec_ok);
            for (code, data) in options {
                e.options_mut().insert(EdnsOption::Unknown(*code, data.to_vec()));
            }
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn fast_and_general_paths_give_byte_identical_replies() {
        // Server cookies read the clock: both paths read a pinned one.
        let z = zones().with_cookies(crate::dns::cookie::Cookies::new([7; 16]).with_clock(|| 1_700_000_000));
        let general = Responder::new(z.clone());
        let src: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let names = [
            "web-0.nginx.default.svc.cluster.local.",
            "WEB-0.Nginx.Default.SVC.Cluster.LOCAL.",
            "nginx.default.svc.cluster.local.",
            "web-0.nginx.default.svc.svc.example.",
            "v6.nginx.default.svc.cluster.local.",
            "Dual.nginx.default.svc.cluster.local.",
            // A dot inside a label ("web-0.nginx" as one label): never the key of two labels.
            "web-0\\.nginx.default.svc.cluster.local.",
            "WEB-0\\.NGINX\\.default.svc.cluster.local.",
            // A label of 46 octets: its length octet is the code of a dot.
            "abcdefghijabcdefghijabcdefghijabcdefghijabcdef.nginx.default.svc.cluster.local.",
            "web-9.nginx.default.svc.cluster.local.",
            "api.example.com.default.svc.cluster.local.",
            "default.svc.cluster.local.",
            "svc.cluster.local.",
            "nope.svc.example.",
            "web-2.nginx.default.svc.cluster.local.",
            "web-3.nginx.default.svc.cluster.local.",
            // Compression of the SOA's names against the question: the apex in another case
            // (whole, or its first label only), and questions that end in the SOA's mname or rname.
            "web-9.nginx.default.svc.CLUSTER.LOCAL.",
            "web-9.nginx.default.svc.Cluster.local.",
            "nope.SVC.example.",
            "ns.dns.cluster.local.",
            "x.ns.dns.cluster.local.",
            "dns.svc.example.",
            "hostmaster.cluster.local.",
            "A.hostmaster.cluster.local.",
            // A `*` label is a label like any other here (we hold no wildcard records, RFC 4592):
            // under the apex it is not the apex, and below it no name.
            "*.cluster.local.",
            "*.Cluster.LOCAL.",
            "*.nginx.default.svc.cluster.local.",
        ];
        // Questions of 62 and 70 labels: more suffixes than the 64 the encoder keeps.
        let long: Vec<String> = [60, 68].iter().map(|n| format!("{}cluster.local.", "a.".repeat(*n))).collect();
        let names: Vec<&str> = names.iter().copied().chain(long.iter().map(String::as_str)).collect();
        let mut fast_count = 0;
        for &name in &names {
            for t in [RecordType::A, RecordType::AAAA] {
                for edns in [None, Some(512), Some(1232), Some(4096), Some(100)] {
                    for (rd, dnssec_ok, cookie) in [
                        (false, false, None),
                        (true, false, None),
                        (true, true, None),
                        // A client cookie alone, with a server cookie of ours, with another's.
                        (true, true, Some(&b"\x2f\x8a\x6c\x31\xd0\xb4\x7e\x95"[..])),
                        (false, false, Some(&[9u8; 24][..])),
                        (true, false, Some(&[3u8; 40][..])),
                    ] {
                        if cookie.is_some() && edns.is_none() {
                            continue;
                        }
                        let options: Vec<(u16, &[u8])> = cookie.map(|c| (10, c)).into_iter().collect();
                        let raw = query_options(name, t, edns, rd, dnssec_ok, &options);
                        let want = general.respond(&raw, src, Transport::Udp).unwrap();
                        let mut out = Vec::new();
                        match answer(&z, &raw, src.ip(), &mut out) {
                            Fast::Answered { rcode, .. } => {
                                fast_count += 1;
                                assert_eq!(rcode, want.rcode);
                                assert_eq!(out, want.bytes, "{name} {t} {edns:?} rd={rd} do={dnssec_ok}");
                                // RFC 3225 section 3: DO copied (the OPT ends the reply; its flags
                                // are its 4th- and 3rd-last octets).
                                if edns.is_some() && cookie.is_none() {
                                    assert_eq!(out[out.len() - 4] & 0x80 != 0, dnssec_ok, "{name} {t}");
                                }
                                // RFC 7873 section 5.2.3: the client cookie and a server cookie
                                // end the reply.
                                if let Some(c) = cookie {
                                    assert_eq!(&out[out.len() - 24..out.len() - 16], &c[..8], "{name} {t}");
                                }
                            }
                            Fast::Fallback => panic!("{name} {t} {edns:?} should take the fast path"),
                        }
                    }
                }
            }
        }
        assert_eq!(fast_count, names.len() * 2 * (5 * 3 + 4 * 3));
    }

    /// RFC 1035 section 4.1.4: names in the reply point at the question's name (or its ending)
    /// where they repeat it, as Knot, BIND and CoreDNS answer; on both paths.
    #[test]
    fn names_in_replies_point_into_the_question() {
        let z = zones();
        let general = Responder::new(z.clone());
        let src: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let both = |name: &str| {
            let raw = query(name, RecordType::A, None, true);
            let want = general.respond(&raw, src, Transport::Udp).unwrap().bytes;
            let mut out = Vec::new();
            assert!(matches!(answer(&z, &raw, src.ip(), &mut out), Fast::Answered { .. }), "{name}");
            assert_eq!(out, want, "{name}");
            (raw.len(), out)
        };
        // A one-address name: the answer's owner is a pointer to offset 12, then type A.
        let (qlen, out) = both("web-0.nginx.default.svc.cluster.local.");
        assert_eq!(&out[qlen..qlen + 4], &[0xC0, 12, 0, 1]);
        assert_eq!(out.len(), qlen + 2 + 10 + 4);
        // Ten addresses: every owner points at the question.
        let (qlen, out) = both("nginx.default.svc.cluster.local.");
        for i in 0..10 {
            assert_eq!(&out[qlen + i * 16..qlen + i * 16 + 2], &[0xC0, 12], "record {i}");
        }
        // NXDOMAIN: the SOA's owner (the apex) points at the question's last two labels.
        let name = "web-9.nginx.default.svc.cluster.local.";
        let (qlen, out) = both(name);
        let apex_at = 12 + name.len() - "cluster.local.".len();
        assert_eq!(&out[qlen..qlen + 4], &[0xC0, apex_at as u8, 0, 6]);
    }

    /// RFC 1035 section 4.2.1: a reply that fits in 512 octets is sent whole, one that does not
    /// is TC=1 with no records, and both paths draw the line at the same place. (The general
    /// path once sized a reply with compression and encoded it bounded at 512: 25 to 27 records
    /// came back as 24 with TC=1, where the fast path sent 25 and 26 whole; and hickory's encoder
    /// writes each name in full before it points it, so a bounded encoder also refused the 28th
    /// record of a 503-octet reply.)
    #[test]
    fn replies_around_512_octets_are_whole_or_truncated_alike_on_both_paths() {
        let z = zones();
        let general = Responder::new(z.clone());
        let src: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        for k in 25..=30usize {
            let name = format!("fit{k}.nginx.default.svc.cluster.local.");
            let raw = query(&name, RecordType::A, None, true);
            let reply = general.respond(&raw, src, Transport::Udp).unwrap();
            let message = Message::from_vec(&reply.bytes).unwrap();
            // Header and question: 12 + 43 octets; each record 16 (its owner a pointer).
            let whole = 12 + 43 + 16 * k;
            let mut out = Vec::new();
            let fast = answer(&z, &raw, src.ip(), &mut out);
            if whole <= 512 {
                assert!(!message.metadata.truncation, "{k}: TC on a {whole}-octet reply");
                assert_eq!((message.answers.len(), reply.bytes.len()), (k, whole), "{k}");
                assert!(matches!(fast, Fast::Answered { .. }), "{k}");
                assert_eq!(out, reply.bytes, "{k}");
            } else {
                assert!(message.metadata.truncation && message.answers.is_empty(), "{k}: {message:?}");
                assert_eq!(fast, Fast::Fallback, "{k}");
            }
        }
    }

    #[test]
    fn unusual_queries_fall_back() {
        let z = zones();
        let src: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut out = Vec::new();
        for (name, t, edns) in [
            ("cluster.local.", RecordType::A, None),
            ("big.nginx.default.svc.cluster.local.", RecordType::A, Some(1232)),
            ("ext.nginx.default.svc.cluster.local.", RecordType::A, None),
            ("dns-version.cluster.local.", RecordType::A, None),
            ("10-0-0-1.default.pod.cluster.local.", RecordType::A, None),
            ("web-0.nginx.default.svc.cluster.local.", RecordType::SRV, None),
            ("1.0.0.10.in-addr.arpa.", RecordType::A, None),
            ("example.com.", RecordType::A, None),
        ] {
            assert_eq!(answer(&z, &query(name, t, edns, true), src.ip(), &mut out), Fast::Fallback, "{name} {t}");
        }
        // A malformed cookie (RFC 7873 section 5.2.2: FORMERR), two cookies, a cookie and another
        // option, another option alone: the general path judges them.
        let web0 = "web-0.nginx.default.svc.cluster.local.";
        for options in [
            vec![(10u16, &[1u8; 5][..])],
            vec![(10, &[1u8; 12][..])],
            vec![(10, &[1u8; 41][..])],
            vec![(10, &[1u8; 8][..]), (10, &[2u8; 8][..])],
            vec![(10, &[1u8; 8][..]), (3, &[][..])],
            vec![(3, &[][..]), (10, &[1u8; 8][..])],
            vec![(3, &[][..])],
        ] {
            let raw = query_options(web0, RecordType::A, Some(1232), true, false, &options);
            assert_eq!(answer(&z, &raw, src.ip(), &mut out), Fast::Fallback, "{options:?}");
        }
        let mut raw = query("web-0.nginx.default.svc.cluster.local.", RecordType::A, Some(1232), false);
        let at = raw.len() - 5;
        raw[at] = 1; // EDNS version 1
        assert_eq!(answer(&z, &raw, src.ip(), &mut out), Fast::Fallback);
        let mut raw = query("web-0.nginx.default.svc.cluster.local.", RecordType::A, None, false);
        raw[2] |= 0x80; // a response
        assert_eq!(answer(&z, &raw, src.ip(), &mut out), Fast::Fallback);
        for cut in 0..raw.len() {
            let _ = answer(&z, &raw[..cut], src.ip(), &mut out);
        }
    }
}
