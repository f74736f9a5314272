//! The request path under hostile input, shared by `tests/packet_corpus.rs` (the fixed regression
//! corpus), `tests/fuzz_stable.rs` (the seeded mutation fuzzer) and the cargo-fuzz targets in
//! `fuzz/`:
//!
//! - [`Fixture`]: zones over a hand-built index (the same names as the YAML the live tests serve);
//! - [`udp`] and [`tcp`]: a request answered exactly as the server's UDP loop does it (the fast
//!   path, else the general path) and as its TCP connections do (the general path);
//! - [`check`]: the invariants every request must keep, whatever its bytes ([`check_core`]: the
//!   core of them); [`check_manifests`]: those of the manifests loader;
//! - a wire-format builder ([`header`], [`question`], [`opt`], [`query`]) and [`cases`], the
//!   crafted packets of issue 5 with the outcome each must get; [`bugs`]: packets that expose
//!   known bugs.
//!
//! Not a test target of its own: each user includes it with `#[path]`.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use headless_dns::dns::answer::Zones;
use headless_dns::dns::fast::{self, Fast};
use headless_dns::dns::general::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD, Responder, TransferReply, Transport};
use headless_dns::dns::tsig::KeyRing;
use headless_dns::dns::xfr::TransferPolicy;
use headless_dns::dns::zone::{PodsMode, PtrMode, Ttls, ZoneSettings, ZoneSpec};
use headless_dns::index::{Index, NameData, Owner, PtrEntry, Published, SrvData};
use headless_dns::journal::{Journal, JournalLimits};
use headless_dns::model::ObjectKey;
use headless_dns::source::manifests;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, RData, RecordType};

/// The client address requests come from.
pub const SRC: &str = "127.0.0.1:53000";
/// The name of the TSIG key the fixture knows.
pub const KEY_NAME: &str = "fuzz-key";
/// The TSIG key the fixture knows (`tsig-keygen` format).
pub const KEY_FILE: &str =
    "key \"fuzz-key\" { algorithm hmac-sha256; secret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=\"; };";

/// Record types and classes by number (the corpus writes raw wire values on purpose).
pub mod wire {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const HS: u16 = 4;
    pub const NONE: u16 = 254;
    /// Header flag bits (the two octets after the ID).
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const CD: u16 = 0x0010;
    /// The flags with `opcode` set.
    pub const fn opcode(op: u16) -> u16 {
        (op & 0x0f) << 11
    }
}

/// Extended response codes by number.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const NOTAUTH: u16 = 9;
    pub const BADVERS: u16 = 16;
}

/// The zones every packet is asked against, and the general-path responder over them.
pub struct Fixture {
    /// `cluster.local.` and the reverse zone `10.in-addr.arpa.`, pods disabled (the defaults).
    pub zones: Zones,
    /// The general path.
    pub general: Responder,
    /// The client address.
    pub src: SocketAddr,
}

fn v4<C: FromIterator<Ipv4Addr>>(ips: &[[u8; 4]]) -> C {
    ips.iter().map(|o| Ipv4Addr::from(*o)).collect()
}

