//! Zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), from the journal's snapshots
//! ([`crate::journal`]), never from the live index.
//!
//! A transfer is a [`Transfer`]: a generator of response messages that holds one snapshot (an
//! `Arc`), walks it in name order and encodes a message at a time, so the zone is never in one
//! buffer and every message of one transfer carries the data of the one serial its SOA names.
//! Over UDP an IXFR gets the current SOA alone (RFC 1995 section 2: the client then asks over
//! TCP); AXFR is TCP only (RFC 5936 section 4.2).
//!
//! Who may transfer is the [`TransferPolicy`]: a client address must match an `allow-transfer`
//! network, and when that rule names a key, the request must be signed with it (TSIG).

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::ops::Bound;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use ipnet::IpNet;

use super::answer::Zones;
use super::tsig::ResponseSigner;
use crate::index::serial_gt;
use crate::journal::{Delta, Journal, Versions};

/// A message of a transfer grows to about this many octets before the next one starts.
const MESSAGE_TARGET: usize = 16 * 1024;
/// Records per message at most: hickory-proto compresses the first 120 names of a message only
/// (an Unbound-derived bound against quadratic work), and a record has up to two names (owner and
/// SRV or PTR target), so 60 records keep every name compressed. Measured at 150,000 pods: 16 KiB
/// messages of ~250 records made the zone 1.38x Knot's octets.
const MESSAGE_RECORDS: u16 = 60;
/// Names (or addresses) taken from the snapshot at a time.
const BATCH: usize = 64;

/// One `allow-transfer` rule: a network, and the TSIG key its requests must be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowTransfer {
    /// Client addresses allowed.
    pub net: IpNet,
    /// The key the request must carry (a verified TSIG signature), when named.
    pub key: Option<Name>,
}

/// Splits `VALUE[,key=NAME]` into the value and the key name.
pub fn split_key(text: &str) -> Result<(&str, Option<Name>), String> {
    let mut parts = text.split(',');
    let value = parts.next().unwrap_or("").trim();
    let mut key = None;
    for part in parts {
        let Some(name) = part.trim().strip_prefix("key=") else {
            return Err(format!("`{part}` is not `key=NAME`"));
        };
        let name = Name::from_ascii(name.trim()).map_err(|e| format!("`{name}` is not a key name ({e})"))?;
        key = Some(super::tsig::key_name(&name));
    }
    Ok((value, key))
}

impl FromStr for AllowTransfer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (value, key) = split_key(text)?;
        let net = match value.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => {
                IpNet::from(value.parse::<IpAddr>().map_err(|_| format!("`{value}` is not a CIDR or an address"))?)
            }
        };
        Ok(Self { net, key })
    }
}

impl fmt::Display for AllowTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{},key={}", self.net, k),
            None => write!(f, "{}", self.net),
        }
    }
}

/// Who may transfer the zones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferPolicy {
    /// The rules; none: transfers are refused.
    pub allow: Vec<AllowTransfer>,
}

impl TransferPolicy {
    /// Whether a request from `ip`, signed with the verified key `key` (if any), may transfer.
    pub fn allows(&self, ip: IpAddr, key: Option<&Name>) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|r| r.net.contains(&ip) && (r.key.is_none() || r.key.as_ref() == key))
    }
}