impl Fixture {
    /// The names of `config/example` (a headless `nginx` with `web-0` and `web-1` and a named port
    /// `web`, a ClusterIP `api`), plus a dual-stack Service, one with 120 endpoints (too many for
    /// UDP) and an ExternalName.
    pub fn new() -> Self {
        let index = Arc::new(Index::new());
        let srv = |port: u16| -> Vec<SrvData> {
            ["web-0", "web-1"]
                .iter()
                .map(|h| SrvData { priority: 0, weight: 50, port, target: format!("{h}.nginx.default.svc").into() })
                .collect()
        };
        let web0 = NameData { v4: v4(&[[10, 244, 1, 5]]), ..Default::default() };
        let web1 = NameData { v4: v4(&[[10, 244, 2, 7]]), ..Default::default() };
        let nginx = NameData { v4: v4(&[[10, 244, 1, 5], [10, 244, 2, 7]]), srv: srv(80).into(), ..Default::default() };
        let port = NameData { srv: srv(80).into(), ..Default::default() };
        let ptr = |ip: [u8; 4], name: &str| PtrEntry { ip: IpAddr::from(ip), rank: 0, name: name.into() };
        index.publish(
            &Owner::Service(ObjectKey::new("default", "nginx")),
            Published {
                names: vec![
                    ("nginx.default.svc".into(), nginx),
                    ("web-0.nginx.default.svc".into(), web0),
                    ("web-1.nginx.default.svc".into(), web1),
                    ("_tcp.nginx.default.svc".into(), NameData::default()),
                    ("_web._tcp.nginx.default.svc".into(), port),
                ],
                ptrs: vec![
                    ptr([10, 244, 1, 5], "web-0.nginx.default.svc"),
                    ptr([10, 244, 2, 7], "web-1.nginx.default.svc"),
                ],
            },
        );
        index.publish(
            &Owner::Service(ObjectKey::new("default", "api")),
            Published {
                names: vec![("api.default.svc".into(), NameData { v4: v4(&[[10, 96, 0, 20]]), ..Default::default() })],
                ptrs: vec![ptr([10, 96, 0, 20], "api.default.svc")],
            },
        );
        let dual = NameData {
            v4: v4(&[[10, 96, 0, 30]]),
            v6: ["fd00::30".parse().unwrap()].into_iter().collect(),
            srv: vec![SrvData { priority: 0, weight: 100, port: 53, target: "dual.default.svc".into() }].into(),
            ..Default::default()
        };
        let big = NameData { v4: (0..120u8).map(|i| Ipv4Addr::new(10, 245, 0, i)).collect(), ..Default::default() };
        // 28 addresses: a 498-octet answer without EDNS, over 512 once signed.
        let med = NameData { v4: (0..28u8).map(|i| Ipv4Addr::new(10, 246, 0, i)).collect(), ..Default::default() };
        let ext = NameData { cname: Some(Name::from_ascii("example.com.").unwrap().into()), ..Default::default() };
        index.publish(
            &Owner::Service(ObjectKey::new("default", "other")),
            Published {
                names: vec![
                    ("dual.default.svc".into(), dual),
                    ("big.default.svc".into(), big),
                    ("med.default.svc".into(), med),
                    ("ext.default.svc".into(), ext),
                ],
                ptrs: vec![],
            },
        );
        index.set_synced(true);
        // Transfers on for the client when it signs with the key (unsigned: REFUSED, as the live
        // binary without transfers answers), so that AXFR, IXFR and TSIG meet every packet.
        let journal = Arc::new(Journal::new(&index, JournalLimits::default()));
        let keys = KeyRing::parse(KEY_FILE).expect("key file");
        let zones = Zones::new(
            index,
            ZoneSettings {
                zones: vec![
                    ZoneSpec::Forward(Name::from_ascii("cluster.local.").unwrap()),
                    ZoneSpec::Reverse {
                        apex: Name::from_ascii("10.in-addr.arpa.").unwrap(),
                        net: "10.0.0.0/8".parse().unwrap(),
                    },
                ],
                ttls: Ttls { record: 5, soa: 5, soa_minimum: 5, expected_negative: 0 },
                pods: PodsMode::Disabled,
                ptr: PtrMode::First,
                namespaces: vec![],
                zonal: false,
                multicluster: vec![],
                transfer: TransferPolicy { allow: vec![format!("127.0.0.1,key={KEY_NAME}").parse().unwrap()] },
                keys: Arc::new(keys),
            },
        )
        .with_journal(Some(journal.clone()));
        journal.publish(zones.index(), headless_dns::index::clock_serial());
        Fixture { general: Responder::new(zones.clone()), zones, src: SRC.parse().unwrap() }
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// What the UDP loop sends for `raw`, and whether the fast path produced it.
pub struct UdpOutcome {
    /// The datagram sent back, if any.
    pub reply: Option<Vec<u8>>,
    /// True when [`fast::answer`] answered (else the general path did, or nothing was sent).
    pub fast: bool,
}

/// `raw` as the server's UDP loop answers it: the fast path, and on `Fallback` the general path.
pub fn udp(f: &Fixture, raw: &[u8]) -> UdpOutcome {
    let mut out = Vec::new();
    match fast::answer(&f.zones, raw, f.src.ip(), &mut out) {
        Fast::Answered { .. } => UdpOutcome { reply: Some(out), fast: true },
        Fast::Fallback => {
            UdpOutcome { reply: f.general.respond(raw, f.src, Transport::Udp).map(|r| r.bytes), fast: false }
        }
    }
}

/// `raw` as a TCP connection answers it (one framed message; the general path).
/// A zone transfer's messages are all made (so that every one is exercised); the first is
/// returned.
pub fn tcp(f: &Fixture, raw: &[u8]) -> Option<Vec<u8>> {
    match f.general.transfer(raw, f.src, Transport::Tcp) {
        Some(TransferReply::One(r)) => return Some(r.bytes),
        Some(TransferReply::Stream(mut t)) => {
            let first = t.next_message();
            while t.next_message().is_some() {}
            return first;
        }
        None => {}
    }
    f.general.respond(raw, f.src, Transport::Tcp).map(|r| r.bytes)
}

/// The largest UDP reply allowed for `raw`: 512 octets without EDNS, the client's EDNS payload
/// size clamped to 512..=1232 with it (RFC 1035 section 4.2.1, RFC 6891 section 6.2.5). A request
/// that does not decode has no usable EDNS: 512.
pub fn udp_limit(raw: &[u8]) -> usize {
    match Message::from_vec(raw) {
        Ok(m) => m.edns.map_or(MIN_UDP_PAYLOAD, |e| e.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)) as usize,
        Err(_) => MIN_UDP_PAYLOAD as usize,
    }
}

/// The extended response code of a decoded reply (header bits and the OPT's upper bits).
pub fn rcode_of(m: &Message) -> u16 {
    u16::from(m.metadata.response_code)
}

/// The invariants of one reply, whatever the request: at least a header, the query's ID, QR set,
/// the query's opcode, within `limit` octets, decodable, an OPT whenever the rcode needs one.
pub fn check_reply(raw: &[u8], reply: &[u8], limit: usize, transport: &str) -> Result<Message, String> {
    if reply.len() < 12 {
        return Err(format!("{transport}: reply of {} octets, shorter than a header", reply.len()));
    }
    if reply.len() > limit {
        return Err(format!("{transport}: reply of {} octets exceeds the limit of {limit}", reply.len()));
    }
    if reply[..2] != raw[..2] {
        return Err(format!("{transport}: reply ID {:02x?} differs from the query ID {:02x?}", &reply[..2], &raw[..2]));
    }
    if reply[2] & 0x80 == 0 {
        return Err(format!("{transport}: reply without QR"));
    }
    if reply[2] & 0x78 != raw[2] & 0x78 {
        return Err(format!("{transport}: opcode not echoed"));
    }
    let m = Message::from_vec(reply).map_err(|e| format!("{transport}: reply does not decode: {e}"))?;
    if rcode_of(&m) > 15 && m.edns.is_none() {
        return Err(format!("{transport}: extended rcode {} without an OPT", rcode_of(&m)));
    }
    Ok(m)
}

/// The core invariants only (what `fuzz/` checks with `HEADLESS_DNS_FUZZ_CORE_ONLY=1`): no reply to
/// a runt or a response, a reply to every other request, with the query's ID and QR set, and a UDP
/// reply within [`udp_limit`].
pub fn check_core(f: &Fixture, raw: &[u8]) -> Result<(), String> {
    let u = udp(f, raw).reply;
    let t = tcp(f, raw);
    let silent = raw.len() < 12 || raw[2] & 0x80 != 0;
    match (silent, u, t) {
        (true, None, None) => Ok(()),
        (true, ..) => Err("a runt or a response was answered".into()),
        (false, Some(u), Some(t)) => {
            for (transport, reply, limit) in [("udp", &u, udp_limit(raw)), ("tcp", &t, u16::MAX as usize)] {
                if reply.len() < 12 || reply.len() > limit || reply[..2] != raw[..2] || reply[2] & 0x80 == 0 {
                    return Err(format!("{transport}: reply of {} octets (limit {limit}), bad header", reply.len()));
                }
            }
            Ok(())
        }
        (false, ..) => Err("a query got no reply".into()),
    }
}

/// Everything that must hold for `raw`, over UDP (the loop) and TCP:
/// - a runt (< 12 octets) or a response (QR=1) gets no reply; any other request gets one;
/// - every reply keeps [`check_reply`]'s invariants; UDP replies fit [`udp_limit`];
/// - a request that decodes with EDNS gets an OPT back (RFC 6891 section 6.1.1), and its
///   question back as asked, if any;
/// - when the fast path answers, its bytes equal the general path's (as `src/dns/fast.rs` claims);
/// - UDP and TCP give the same rcode.
///
/// Returns the decoded UDP and TCP replies.
pub fn check(f: &Fixture, raw: &[u8]) -> Result<(Option<Message>, Option<Message>), String> {
    let u = udp(f, raw);
    let t = tcp(f, raw);
    let silent = raw.len() < 12 || raw[2] & 0x80 != 0;
    let (u_reply, t_reply) = match (silent, u.reply, t) {
        (true, None, None) => return Ok((None, None)),
        (true, u, t) => {
            return Err(format!("a runt or a response was answered (udp {}, tcp {})", u.is_some(), t.is_some()));
        }
        (false, Some(u), Some(t)) => (u, t),
        (false, u, t) => {
            return Err(format!("a query got no reply (udp {}, tcp {})", u.is_some(), t.is_some()));
        }
    };
    let um = check_reply(raw, &u_reply, udp_limit(raw), "udp")?;
    let tm = check_reply(raw, &t_reply, u16::MAX as usize, "tcp")?;
    if u.fast {
        let general = f.general.respond(raw, f.src, Transport::Udp).map(|r| r.bytes);
        if general.as_deref() != Some(&u_reply[..]) {
            let rc = general.as_deref().and_then(|g| Message::from_vec(g).ok()).map(|m| rcode_of(&m));
            return Err(format!(
                "fast path reply (rcode {}) differs from the general path's (rcode {rc:?})",
                rcode_of(&um)
            ));
        }
    }
    if let Ok(req) = Message::from_vec(raw) {
        if req.edns.is_some() && (um.edns.is_none() || tm.edns.is_none()) {
            return Err(format!("request with EDNS answered without OPT (rcode {})", rcode_of(&um)));
        }
        // The question is echoed as asked (RFC 1035 section 4.1.2), or left out.
        for (transport, m) in [("udp", &um), ("tcp", &tm)] {
            if !m.queries.is_empty() && m.queries != req.queries {
                return Err(format!("{transport}: the reply's question is not the one asked"));
            }
        }
    }
    // A zone transfer the client may have is streamed over TCP (NOERROR); over UDP an IXFR gets
    // the SOA alone and an AXFR NOTIMP (RFC 1995 section 2, RFC 5936 section 4.2). Every refusal
    // is the same on both.
    let transfer = um.queries.first().is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR));
    if rcode_of(&um) != rcode_of(&tm) && !(transfer && rcode_of(&tm) == rcode::NOERROR) {
        return Err(format!("rcode differs: udp {} tcp {}", rcode_of(&um), rcode_of(&tm)));
    }
    Ok((Some(um), Some(tm)))
}

// ---- Manifests. ----

/// The number of lines in `text` as YAML 1.2 counts them (section 5.4: CR LF, CR and LF each
/// end a line; NEL, LS and PS do not), as serde-saphyr's error locations and the manifests
/// source's document splitter do.
pub fn yaml_lines(text: &[u8]) -> usize {
    let text = String::from_utf8_lossy(text);
    let mut lines = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => lines += 1,
            _ => {}
        }
    }
    lines
}

/// Loads `path` with [`manifests::load`]; every error must name one of `files` and a line within it (1-based; one past
/// the last line allowed for an error at the very end), and its message starts `file:line:`.
/// Returns the objects read and the documents skipped.
pub fn check_manifests(path: &Path, files: &[(&Path, &[u8])]) -> Result<(usize, usize), String> {
    let loaded = manifests::load(path).map_err(|e| format!("load failed: {e}"))?;
    for e in &loaded.errors {
        let Some((_, text)) = files.iter().find(|(p, _)| *p == e.file.as_path()) else {
            return Err(format!("error names a file that was not read: {}", e.file.display()));
        };
        let lines = yaml_lines(text);
        if e.line < 1 || e.line > lines + 1 {
            return Err(format!("error line {} outside the file's {lines} lines: {}", e.line, e.reason));
        }
        if e.document < 1 {
            return Err(format!("error document {}", e.document));
        }
        if !e.to_string().starts_with(&format!("{}:{}:", e.file.display(), e.line)) {
            return Err(format!("error message does not start with file:line: {e}"));
        }
    }
    let found = loaded.services.len() + loaded.pods.len() + loaded.slices.len() + loaded.namespaces.len();
    Ok((found, loaded.errors.len()))
}

// ---- Wire-format builder. Nothing is validated: building malformed packets is the point. ----