/// The query type of a message with one question (no pointer can precede the first question),
/// read without parsing the message: `AXFR` and `IXFR` take [`Transfer`].
pub fn question_type(raw: &[u8]) -> Option<RecordType> {
    if raw.len() < 12 || raw[2] & 0x80 != 0 || u16::from_be_bytes([raw[4], raw[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    loop {
        let len = usize::from(*raw.get(at)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    let t = raw.get(at + 1..at + 3)?;
    Some(RecordType::from(u16::from_be_bytes([t[0], t[1]])))
}

/// What a transfer request asks.
#[derive(Debug, Clone)]
pub struct XfrRequest {
    /// The parsed request.
    pub message: Message,
    /// `AXFR` or `IXFR`.
    pub qtype: RecordType,
    /// IXFR: the client's serial (the SOA in the authority section).
    pub client_serial: Option<u32>,
}

impl XfrRequest {
    /// Parses a request whose question is AXFR or IXFR; `Err` is the rcode of a malformed one
    /// (RFC 1995 section 3: an IXFR carries the client's SOA in the authority section).
    pub fn parse(raw: &[u8]) -> Result<Self, ResponseCode> {
        let message = Message::from_vec(raw).map_err(|_| ResponseCode::FormErr)?;
        let [query] = message.queries.as_slice() else { return Err(ResponseCode::FormErr) };
        let qtype = query.query_type();
        let client_serial = match qtype {
            RecordType::IXFR => Some(
                message
                    .authorities
                    .iter()
                    .find_map(|r| match &r.data {
                        RData::SOA(soa) => Some(soa.serial),
                        _ => None,
                    })
                    .ok_or(ResponseCode::FormErr)?,
            ),
            _ => None,
        };
        Ok(Self { message, qtype, client_serial })
    }
}

/// How a transfer's content is made.
enum Plan {
    /// The whole zone: SOA, apex records, every name (or address) in order, SOA.
    Full { stage: Stage },
    /// Records worked out in advance (an incremental transfer, or one SOA).
    Ready(VecDeque<Record>),
}

#[derive(Clone)]
enum Stage {
    Head,
    Names(Option<Arc<str>>),
    Addresses(Option<IpAddr>),
    Tail,
    Done,
}

/// One transfer's response messages, made one at a time ([`Transfer::next_message`]).
pub struct Transfer {
    zones: Arc<Zones>,
    versions: Arc<Versions>,
    apex: Name,
    net: Option<IpNet>,
    request: Message,
    plan: Plan,
    pending: VecDeque<Record>,
    first: bool,
    finished: bool,
    signer: Option<ResponseSigner>,
    /// The metrics' kind label.
    pub kind: &'static str,
    /// Octets produced so far.
    pub bytes: u64,
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer").field("apex", &self.apex).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// The outcome of a transfer request.
#[derive(Debug)]
pub enum Outcome {
    /// Stream these messages.
    Stream(Box<Transfer>),
    /// Answer with this rcode alone (the zone apex for the metrics, when known).
    Error(ResponseCode, Option<Name>),
}

impl Transfer {
    /// Plans the response to `request`, already allowed, from the journal's current versions.
    /// `udp`: only an IXFR comes this way, and gets the current SOA alone.
    pub fn plan(zones: Arc<Zones>, journal: &Journal, request: XfrRequest, udp: bool) -> Outcome {
        let Some(query) = request.message.queries.first() else {
            return Outcome::Error(ResponseCode::FormErr, None);
        };
        // Outside every zone of ours: REFUSED, as any question there (the general path's rule).
        // Inside one but not at a transferable apex: RFC 5936 section 2.2.1, NOTAUTH.
        let Some((apex, net)) = zones.transfer_zone(query.name()) else {
            let ours = zones.locate(query.name()).is_some();
            return Outcome::Error(if ours { ResponseCode::NotAuth } else { ResponseCode::Refused }, None);
        };
        if !zones.index().is_synced() || !journal.is_ready() {
            return Outcome::Error(ResponseCode::ServFail, Some(apex));
        }
        let versions = journal.versions();
        let current = versions.snapshot.serial;
        let soa = |serial| zones.soa_at(&apex, serial);
        let (kind, plan) = match (request.qtype, request.client_serial) {
            (RecordType::IXFR, Some(client)) if client == current || serial_gt(client, current) || udp => {
                // RFC 1995 section 2 and 4: up to date (or newer, or over UDP): the SOA alone.
                ("ixfr_current", Plan::Ready(VecDeque::from([soa(current)])))
            }
            (RecordType::IXFR, Some(client)) => match versions.since(client) {
                Some(deltas) => ("ixfr", Plan::Ready(incremental(&zones, &apex, net, current, &deltas))),
                // RFC 1995 section 4: the journal does not reach back: the whole zone.
                None => ("ixfr_full", Plan::Full { stage: Stage::Head }),
            },
            _ => ("axfr", Plan::Full { stage: Stage::Head }),
        };
        Outcome::Stream(Box::new(Transfer {
            zones,
            versions,
            apex,
            net,
            request: request.message,
            plan,
            pending: VecDeque::new(),
            first: true,
            finished: false,
            signer: None,
            kind,
            bytes: 0,
        }))
    }

    /// Signs every message with `signer` (the request was signed: RFC 8945 section 5.3.1).
    pub fn sign_with(&mut self, signer: ResponseSigner) {
        self.signer = Some(signer);
    }

    /// The zone's apex.
    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The serial this transfer sends.
    pub fn serial(&self) -> u32 {
        self.versions.snapshot.serial
    }

    /// Refills `pending` from the plan; false when nothing is left.
    fn refill(&mut self) -> bool {
        let Plan::Full { stage } = &mut self.plan else {
            if let Plan::Ready(records) = &mut self.plan {
                self.pending.append(records);
            }
            return !self.pending.is_empty();
        };
        let snap = &self.versions.snapshot;
        loop {
            match stage.clone() {
                Stage::Head => {
                    self.pending.push_back(self.zones.soa_at(&self.apex, snap.serial));
                    self.pending.extend(self.zones.apex_records(&self.apex, self.net.is_none()));
                    *stage = if self.net.is_none() { Stage::Names(None) } else { Stage::Addresses(None) };
                    return true;
                }
                Stage::Names(after) => {
                    let lower = match &after {
                        Some(k) => Bound::Excluded(k.clone()),
                        None => Bound::Unbounded,
                    };
                    let mut last = None;
                    for (key, data) in snap.names.range((lower, Bound::Unbounded)).take(BATCH) {
                        self.pending.extend(self.zones.name_records(&self.apex, key, &data.found()));
                        last = Some(key.clone());
                    }
                    *stage = if last.is_some() { Stage::Names(last) } else { Stage::Tail };
                    if !self.pending.is_empty() {
                        return true;
                    }
                }
                Stage::Addresses(after) => {
                    let Some(net) = self.net else {
                        *stage = Stage::Tail;
                        continue;
                    };
                    let lower = match after {
                        Some(ip) => Bound::Excluded(ip),
                        None => Bound::Included(net.network()),
                    };
                    let mut last = None;
                    for (ip, targets) in snap.ptrs.range((lower, Bound::Included(net.broadcast()))).take(BATCH) {
                        self.pending.extend(self.zones.ptr_records(*ip, targets));
                        last = Some(*ip);
                    }
                    *stage = if last.is_some() { Stage::Addresses(last) } else { Stage::Tail };
                    if !self.pending.is_empty() {
                        return true;
                    }
                }
                Stage::Tail => {
                    self.pending.push_back(self.zones.soa_at(&self.apex, snap.serial));
                    *stage = Stage::Done;
                    return true;
                }
                Stage::Done => return false,
            }
        }
    }

    /// The next response message, or `None` once the last was made.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        let mut buf = Vec::with_capacity(MESSAGE_TARGET + 1024);
        let mut count: u16 = 0;
        {
            let mut encoder = BinEncoder::new(&mut buf);
            // The header is written at the end, once the count is known.
            let _ = encoder.emit_vec(&[0; 12]);
            if self.first {
                // RFC 5936 section 2.2.1: the first message copies the question.
                for q in &self.request.queries {
                    let _ = q.emit(&mut encoder);
                }
            }
            while encoder.len() < MESSAGE_TARGET && count < MESSAGE_RECORDS {
                if self.pending.is_empty() && !self.refill() {
                    self.finished = true;
                    break;
                }
                let Some(record) = self.pending.pop_front() else { break };
                if record.emit(&mut encoder).is_err() {
                    // Cannot happen for our records. Never send a half record: end the transfer
                    // without its closing SOA, which the client sees as a failed transfer.
                    self.finished = true;
                    return None;
                }
                count += 1;
            }
        }
        if self.pending.is_empty() && !self.finished && !self.refill() {
            self.finished = true;
        }
        let header = response_header(&self.request, ResponseCode::NoError, u16::from(self.first), count, true);
        buf[..12].copy_from_slice(&header);
        if self.request.edns.is_some() {
            push_opt(&mut buf);
        }
        if let Some(s) = self.signer.as_mut() {
            buf = s.sign(buf);
        }
        self.first = false;
        self.bytes += buf.len() as u64;
        Some(buf)
    }
}

/// The records of an incremental transfer (RFC 1995 section 4): the current SOA, then for each
/// difference its old SOA, the records it deletes, its new SOA and the records it adds, then the
/// current SOA again.
fn incremental(
    zones: &Zones,
    apex: &Name,
    net: Option<IpNet>,
    current: u32,
    deltas: &[Arc<Delta>],
) -> VecDeque<Record> {
    let mut out = VecDeque::new();
    out.push_back(zones.soa_at(apex, current));
    for d in deltas {
        let (mut deleted, mut added) = (Vec::new(), Vec::new());
        match net {
            None => {
                for (key, before, after) in &d.names {
                    let old = before.as_ref().map(|v| zones.name_records(apex, key, &v.found())).unwrap_or_default();
                    let new = after.as_ref().map(|v| zones.name_records(apex, key, &v.found())).unwrap_or_default();
                    diff(old, new, &mut deleted, &mut added);
                }
            }
            Some(net) => {
                for (ip, before, after) in d.ptrs.iter().filter(|(ip, _, _)| net.contains(ip)) {
                    let old = before.as_ref().map(|t| zones.ptr_records(*ip, t)).unwrap_or_default();
                    let new = after.as_ref().map(|t| zones.ptr_records(*ip, t)).unwrap_or_default();
                    diff(old, new, &mut deleted, &mut added);
                }
            }
        }
        out.push_back(zones.soa_at(apex, d.from));
        out.extend(deleted);
        out.push_back(zones.soa_at(apex, d.to));
        out.extend(added);
    }
    out.push_back(zones.soa_at(apex, current));
    out
}

/// Adds the records of `old` missing from `new` to `deleted`, and those of `new` missing from
/// `old` to `added` (a record in both is left alone).
fn diff(old: Vec<Record>, new: Vec<Record>, deleted: &mut Vec<Record>, added: &mut Vec<Record>) {
    for r in &old {
        if !new.contains(r) {
            deleted.push(r.clone());
        }
    }
    for r in new {
        if !old.contains(&r) {
            added.push(r);
        }
    }
}

/// A response header for `request`: QR, the request's ID, opcode and RD, AA when answering from
/// our zones, `rcode`, and the section counts.
pub fn response_header(request: &Message, rcode: ResponseCode, qd: u16, an: u16, aa: bool) -> [u8; 12] {
    let m = &request.metadata;
    let mut h = [0u8; 12];
    h[..2].copy_from_slice(&m.id.to_be_bytes());
    h[2] = 0x80 | (u8::from(m.op_code) << 3) | (u8::from(aa) << 2) | u8::from(m.recursion_desired);
    h[3] = rcode.low();
    h[4..6].copy_from_slice(&qd.to_be_bytes());
    h[6..8].copy_from_slice(&an.to_be_bytes());
    h
}

/// Appends an OPT record (RFC 6891 section 7: a request with EDNS is answered with EDNS;
/// version 0, our UDP size, no option) and counts it.
fn push_opt(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[0, 0, 41]);
    buf.extend_from_slice(&super::general::MAX_UDP_PAYLOAD.to_be_bytes());
    buf.extend_from_slice(&[0; 6]);
    let ar = u16::from_be_bytes([buf[10], buf[11]]).wrapping_add(1);
    buf[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// A reply to `request` with `rcode` and no records (with an OPT when the request had one). It
/// echoes the question when `echo` is set and the request asked exactly one (RFC 9619); a reply
/// to any other count carries none, as the general path's FORMERR to such a request does, so
/// that a question section of any size never makes it too large.
pub fn error_reply(request: &Message, rcode: ResponseCode, echo: bool) -> Vec<u8> {
    let question = match request.queries.as_slice() {
        [one] if echo => Some(one),
        _ => None,
    };
    let mut buf = Vec::with_capacity(64);
    {
        let mut encoder = BinEncoder::new(&mut buf);
        let _ = encoder.emit_vec(&[0; 12]);
        if let Some(q) = question {
            let _ = q.emit(&mut encoder);
        }
    }
    let header = response_header(request, rcode, u16::from(question.is_some()), 0, false);
    buf[..12].copy_from_slice(&header);
    if request.edns.is_some() {
        push_opt(&mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_rules_parse_and_match() {
        let r: AllowTransfer = "10.0.0.0/8,key=Transfer.Key".parse().unwrap();
        assert_eq!(r.net.to_string(), "10.0.0.0/8");
        assert_eq!(r.key.as_ref().unwrap().to_ascii(), "transfer.key.");
        let one: AllowTransfer = "127.0.0.1".parse().unwrap();
        assert_eq!(one.net.to_string(), "127.0.0.1/32");
        assert!("10.0.0.0/8,secret=x".parse::<AllowTransfer>().is_err());
        assert!("nope".parse::<AllowTransfer>().is_err());
        let policy = TransferPolicy { allow: vec![one, r] };
        let key = Name::from_ascii("transfer.key.").unwrap();
        assert!(policy.allows("127.0.0.1".parse().unwrap(), None));
        assert!(policy.allows("::ffff:127.0.0.1".parse().unwrap(), None), "v4-mapped");
        assert!(!policy.allows("10.1.2.3".parse().unwrap(), None), "the key is required");
        assert!(policy.allows("10.1.2.3".parse().unwrap(), Some(&key)));
        assert!(!policy.allows("192.0.2.1".parse().unwrap(), Some(&key)));
        assert!(!TransferPolicy::default().allows("127.0.0.1".parse().unwrap(), None), "none: refused");
    }

    #[test]
    fn the_question_type_is_read_without_parsing() {
        let mut q = Message::query();
        q.add_query(hickory_proto::op::Query::query(Name::from_ascii("cluster.local.").unwrap(), RecordType::AXFR));
        let raw = q.to_vec().unwrap();
        assert_eq!(question_type(&raw), Some(RecordType::AXFR));
        assert_eq!(question_type(&raw[..raw.len() - 3]), None);
        assert_eq!(question_type(&[0; 5]), None);
    }
}