/// A 12-octet header: ID, flags (see [`wire`]), and QD/AN/NS/AR counts.
pub fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// `a.b.c.` (or `a.b.c`) in uncompressed wire form, the root label included; `.` is the root.
/// Labels are taken as they are, however long.
pub fn name(text: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

/// A question: `name` (wire form), type and class.
pub fn question(name: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = name.to_vec();
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// An OPT record (RFC 6891 section 6.1.2): root owner, payload size, version, flags 0, options.
pub fn opt(payload: u16, version: u8, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    let mut o = vec![0];
    o.extend_from_slice(&wire::OPT.to_be_bytes());
    o.extend_from_slice(&payload.to_be_bytes());
    o.extend_from_slice(&[0, version, 0, 0]);
    o.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    o.extend_from_slice(&rdata);
    o
}

/// A TSIG record (RFC 8945 section 4.2) for `key` (wire form), algorithm hmac-sha256, signed now
/// with an empty MAC: a request signed with a key the server does not know (BADKEY), or a forged
/// signature (BADSIG).
pub fn tsig(key: &[u8], original_id: u16) -> Vec<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut rdata = name("hmac-sha256.");
    rdata.extend_from_slice(&now.to_be_bytes()[2..]);
    rdata.extend_from_slice(&300u16.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes()); // MAC size
    rdata.extend_from_slice(&original_id.to_be_bytes());
    rdata.extend_from_slice(&[0, 0, 0, 0]); // error, other length
    let mut r = key.to_vec();
    r.extend_from_slice(&250u16.to_be_bytes());
    r.extend_from_slice(&wire::ANY.to_be_bytes());
    r.extend_from_slice(&0u32.to_be_bytes());
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(&rdata);
    r
}

/// A standard query (opcode QUERY, RD as given by `flags`) for `qname`, with an OPT of
/// `edns` payload size when given.
pub fn query_with(id: u16, flags: u16, qname: &str, qtype: u16, qclass: u16, edns: Option<u16>) -> Vec<u8> {
    let mut p = header(id, flags, [1, 0, 0, u16::from(edns.is_some())]);
    p.extend(question(&name(qname), qtype, qclass));
    if let Some(size) = edns {
        p.extend(opt(size, 0, &[]));
    }
    p
}

/// A plain IN query with RD=0.
pub fn query(id: u16, qname: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    query_with(id, 0, qname, qtype, wire::IN, edns)
}

/// A label of `n` letters.
pub fn label(n: usize) -> String {
    "a".repeat(n)
}

/// A name under `cluster.local.` whose wire form is exactly `len` octets, root included.
pub fn name_of_wire_len(len: usize) -> String {
    // "cluster.local." takes 15 octets; the rest is labels of up to 63 letters (64 octets each).
    let mut rest = len - 15;
    let mut labels = Vec::new();
    while rest > 0 {
        let take = rest.min(64);
        assert!(take >= 2, "cannot fill {rest} octets with labels");
        let take = if rest - take == 1 { take - 1 } else { take };
        labels.push(label(take - 1));
        rest -= take;
    }
    labels.push("cluster.local.".into());
    labels.join(".")
}

// ---- The regression corpus. ----

/// What a case must get.
#[derive(Clone, Copy)]
pub enum Expect {
    /// Nothing is sent back.
    NoReply,
    /// A reply with this extended rcode; `more` checks the rest of the decoded message.
    Rcode(u16, fn(&Message) -> Result<(), String>),
}

/// One crafted packet and the outcome it must get over UDP (the loop) and TCP.
pub struct Case {
    /// What it is, for failure messages.
    pub name: String,
    /// The wire bytes.
    pub packet: Vec<u8>,
    /// Over UDP (fast path, else general path).
    pub udp: Expect,
    /// Over TCP (general path).
    pub tcp: Expect,
    /// Also sent to the real binary in the live test (its data is the same for these names).
    pub live: bool,
}

fn ok(_: &Message) -> Result<(), String> {
    Ok(())
}

/// The last additional record is a TSIG that says no error (a signed reply, RFC 8945 section 5.3).
fn signed(m: &Message) -> Result<(), String> {
    match m.additionals.last().map(|r| &r.data) {
        Some(RData::TSIG(t)) if t.error.is_none() && !t.mac.is_empty() => Ok(()),
        other => Err(format!("want a signed reply (a TSIG with a MAC last), got {other:?}")),
    }
}

/// TC=1, no records, signed.
fn signed_and_cut(m: &Message) -> Result<(), String> {
    signed(m)?;
    if m.metadata.truncation && m.answers.is_empty() { Ok(()) } else { Err(format!("want TC=1 and no answer: {m:?}")) }
}

/// Every address of `med`, signed.
fn signed_28_addresses(m: &Message) -> Result<(), String> {
    signed(m)?;
    if !m.metadata.truncation && m.answers.len() == 28 { Ok(()) } else { Err(format!("want 28 answers whole: {m:?}")) }
}

/// Error replies carry no records (an OPT aside).
fn empty(m: &Message) -> Result<(), String> {
    if m.answers.is_empty() && m.authorities.is_empty() {
        Ok(())
    } else {
        Err(format!("records in an error reply: {} answers, {} authority", m.answers.len(), m.authorities.len()))
    }
}

fn with_opt(m: &Message) -> Result<(), String> {
    empty(m)?;
    match &m.edns {
        Some(e) if e.version() == 0 => Ok(()),
        Some(e) => Err(format!("OPT version {} in the reply; we speak version 0", e.version())),
        None => Err("no OPT in the reply".into()),
    }
}

/// The answer is exactly these record types (in order) and addresses.
fn answer_is(m: &Message, want: &[(RecordType, &str)]) -> Result<(), String> {
    let got: Vec<(RecordType, String)> = m.answers.iter().map(|r| (r.record_type(), r.data.to_string())).collect();
    let want: Vec<(RecordType, String)> = want.iter().map(|(t, d)| (*t, d.to_string())).collect();
    if got == want { Ok(()) } else { Err(format!("answer {got:?}, want {want:?}")) }
}

fn web0(m: &Message) -> Result<(), String> {
    answer_is(m, &[(RecordType::A, "10.244.1.5")])
}

fn web0_with_opt(m: &Message) -> Result<(), String> {
    web0(m)?;
    match &m.edns {
        Some(e) if e.options().as_ref().is_empty() => Ok(()),
        Some(_) => Err("our OPT echoes options we do not implement".into()),
        None => Err("no OPT in the reply".into()),
    }
}

/// web-0's address, and an OPT whose one option is the COOKIE (RFC 7873 section 5.2.3): the
/// client cookie 01..08 echoed and a 16-octet RFC 9018 server cookie (version 1, reserved zero).
fn web0_with_cookie(m: &Message) -> Result<(), String> {
    web0(m)?;
    let Some(e) = &m.edns else { return Err("no OPT in the reply".into()) };
    match e.options().options.as_slice() {
        [(_, hickory_proto::rr::rdata::opt::EdnsOption::Unknown(10, data))]
            if data.len() == 24 && data[..8] == [1, 2, 3, 4, 5, 6, 7, 8] && data[8..12] == [1, 0, 0, 0] =>
        {
            Ok(())
        }
        other => Err(format!("want the client cookie and a server cookie, got {other:?}")),
    }
}

fn soa_only(m: &Message) -> Result<(), String> {
    if m.answers.is_empty() && m.authorities.len() == 1 && m.authorities[0].record_type() == RecordType::SOA {
        Ok(())
    } else {
        Err(format!("want an empty answer and the SOA; got {:?}", m))
    }
}

fn truncated_empty(m: &Message) -> Result<(), String> {
    if m.metadata.truncation && m.answers.is_empty() {
        Ok(())
    } else {
        Err(format!("want TC=1 and no answers; got tc={} {} answers", m.metadata.truncation, m.answers.len()))
    }
}

fn all_120(m: &Message) -> Result<(), String> {
    if !m.metadata.truncation && m.answers.len() == 120 {
        Ok(())
    } else {
        Err(format!("want all 120 addresses over TCP; got tc={} {}", m.metadata.truncation, m.answers.len()))
    }
}

// RFC 8482 section 4.1: ANY gets one RRset or a small subset, never everything. `src/dns/answer.rs`
// answers the addresses when the name has any (A and AAAA), else its SRV set; the SOA at an apex;
// the TXT at dns-version; the PTR on a reverse name.
fn any_web0(m: &Message) -> Result<(), String> {
    answer_is(m, &[(RecordType::A, "10.244.1.5")])
}
fn any_nginx(m: &Message) -> Result<(), String> {
    answer_is(m, &[(RecordType::A, "10.244.1.5"), (RecordType::A, "10.244.2.7")])?;
    if m.additionals.is_empty() { Ok(()) } else { Err("SRV target addresses sent for ANY".into()) }
}
fn any_dual(m: &Message) -> Result<(), String> {
    answer_is(m, &[(RecordType::A, "10.96.0.30"), (RecordType::AAAA, "fd00::30")])
}
fn any_port(m: &Message) -> Result<(), String> {
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    if types == [RecordType::SRV, RecordType::SRV] {
        Ok(())
    } else {
        Err(format!("want the two SRV records only; got {types:?}"))
    }
}
fn any_apex(m: &Message) -> Result<(), String> {
    match m.answers.as_slice() {
        [r] if matches!(r.data, RData::SOA(_)) => Ok(()),
        other => Err(format!("want the single SOA; got {} records", other.len())),
    }
}
fn any_version(m: &Message) -> Result<(), String> {
    answer_is(m, &[(RecordType::TXT, "1.1.0")])
}
fn any_ptr(m: &Message) -> Result<(), String> {
    answer_is(m, &[(RecordType::PTR, "web-0.nginx.default.svc.cluster.local.")])
}

struct Corpus(Vec<Case>);

impl Corpus {
    fn both(&mut self, name: &str, packet: Vec<u8>, udp: Expect, tcp: Expect, live: bool) {
        self.0.push(Case { name: name.into(), packet, udp, tcp, live });
    }
    fn same(&mut self, name: &str, packet: Vec<u8>, expect: Expect, live: bool) {
        self.both(name, packet, expect, expect, live);
    }
}

/// The crafted packets of issue 5 ("Bad input"), each with the outcome it must get.
pub fn cases() -> Vec<Case> {
    use Expect::{NoReply, Rcode};
    use rcode::*;
    use wire::*;
    const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";
    let mut c = Corpus(Vec::new());
    let q_web0 = question(&name(WEB0), A, IN);

    // Well-formed queries first: the baseline every malformed variant departs from.
    c.same("plain A", query(0x0101, WEB0, A, None), Rcode(NOERROR, web0), true);
    c.same("A with EDNS 1232", query(0x0102, WEB0, A, Some(1232)), Rcode(NOERROR, web0_with_opt), true);
    c.same("A with EDNS 0 (treated as 512)", query(0x0103, WEB0, A, Some(0)), Rcode(NOERROR, web0_with_opt), false);
    c.same("A with RD and CD", query_with(0x0104, RD | CD, WEB0, A, IN, None), Rcode(NOERROR, web0), false);
    c.same(
        "NXDOMAIN",
        query(0x0105, "web-9.nginx.default.svc.cluster.local.", A, None),
        Rcode(NXDOMAIN, soa_only),
        true,
    );

    // QDCOUNT other than 1: FORMERR (RFC 9619).
    c.same("QDCOUNT 0", header(0x0201, 0, [0, 0, 0, 0]), Rcode(FORMERR, empty), true);
    c.same(
        "QDCOUNT 0 with EDNS",
        [header(0x0202, 0, [0, 0, 0, 1]), opt(1232, 0, &[])].concat(),
        Rcode(FORMERR, with_opt),
        false,
    );
    let mut two = header(0x0203, 0, [2, 0, 0, 0]);
    two.extend(&q_web0);
    two.extend(question(&name("web-1.nginx.default.svc.cluster.local."), A, IN));
    c.same("QDCOUNT 2", two, Rcode(FORMERR, empty), true);
    let mut two_one = header(0x0204, 0, [2, 0, 0, 0]);
    two_one.extend(&q_web0);
    c.same("QDCOUNT 2 with one question present", two_one, Rcode(FORMERR, empty), false);
    c.same(
        "QDCOUNT 65535 AN/NS/AR 65535",
        [header(0x0205, 0, [0xffff; 4]), q_web0.clone()].concat(),
        Rcode(FORMERR, empty),
        false,
    );

    // Truncated headers: nothing to answer, not even an ID to echo safely.
    let full = query(0x0301, WEB0, A, None);
    for cut in [0usize, 1, 2, 11] {
        c.same(&format!("header truncated to {cut} octets"), full[..cut].to_vec(), NoReply, cut == 11);
    }
    // Truncated names and questions: FORMERR.
    c.same("header only, QDCOUNT 1", full[..12].to_vec(), Rcode(FORMERR, empty), true);
    c.same("name cut inside a label", full[..12 + 4].to_vec(), Rcode(FORMERR, empty), true);
    let name_len = name(WEB0).len();
    c.same("name without its root label", full[..12 + name_len - 1].to_vec(), Rcode(FORMERR, empty), false);
    c.same("question without type and class", full[..12 + name_len].to_vec(), Rcode(FORMERR, empty), false);
    c.same("question cut inside the class", full[..full.len() - 1].to_vec(), Rcode(FORMERR, empty), false);
    let with_opt_q = query(0x0302, WEB0, A, Some(1232));
    c.same("OPT cut short", with_opt_q[..with_opt_q.len() - 3].to_vec(), Rcode(FORMERR, empty), true);

    // Compression pointers: loops and forward pointers must end in FORMERR, never a hang.
    let ptr_q = |id: u16, name: &[u8]| [header(id, 0, [1, 0, 0, 0]), question(name, A, IN)].concat();
    c.same("pointer to itself", ptr_q(0x0401, &[0xc0, 12]), Rcode(FORMERR, empty), true);
    // 12: "\x01a" then a pointer back to 12: a two-step loop.
    c.same("pointer loop through a label", ptr_q(0x0402, &[1, b'a', 0xc0, 12]), Rcode(FORMERR, empty), true);
    // A forward pointer: into the question's own type/class, later in the message.
    c.same("forward pointer", ptr_q(0x0403, &[0xc0, 14, 0, 0]), Rcode(FORMERR, empty), true);
    c.same("pointer past the end", ptr_q(0x0404, &[0xc0, 0xff]), Rcode(FORMERR, empty), false);
    c.same(
        "pointer cut after one octet",
        [header(0x0405, 0, [1, 0, 0, 0]), vec![0xc0]].concat(),
        Rcode(FORMERR, empty),
        false,
    );
    // A loop in the additional section's owner name (the OPT's place).
    let mut loop_ar = query(0x0406, WEB0, A, None);
    loop_ar[11] = 1;
    let here = loop_ar.len() as u8;
    loop_ar.extend([0xc0, here]);
    loop_ar.extend(&opt(1232, 0, &[])[1..]);
    c.same("pointer loop in the additional section", loop_ar, Rcode(FORMERR, empty), false);

    // Over-long labels and names (RFC 1035 section 2.3.4): FORMERR.
    let long_label = format!("{}.nginx.default.svc.cluster.local.", label(64));
    c.same("label of 64 octets", query(0x0501, &long_label, A, None), Rcode(FORMERR, empty), true);
    c.same("extended label type 0x40", ptr_q(0x0502, &[0x40, b'a', 0]), Rcode(FORMERR, empty), false);
    c.same("reserved label type 0x80", ptr_q(0x0503, &[0x80, b'a', 0]), Rcode(FORMERR, empty), false);
    c.same("name of 300 octets", query(0x0504, &name_of_wire_len(300), A, None), Rcode(FORMERR, empty), true);
    // A name of exactly 255 octets is legal: answered (it does not exist).
    c.same("name of 255 octets", query(0x0505, &name_of_wire_len(255), A, None), Rcode(NXDOMAIN, soa_only), true);
    c.same(
        "name of 255 octets, AAAA",
        query(0x0506, &name_of_wire_len(255), AAAA, None),
        Rcode(NXDOMAIN, soa_only),
        false,
    );
    // Many short labels: 100 one-letter labels and the zone, 215 octets.
    let mut chained = header(0x0507, 0, [1, 0, 0, 0]);
    chained.extend(question(&name(&format!("{}cluster.local.", "a.".repeat(100))), A, IN));
    c.same("name of 215 octets in 102 labels", chained, Rcode(NXDOMAIN, soa_only), false);

    // Responses are never answered (no reflection, no loops between servers).
    c.same("QR=1 with a question", query_with(0x0601, QR, WEB0, A, IN, None), NoReply, true);
    c.same("QR=1 with EDNS", query_with(0x0602, QR | AA, WEB0, A, IN, Some(1232)), NoReply, false);
    c.same("QR=1 header only", header(0x0603, QR, [0, 0, 0, 0]), NoReply, false);
    c.same("QR=1 garbage", [header(0x0604, QR | opcode(15), [9, 9, 9, 9]), vec![0xff; 40]].concat(), NoReply, false);

    // EDNS.
    let mut v1 = header(0x0701, 0, [1, 0, 0, 1]);
    v1.extend(&q_web0);
    v1.extend(opt(1232, 1, &[]));
    c.same("EDNS version 1", v1, Rcode(BADVERS, with_opt), true);
    let mut v255 = header(0x0702, 0, [0, 0, 0, 1]);
    v255.extend(opt(4096, 255, &[]));
    c.same("EDNS version 255, no question", v255, Rcode(BADVERS, with_opt), false);
    let mut two_opt = header(0x0703, 0, [1, 0, 0, 2]);
    two_opt.extend(&q_web0);
    two_opt.extend(opt(1232, 0, &[]));
    two_opt.extend(opt(512, 0, &[]));
    c.same("two OPT records", two_opt, Rcode(FORMERR, empty), true);
    let mut unknown_opt = header(0x0704, 0, [1, 0, 0, 1]);
    unknown_opt.extend(&q_web0);
    unknown_opt.extend(opt(1232, 0, &[(65001, b"\x01\x02\x03\x04"), (0xfde9, b"")]));
    c.same("unknown EDNS options", unknown_opt, Rcode(NOERROR, web0_with_opt), true);
    let mut cookie = header(0x0705, 0, [1, 0, 0, 1]);
    cookie.extend(&q_web0);
    cookie.extend(opt(1232, 0, &[(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")]));
    c.same("client COOKIE (echoed with a server cookie)", cookie, Rcode(NOERROR, web0_with_cookie), true);
    let mut with_server = header(0x0708, 0, [1, 0, 0, 1]);
    with_server.extend(&q_web0);
    with_server.extend(opt(1232, 0, &[(10, &[[1, 2, 3, 4, 5, 6, 7, 8], [9; 8]].concat())]));
    c.same("client and a foreign server COOKIE", with_server, Rcode(NOERROR, web0_with_cookie), false);
    // RFC 7873 section 5.2.2: a COOKIE no cookie fits, or two, is FORMERR.
    for (id, options) in [
        (0x0709u16, vec![(10u16, &[1u8; 7][..])]),
        (0x070a, vec![(10, &[1u8; 9][..])]),
        (0x070b, vec![(10, &[1u8; 15][..])]),
        (0x070c, vec![(10, &[1u8; 41][..])]),
        (0x070d, vec![(10, &[1u8; 8][..]), (10, &[2u8; 8][..])]),
        (0x070e, vec![(10, &[][..])]),
    ] {
        let mut bad = header(id, 0, [1, 0, 0, 1]);
        bad.extend(&q_web0);
        bad.extend(opt(1232, 0, &options));
        let lens: Vec<usize> = options.iter().map(|(_, d)| d.len()).collect();
        c.same(&format!("malformed COOKIE {lens:?}"), bad, Rcode(FORMERR, with_opt), id == 0x0709);
    }
    let mut nsid = header(0x0706, 0, [1, 0, 0, 1]);
    nsid.extend(&q_web0);
    nsid.extend(opt(1232, 0, &[(3, b"")]));
    c.same("NSID request (ignored)", nsid, Rcode(NOERROR, web0_with_opt), false);
    let mut opt_in_answer = header(0x0707, 0, [1, 1, 0, 0]);
    opt_in_answer.extend(&q_web0);
    opt_in_answer.extend(opt(1232, 0, &[]));
    c.same("OPT in the answer section", opt_in_answer, Rcode(FORMERR, empty), false);

    // Opcodes other than QUERY: NOTIMP (RFC 1035 section 4.1.1), opcode echoed.
    for op in [1u16, 2, 3, 4, 5, 6, 7, 15] {
        let p = query_with(0x0800 + op, opcode(op), WEB0, A, IN, None);
        c.same(&format!("opcode {op}"), p, Rcode(NOTIMP, empty), matches!(op, 3 | 15));
    }

    // Zone transfers: REFUSED, over both transports.
    c.same("AXFR", query(0x0901, "cluster.local.", AXFR, None), Rcode(REFUSED, empty), true);
    c.same("IXFR", query(0x0902, "cluster.local.", IXFR, None), Rcode(REFUSED, empty), true);
    c.same("AXFR of a reverse zone", query(0x0903, "10.in-addr.arpa.", AXFR, None), Rcode(REFUSED, empty), false);
    // Signed with the key the rule names (RFC 8945): served over TCP, every message signed; an
    // AXFR over UDP is NOTIMP (RFC 5936 section 4.2); a signed query gets a signed answer.
    let keys = KeyRing::parse(KEY_FILE).expect("key file");
    let signer = keys.signer(&Name::from_ascii(KEY_NAME).unwrap()).unwrap();
    let sign = |p: Vec<u8>| signer.sign_request(p).unwrap();
    c.both(
        "signed AXFR",
        sign(query(0x0904, "cluster.local.", AXFR, None)),
        Rcode(NOTIMP, empty),
        Rcode(NOERROR, ok),
        false,
    );
    c.both(
        "signed AXFR of a reverse zone",
        sign(query(0x0905, "10.in-addr.arpa.", AXFR, Some(1232))),
        Rcode(NOTIMP, empty),
        Rcode(NOERROR, ok),
        false,
    );
    c.same("signed SOA", sign(query(0x0906, "cluster.local.", SOA, None)), Rcode(NOERROR, ok), false);
    c.same("signed AXFR below the apex", sign(query(0x0907, WEB0, AXFR, None)), Rcode(NOTAUTH, empty), false);
    // RFC 8945 section 5.3: a signed reply whose TSIG would not fit is cut (TC=1, no records but
    // the TSIG), so the client asks again over TCP; 28 addresses fit 512 octets, not with the TSIG.
    c.both(
        "signed A of 28 addresses, no EDNS",
        sign(query(0x0909, "med.default.svc.cluster.local.", A, None)),
        Rcode(NOERROR, signed_and_cut),
        Rcode(NOERROR, signed_28_addresses),
        false,
    );
    let mut bad_mac = sign(query(0x0908, "cluster.local.", AXFR, None));
    let last = bad_mac.len() - 10;
    bad_mac[last] ^= 0xff;
    c.same("AXFR with a bad MAC", bad_mac, Rcode(NOTAUTH, empty), false);
    // A TSIG record whose RDATA runs past its last field (RDLENGTH 4 more than its fields) is
    // malformed: FORMERR (RFC 8945 section 5.2; found by cargo-fuzz, answered NOTAUTH as an
    // unknown key, with an OPT the request could not be read for).
    let mut trailing = header(0x090a, 0, [1, 0, 0, 1]);
    trailing.extend(question(&name("cluster.local."), SOA, IN));
    let key = name("no-such-key.");
    let mut record = tsig(&key, 0x090a);
    let rdlen = key.len() + 8;
    let longer = u16::from_be_bytes([record[rdlen], record[rdlen + 1]]) + 4;
    record[rdlen..rdlen + 2].copy_from_slice(&longer.to_be_bytes());
    record.extend([0, 0, 0, 0]);
    trailing.extend(record);
    c.same("TSIG with octets past its last field", trailing, Rcode(FORMERR, empty), true);

    // ANY: minimal answers (RFC 8482), never every RRset at the name.
    c.same("ANY with addresses", query(0x0a01, WEB0, ANY, None), Rcode(NOERROR, any_web0), true);
    c.same(
        "ANY at a name with addresses and SRV",
        query(0x0a02, "nginx.default.svc.cluster.local.", ANY, None),
        Rcode(NOERROR, any_nginx),
        true,
    );
    c.same(
        "ANY dual stack with SRV",
        query(0x0a03, "dual.default.svc.cluster.local.", ANY, None),
        Rcode(NOERROR, any_dual),
        false,
    );
    c.same(
        "ANY at a port name",
        query(0x0a04, "_web._tcp.nginx.default.svc.cluster.local.", ANY, None),
        Rcode(NOERROR, any_port),
        true,
    );
    c.same("ANY at the apex", query(0x0a05, "cluster.local.", ANY, None), Rcode(NOERROR, any_apex), true);
    // A `*` label is not a wildcard we hold (RFC 4592): `*.<apex>` is no name, not the apex
    // (found by cargo-fuzz: the general path took it for the apex, as hickory counts labels
    // without a leading `*`).
    c.same("A at *.<apex>", query(0x0a0a, "*.Cluster.LOCAL.", A, None), Rcode(NXDOMAIN, soa_only), true);
    c.same("SOA at *.<apex>", query(0x0a0b, "*.cluster.local.", SOA, None), Rcode(NXDOMAIN, soa_only), true);
    c.same("NS at *.<apex>", query(0x0a0c, "*.cluster.local.", NS, Some(1232)), Rcode(NXDOMAIN, soa_only), true);
    c.same(
        "ANY at dns-version",
        query(0x0a06, "dns-version.cluster.local.", ANY, None),
        Rcode(NOERROR, any_version),
        true,
    );
    c.same(
        "ANY at a reverse name",
        query(0x0a07, "5.1.244.10.in-addr.arpa.", ANY, None),
        Rcode(NOERROR, any_ptr),
        false,
    );
    c.same(
        "ANY of an empty non-terminal",
        query(0x0a08, "default.svc.cluster.local.", ANY, None),
        Rcode(NOERROR, soa_only),
        false,
    );

    // Other classes: REFUSED (CHAOS version.bind and friends reveal nothing).
    c.same(
        "CHAOS version.bind TXT",
        query_with(0x0b01, 0, "version.bind.", TXT, CH, None),
        Rcode(REFUSED, empty),
        true,
    );
    c.same(
        "CHAOS hostname.bind TXT",
        query_with(0x0b02, 0, "hostname.bind.", TXT, CH, None),
        Rcode(REFUSED, empty),
        false,
    );
    c.same(
        "CHAOS id.server TXT with EDNS",
        query_with(0x0b03, 0, "id.server.", TXT, CH, Some(1232)),
        Rcode(REFUSED, with_opt),
        false,
    );
    c.same("HESIOD class", query_with(0x0b04, 0, WEB0, A, HS, None), Rcode(REFUSED, empty), false);
    c.same("class NONE", query_with(0x0b05, 0, WEB0, A, NONE, None), Rcode(REFUSED, empty), false);
    c.same("CHAOS A in our zone", query_with(0x0b06, 0, WEB0, A, CH, None), Rcode(REFUSED, empty), false);

    // Size limits: 512 without EDNS, the client's size capped at 1232 with it; TC=1 when the
    // answer does not fit, the whole answer over TCP.
    c.both(
        "120 addresses, no EDNS",
        query(0x0c01, "big.default.svc.cluster.local.", A, None),
        Rcode(NOERROR, truncated_empty),
        Rcode(NOERROR, all_120),
        false,
    );
    c.both(
        "120 addresses, EDNS 4096 capped at 1232",
        query(0x0c02, "big.default.svc.cluster.local.", A, Some(4096)),
        Rcode(NOERROR, truncated_empty),
        Rcode(NOERROR, all_120),
        false,
    );
    c.both(
        "120 addresses, EDNS 100 raised to 512",
        query(0x0c03, "big.default.svc.cluster.local.", A, Some(100)),
        Rcode(NOERROR, truncated_empty),
        Rcode(NOERROR, all_120),
        false,
    );
    c.same(
        "SRV with additional addresses",
        query(0x0c04, "nginx.default.svc.cluster.local.", SRV, None),
        Rcode(NOERROR, ok),
        true,
    );

    // Odd but well-formed: answered normally.
    c.same("TC set in a query", query_with(0x0d01, TC, WEB0, A, IN, None), Rcode(NOERROR, web0), false);
    c.same("Z bit set", query_with(0x0d02, 0x0040, WEB0, A, IN, None), Rcode(NOERROR, web0), false);
    c.same("class ANY", query_with(0x0d03, 0, WEB0, A, ANY, None), Rcode(NOERROR, web0), false);
    c.same("outside the zones", query(0x0d04, "example.com.", A, None), Rcode(REFUSED, empty), true);
    c.same("root NS", query(0x0d05, ".", NS, None), Rcode(REFUSED, empty), true);
    c.same(
        "CNAME outside the zone",
        query(0x0d06, "ext.default.svc.cluster.local.", A, None),
        Rcode(NOERROR, ok),
        false,
    );
    let mut trailing = query(0x0d08, WEB0, A, None);
    trailing.extend([0xde, 0xad, 0xbe, 0xef]);
    c.same("trailing octets after the question", trailing, Rcode(NOERROR, web0), false);
    c.same(
        "binary label",
        ptr_q(
            0x0d07,
            &[3, 0, 0xff, b'.', 7, b'c', b'l', b'u', b's', b't', b'e', b'r', 5, b'l', b'o', b'c', b'a', b'l', 0],
        ),
        Rcode(NXDOMAIN, soa_only),
        false,
    );
    c.0
}

/// Packets that expose known bugs (see `tests/packet_corpus.rs`, one test each): the expected
/// outcome is the correct one, which the server does not give yet.
pub mod bugs {
    use super::*;

    const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";

    /// A question name of 256 octets (one more than RFC 1035 section 3.1 allows) under a forward
    /// zone: FORMERR, as for any longer name.
    pub fn name_of_256_octets() -> Case {
        let packet = query(0x0508, &name_of_wire_len(256), wire::A, None);
        let e = Expect::Rcode(rcode::FORMERR, empty);
        Case { name: "name of 256 octets".into(), packet, udp: e, tcp: e, live: true }
    }

    fn with_options(id: u16, options: &[u8]) -> Vec<u8> {
        let mut p = header(id, 0, [1, 0, 0, 1]);
        p.extend(question(&name(WEB0), wire::A, wire::IN));
        let mut o = opt(1232, 0, &[]);
        let l = o.len();
        o[l - 2..].copy_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        p.extend(o);
        p
    }

    /// An EDNS Client Subnet option with an unknown FAMILY: FORMERR (RFC 7871 section 6: "A query
    /// with a wrongly formatted option (e.g., an unknown FAMILY) MUST be rejected and a FORMERR
    /// response MUST be returned").
    pub fn ecs_unknown_family() -> Case {
        let packet = with_options(0x0e01, &[0, 8, 0, 4, 0, 3, 0, 0]);
        let e = Expect::Rcode(rcode::FORMERR, empty);
        Case { name: "ECS option with FAMILY 3".into(), packet, udp: e, tcp: e, live: true }
    }

    /// An EDNS option whose length runs past the end of the OPT's RDATA: a malformed message,
    /// FORMERR.
    pub fn option_overruns_opt() -> Case {
        let packet = with_options(0x0e02, &[0xfd, 0xe9, 0, 10]);
        let e = Expect::Rcode(rcode::FORMERR, empty);
        Case { name: "EDNS option longer than the OPT RDATA".into(), packet, udp: e, tcp: e, live: true }
    }

    /// A question whose name is a compression pointer into the header, at `offset` (2: the flags
    /// octet, 0x00 in the query, so the name is the root). The reply must not copy the pointer:
    /// there it points at the reply's own flags. `expect` is unused (see the test).
    pub fn question_pointer_into_header(offset: u8) -> Case {
        let mut packet = header(0x0f00 + u16::from(offset), 0, [1, 0, 0, 0]);
        packet.extend([0xc0, offset, 0, 1, 0, 1]);
        let e = Expect::Rcode(rcode::REFUSED, ok);
        Case { name: format!("question name pointing at header offset {offset}"), packet, udp: e, tcp: e, live: true }
    }

    /// Two questions of `len` octets each (distinct names under cluster.local.).
    fn two_questions(id: u16, flags: u16, len: usize, edns: Option<(u16, u8)>) -> Vec<u8> {
        let mut p = header(id, flags, [2, 0, 0, u16::from(edns.is_some())]);
        let first = name_of_wire_len(len);
        let second = first.replacen('a', "b", 1);
        p.extend(question(&name(&first), wire::A, wire::IN));
        p.extend(question(&name(&second), wire::A, wire::IN));
        if let Some((payload, version)) = edns {
            p.extend(opt(payload, version, &[]));
        }
        p
    }

    /// Error replies whose echoed question section does not fit in 512 octets: the rcode must
    /// still reach the client over UDP (without the questions, or truncated), as it does over TCP.
    /// - two 255-octet questions: FORMERR (RFC 9619), 530 octets of questions;
    /// - the same with opcode STATUS: NOTIMP;
    /// - two 245-octet questions and EDNS version 1 with a 512 payload: BADVERS, whose OPT (the
    ///   rcode's upper bits, RFC 6891 section 6.1.3) does not fit after the 510 octets before it.
    pub fn oversized_error_replies() -> Vec<Case> {
        let case = |name: &str, packet: Vec<u8>, rcode: u16, more: fn(&Message) -> Result<(), String>| {
            let e = Expect::Rcode(rcode, more);
            Case { name: name.into(), packet, udp: e, tcp: e, live: true }
        };
        vec![
            case("two 255-octet questions", two_questions(0x1001, 0, 255, None), rcode::FORMERR, ok),
            case(
                "two 255-octet questions, STATUS",
                two_questions(0x1002, wire::opcode(2), 255, None),
                rcode::NOTIMP,
                ok,
            ),
            case("two 245-octet questions, EDNS 1", two_questions(0x1003, 0, 245, Some((512, 1))), rcode::BADVERS, ok),
        ]
    }

    /// Requests whose TSIG does not verify (a key we do not know), whose NOTAUTH reply (RFC 8945
    /// section 5.2) echoed every question and carried the request's key name: over UDP it must
    /// still fit in 512 octets (found by cargo-fuzz's `packet` target: 47 questions, 736 octets).
    /// - three 200-octet questions: RFC 9619 allows one; the reply carries none, as the FORMERR
    ///   for such a request does;
    /// - one 255-octet question and a 250-octet key name, no EDNS: 12 + 259 + 306 octets with the
    ///   question; without it (and TC=1, as RFC 8945 section 5.3 cuts a signed reply) it fits.
    pub fn unverified_tsig_replies() -> Vec<Case> {
        /// No records, and a TSIG record last that says BADKEY.
        fn badkey(m: &Message) -> Result<(), String> {
            empty(m)?;
            match m.additionals.last().map(|r| &r.data) {
                Some(RData::TSIG(t)) if t.error == Some(TsigError::BadKey) => Ok(()),
                other => Err(format!("want a TSIG record with BADKEY last, got {other:?}")),
            }
        }
        let case = |name: &str, packet: Vec<u8>| {
            let e = Expect::Rcode(rcode::NOTAUTH, badkey);
            Case { name: name.into(), packet, udp: e, tcp: e, live: true }
        };
        let unknown = name("no-such-key.");
        let mut three = header(0x1101, 0, [3, 0, 0, 1]);
        for c in ["a", "b", "c"] {
            three.extend(question(&name(&name_of_wire_len(200).replace('a', c)), wire::A, wire::IN));
        }
        three.extend(tsig(&unknown, 0x1101));
        let mut long = header(0x1102, 0, [1, 0, 0, 1]);
        long.extend(question(&name(&name_of_wire_len(255)), wire::A, wire::IN));
        long.extend(tsig(&name(&name_of_wire_len(250).replace("cluster.local.", "keys.example.")), 0x1102));
        vec![
            case("three questions, TSIG of an unknown key", three),
            case("a 255-octet question, TSIG of an unknown 250-octet key", long),
        ]
    }

    /// Every packet above.
    pub fn all() -> Vec<Case> {
        let mut v = vec![
            name_of_256_octets(),
            ecs_unknown_family(),
            option_overruns_opt(),
            question_pointer_into_header(2),
            question_pointer_into_header(3),
        ];
        v.extend(oversized_error_replies());
        v.extend(unverified_tsig_replies());
        v
    }
}

/// Well-formed queries of many shapes: names, types, classes, flags and EDNS sizes (the fuzzer's
/// starting points, with [`cases`]).
pub fn valid_queries() -> Vec<Vec<u8>> {
    let names = [
        "web-0.nginx.default.svc.cluster.local.",
        "WEB-1.Nginx.Default.SVC.Cluster.LOCAL.",
        "nginx.default.svc.cluster.local.",
        "_web._tcp.nginx.default.svc.cluster.local.",
        "_tcp.nginx.default.svc.cluster.local.",
        "api.default.svc.cluster.local.",
        "dual.default.svc.cluster.local.",
        "big.default.svc.cluster.local.",
        "ext.default.svc.cluster.local.",
        "default.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
        "dns-version.cluster.local.",
        "10-244-1-5.default.pod.cluster.local.",
        "5.1.244.10.in-addr.arpa.",
        "10.in-addr.arpa.",
        "example.com.",
        ".",
    ];
    let types = [wire::A, wire::AAAA, wire::SRV, wire::PTR, wire::TXT, wire::SOA, wire::NS, wire::ANY, 99, 65280];
    let edns = [None, Some(0), Some(512), Some(1232), Some(4096), Some(65535)];
    let flags = [0, wire::RD, wire::CD | wire::RD, 0x0020];
    let mut out = Vec::new();
    let mut id: u16 = 1;
    for (i, n) in names.iter().enumerate() {
        for (j, t) in types.iter().enumerate() {
            let e = edns[(i + j) % edns.len()];
            let fl = flags[(i * 3 + j) % flags.len()];
            out.push(query_with(id, fl, n, *t, wire::IN, e));
            id = id.wrapping_mul(31).wrapping_add(7);
        }
    }
    out
}
