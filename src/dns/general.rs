//! The general answer path: any request, bytes in, bytes out, built on hickory-server's request
//! parsing (`Request`, `MessageRequest`) and hickory-proto's message encoding
//! (`emit_message_parts`), with the message-level rules (EDNS, truncation, opcodes, question
//! count) around [`Zones::answer`].
//!
//! Entry point: [`Responder::respond`]. The UDP fast path ([`super::fast`]) answers the common
//! queries itself and hands everything else here; TCP always comes here.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use hickory_proto::op::{Edns, Header, MessageType, Metadata, OpCode, Query, ResponseCode, emit_message_parts};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::answer::{Answer, Zones};
use super::cookie;
use super::tsig;
use super::xfr::{self, Outcome, Transfer, XfrRequest};
use crate::metrics::{TransferLabels, metrics};

/// RFC 1035 section 4.2.1: without EDNS a UDP message is at most 512 octets.
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// The largest UDP reply we send, whatever the client offers: 1232 octets avoids IP
/// fragmentation on any path (DNS Flag Day 2020 recommendation).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The UDP size limit for a request: the client's EDNS payload size clamped to 512..=1232, or
/// 512 without EDNS.
pub fn udp_limit(edns: Option<&Edns>) -> u16 {
    edns.map_or(MIN_UDP_PAYLOAD, |e| e.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD))
}

/// The largest reply `transport` carries to a request with `edns`: [`udp_limit`] over UDP, a
/// whole message over TCP (65,535 octets, RFC 1035 section 4.2.2).
fn reply_limit(transport: Transport, edns: Option<&Edns>) -> u16 {
    match transport {
        Transport::Udp => udp_limit(edns),
        Transport::Tcp => u16::MAX,
    }
}

/// The transport a request came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: replies are size-limited.
    Udp,
    /// TCP: replies go whole (up to 65535 octets).
    Tcp,
}

/// What came of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The wire bytes to send.
    pub bytes: Vec<u8>,
    /// The response code sent.
    pub rcode: ResponseCode,
    /// The question's type, if there was one question.
    pub qtype: Option<RecordType>,
    /// Sent with TC=1 because the answer did not fit.
    pub truncated: bool,
}

/// The reply to a zone transfer request.
#[derive(Debug)]
pub enum TransferReply {
    /// One message (an error, or the SOA alone).
    One(Reply),
    /// Messages to stream, in order (TCP).
    Stream(Box<Transfer>),
}

/// Answers requests from [`Zones`], which can be swapped at run time (configuration reload).
#[derive(Debug)]
pub struct Responder {
    zones: ArcSwap<Zones>,
}

/// A reply's message: the header from `metadata`, the question, the sections and the OPT, at
/// most `limit` octets (the encoder stops at the last whole record that fits and sets TC). The
/// question is encoded from its parsed name, which [`Responder::respond`] has checked to encode
/// as the client sent it; so its name is a target for compression, and a record owned by the
/// question's name (or a name ending in a part of it) points into it (RFC 1035 section 4.1.4),
/// as Knot, BIND and CoreDNS answer. (hickory-server's `MessageResponse` copies the question's
/// octets and leaves every owner in full.)
fn emit_reply(
    metadata: &Metadata,
    question: &Query,
    answer: &Answer,
    edns: Option<&Edns>,
    limit: u16,
) -> Result<(Vec<u8>, Header), hickory_proto::ProtoError> {
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(limit);
    let header = emit_message_parts(
        metadata,
        &mut std::iter::once(question),
        &mut answer.answers.iter(),
        &mut answer.authority.iter(),
        &mut answer.additional.iter(),
        edns,
        None,
        &mut encoder,
    )?;
    Ok((bytes, header))
}

/// The reply with these sections whole, when it fits in `limit` octets. It is encoded with a
/// bound one longest name (255 octets) past `limit` and then measured: hickory-proto's encoder
/// writes each name in full before it replaces it with a pointer, so an encoder bounded at
/// `limit` refuses a last record whose name only briefly crosses the bound, and a reply that
/// fits would come back truncated. The slack covers that one name; the bound keeps a large
/// answer asked over UDP from being encoded whole only to be dropped.
fn whole_within(
    metadata: &Metadata,
    question: &Query,
    answer: &Answer,
    edns: Option<&Edns>,
    limit: u16,
) -> Option<(Vec<u8>, Header)> {
    let bound = u16::try_from(usize::from(limit) + 255).unwrap_or(u16::MAX);
    emit_reply(metadata, question, answer, edns, bound)
        .ok()
        .filter(|(bytes, header)| !header.metadata.truncation && bytes.len() <= usize::from(limit))
}

/// The reply `bytes` cut to its header, question and OPT (EDNS, with any cookie), with TC set
/// and no records: what a UDP reply becomes when it cannot go whole (RFC 1035 section 4.2.1,
/// RFC 6891 section 7). `None` for bytes that do not parse back, and for a reply signed with
/// TSIG, whose cut copy would need a new MAC (RFC 8945).
pub fn truncated_copy(bytes: &[u8]) -> Option<Vec<u8>> {
    let message = hickory_proto::op::Message::from_vec(bytes).ok()?;
    if message.signature.is_some() {
        return None;
    }
    message.truncate().to_vec().ok()
}

impl Responder {
    /// A responder answering from `zones`.
    pub fn new(zones: Zones) -> Self {
        Self { zones: ArcSwap::from_pointee(zones) }
    }

    /// The zones answered from now (a cheap, lock-free snapshot).
    pub fn zones(&self) -> arc_swap::Guard<Arc<Zones>> {
        self.zones.load()
    }

    /// Answers from `zones` from now on (configuration reload); requests in flight finish with
    /// the zones they started with.
    pub fn replace_zones(&self, zones: Zones) {
        self.zones.store(Arc::new(zones));
    }

    /// The reply to a zone transfer request (AXFR or IXFR) in `raw`, or `None` when it is no
    /// such request, or transfers are off (the general path then refuses it, as before), or it
    /// is malformed or of an EDNS version we do not speak (the general path answers FORMERR or
    /// BADVERS). An AXFR over UDP that would be served gets NOTIMP (RFC 5936 section 4.2: AXFR
    /// is TCP only).
    pub fn transfer(&self, raw: &[u8], src: SocketAddr, transport: Transport) -> Option<TransferReply> {
        let qtype = xfr::question_type(raw)?;
        let udp = transport == Transport::Udp;
        if !matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return None;
        }
        let zones = self.zones.load_full();
        let journal = zones.journal()?.clone();
        // RFC 8945 section 5.2: the signature is checked before anything else.
        let verified = zones.keys().verify(raw, tsig::now()).ok()?;
        let unsigned = verified.as_ref().map_or(raw, |v| v.unsigned.as_slice());
        let request = XfrRequest::parse(unsigned).ok()?;
        if request.message.edns.as_ref().is_some_and(|e| e.version() > 0)
            || request.message.metadata.op_code != OpCode::Query
        {
            return None;
        }
        let mut signer = verified.as_ref().and_then(|v| v.response_signer());
        let kind = if qtype == RecordType::AXFR { "axfr" } else { "ixfr" };
        let zone = request.message.queries[0].name().to_lowercase().to_ascii();
        let count = |outcome, zone: String| {
            metrics().transfers.get_or_create(&TransferLabels { kind, zone, outcome }).inc();
        };
        let mut one = |rcode: ResponseCode| {
            let mut bytes = xfr::error_reply(&request.message, rcode, true);
            if let Some(s) = signer.as_mut() {
                bytes = s.sign(bytes);
            }
            TransferReply::One(Reply { bytes, rcode, qtype: Some(qtype), truncated: false })
        };
        if let Some(v) = verified.as_ref().filter(|v| v.error.is_some()) {
            tracing::info!(%src, zone, kind, key = %v.claimed_key(), error = ?v.error, "zone transfer refused: bad TSIG");
            count("notauth", zone);
            let (bytes, truncated) = unverified_reply(v, &request.message, transport);
            return Some(TransferReply::One(Reply {
                bytes,
                rcode: ResponseCode::NotAuth,
                qtype: Some(qtype),
                truncated,
            }));
        }
        let key = verified.as_ref().and_then(|v| v.key_name());
        if !zones.transfer_policy().allows(src.ip(), key) {
            tracing::info!(%src, zone, kind, key = ?key.map(|k| k.to_ascii()), "zone transfer refused: no allow-transfer rule matches the client and its key");
            count("refused", zone);
            return Some(one(ResponseCode::Refused));
        }
        match Transfer::plan(zones.clone(), &journal, request.clone(), udp) {
            Outcome::Stream(mut t) if !udp => {
                if let Some(s) = signer {
                    t.sign_with(s);
                }
                Some(TransferReply::Stream(t))
            }
            Outcome::Error(rcode, _) => {
                count(if rcode == ResponseCode::ServFail { "servfail" } else { "refused" }, zone);
                Some(one(rcode))
            }
            Outcome::Stream(_) if qtype == RecordType::AXFR => {
                count("refused", zone);
                Some(one(ResponseCode::NotImp))
            }
            Outcome::Stream(mut t) => {
                if let Some(s) = signer {
                    t.sign_with(s);
                }
                let bytes = t.next_message()?;
                count("ok", zone);
                Some(TransferReply::One(Reply {
                    bytes,
                    rcode: ResponseCode::NoError,
                    qtype: Some(qtype),
                    truncated: false,
                }))
            }
        }
    }

    /// The reply to the request in `raw`, or `None` when nothing must be sent: a runt shorter
    /// than a header, or a response (QR=1; never answered, so we cannot be used to reflect).
    pub fn respond(&self, raw: &[u8], src: SocketAddr, transport: Transport) -> Option<Reply> {
        if transport == Transport::Udp
            && let Some(TransferReply::One(reply)) = self.transfer(raw, src, transport)
        {
            return Some(reply);
        }
        // Never answer a runt or a response (QR=1), signed or not.
        let header = Header::read(&mut BinDecoder::new(raw)).ok()?;
        if header.metadata.message_type == MessageType::Response {
            return None;
        }
        // A malformed TSIG record (or one not last) is FORMERR, with an OPT when the request
        // had one (RFC 6891 section 7).
        let formerr = || {
            let edns = hickory_proto::op::Message::from_vec(raw)
                .ok()
                .and_then(|m| m.edns.map(|e| (udp_limit(Some(&e)), e.flags().dnssec_ok)));
            Some(bare_reply(&header.metadata, ResponseCode::FormErr, edns, false))
        };
        let zones = self.zones.load();
        match zones.keys().verify(raw, tsig::now()) {
            Ok(None) => self.respond_unsigned(raw, src, transport, 0),
            // RFC 8945 section 5.2: the signature is checked first; a reply to a signed request
            // is signed, one to a request that does not verify carries the TSIG error (and is
            // not answered).
            Ok(Some(v)) => match v.response_signer() {
                Some(mut signer) => {
                    // RFC 8945 section 5.3: the reply leaves room for its TSIG; one that does not
                    // fit then is cut (TC=1, no records) as any reply too large for UDP is.
                    let room = signer.overhead();
                    let Some(mut reply) = self.respond_unsigned(&v.unsigned, src, transport, room) else {
                        return formerr();
                    };
                    reply.bytes = signer.sign(reply.bytes);
                    Some(reply)
                }
                None => {
                    let Ok(message) = hickory_proto::op::Message::from_vec(&v.unsigned) else { return formerr() };
                    let qtype = message.queries.first().map(|q| q.query_type());
                    let (bytes, truncated) = unverified_reply(&v, &message, transport);
                    Some(Reply { bytes, rcode: ResponseCode::NotAuth, qtype, truncated })
                }
            },
            Err(tsig::Malformed) => formerr(),
        }
    }

    /// [`Responder::respond`] for a request without a TSIG record.
    /// `reserve` octets of the transport's limit are kept free (for a TSIG record added after).
    fn respond_unsigned(&self, raw: &[u8], src: SocketAddr, transport: Transport, reserve: usize) -> Option<Reply> {
        let header = Header::read(&mut BinDecoder::new(raw)).ok()?;
        if header.metadata.message_type == MessageType::Response {
            return None;
        }
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        let request = match Request::from_bytes(raw.to_vec(), src, protocol) {
            Ok(r) => r,
            // RFC 1035 section 4.1.1: a request we cannot parse gets FORMERR (header only).
            Err(_) => return Some(bare_reply(&header.metadata, ResponseCode::FormErr, None, false)),
        };
        let edns_for_errors = request.edns.as_ref().map(|e| (udp_limit(Some(e)), e.flags().dnssec_ok));
        // RFC 7873 section 5.2.2: more than one COOKIE option, or one of a length no cookie has,
        // is malformed (FORMERR); a well-formed one is answered with a server cookie.
        // (hickory keeps a COOKIE as an unknown option, its data as sent.)
        let cookies: Vec<&[u8]> = request.edns.as_ref().map_or_else(Vec::new, |e| {
            let all = e.options().get_all(EdnsCode::Cookie).into_iter();
            all.map(|o| if let EdnsOption::Unknown(_, data) = o { data.as_slice() } else { &[] }).collect()
        });
        let client_cookie = match cookies.as_slice() {
            [] => Ok(None),
            [one] => cookie::client_cookie(one).map(Some),
            _ => Err(cookie::Malformed),
        };
        let zones = self.zones.load();
        // RFC 6891 section 6.1.3: an unsupported EDNS version gets BADVERS; an opcode other than
        // QUERY gets NOTIMP; both judged before the question. RFC 9619: exactly one question.
        // With any other count the reply carries no question, so that it always fits.
        let early = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.queries.len() != 1 || client_cookie.is_err() {
            Some(ResponseCode::FormErr)
        } else {
            None
        };
        if request.queries.len() != 1 {
            let rcode = early.unwrap_or(ResponseCode::FormErr);
            return Some(bare_reply(&request.metadata, rcode, edns_for_errors, false));
        }
        // The reply echoes the question as sent; a question compressed into the header (the only
        // place a pointer in the first question can lead) would echo as another name.
        let mut plain = Vec::new();
        if request.queries.queries()[0].original().emit(&mut BinEncoder::new(&mut plain)).is_err()
            || plain != request.queries.as_bytes()
        {
            return Some(bare_reply(&request.metadata, ResponseCode::FormErr, edns_for_errors, false));
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // RFC 6891 section 7: answer EDNS with EDNS; our advertised size is what we will send.
        let response_edns = request.edns.as_ref().map(|e| {
            let mut r = Edns::new();
            r.set_max_payload(udp_limit(Some(e)));
            r.set_version(0);
            // RFC 3225 section 3: the DO bit of the query is copied into the response.
            r.set_dnssec_ok(e.flags().dnssec_ok);
            if let Ok(Some(c)) = &client_cookie {
                let option = zones.cookies().reply_option(c, src.ip());
                r.options_mut().insert(EdnsOption::Unknown(cookie::OPTION_CODE, option.to_vec()));
            }
            r
        });
        let reserve = u16::try_from(reserve).unwrap_or(u16::MAX);
        let limit = reply_limit(transport, request.edns.as_ref()).saturating_sub(reserve);
        let qtype = match request.queries.queries() {
            [q] => Some(q.query_type()),
            _ => None,
        };
        let question = request.queries.queries()[0].original();
        // The sections of a reply with no records (its rcode is the metadata's).
        let no_records = Answer::error(ResponseCode::NoError);
        let reply = |(bytes, header): (Vec<u8>, Header)| Reply {
            bytes,
            rcode: header.metadata.response_code,
            qtype,
            truncated: header.metadata.truncation,
        };
        let encode = |metadata: &Metadata, answer: &Answer| {
            match emit_reply(metadata, question, answer, response_edns.as_ref(), limit) {
                Ok(done) => Some(reply(done)),
                // The encoder stops at the last whole record that fits (and sets TC); an error
                // means a record could not be encoded at all, which none of ours can cause. Never
                // stay silent all the same.
                Err(_) => Some(bare_reply(&request.metadata, ResponseCode::ServFail, edns_for_errors, true)),
            }
        };

        if let Some(rcode) = early {
            metadata.response_code = rcode;
            return encode(&metadata, &no_records);
        }

        let mut answer = zones.answer(question.name(), question.query_type(), question.query_class());
        metadata.response_code = answer.rcode;
        metadata.authoritative = answer.authoritative;

        if let Some(done) = whole_within(&metadata, question, &answer, response_edns.as_ref(), limit) {
            return Some(reply(done));
        }
        // RFC 2181 section 9: additional data that does not fit is dropped without TC. (Without
        // any, the same encoding would only fail again.)
        if !answer.additional.is_empty() {
            answer.additional.clear();
            if let Some(done) = whole_within(&metadata, question, &answer, response_edns.as_ref(), limit) {
                return Some(reply(done));
            }
        }
        metadata.truncation = true;
        if transport == Transport::Udp {
            // RFC 1035 section 4.2.1 / RFC 2181 section 9: too large for UDP: send the header,
            // question and OPT with TC=1 and let the client retry over TCP.
            return encode(&metadata, &no_records);
        }
        // TCP: a message is at most 65,535 octets (RFC 1035 section 4.2.2) and there is nothing
        // left to retry over. Send as many whole answer records as fit, with TC=1 saying the set
        // is incomplete (RFC 2181 section 9), as BIND and Knot do: a headless Service of
        // thousands of ready pods still resolves to thousands.
        answer.authority.clear();
        encode(&metadata, &answer)
    }
}

/// The NOTAUTH reply to a request whose TSIG did not verify, with the TSIG error (RFC 8945
/// section 5.2), and whether it was cut. It echoes the request's question and carries its key
/// name (up to 255 octets each), so over UDP it may not fit the limit: it then goes without the
/// question and with TC=1, as a signed reply that does not fit is cut (RFC 8945 section 5.3), and
/// the client may ask again over TCP. Without a question it always fits: the header, an OPT and
/// the TSIG record come to about 400 octets at most.
fn unverified_reply(v: &tsig::Verified, request: &hickory_proto::op::Message, transport: Transport) -> (Vec<u8>, bool) {
    let whole = v.error_reply(xfr::error_reply(request, ResponseCode::NotAuth, true));
    if whole.len() <= usize::from(reply_limit(transport, request.edns.as_ref())) {
        return (whole, false);
    }
    let mut cut = xfr::error_reply(request, ResponseCode::NotAuth, false);
    cut[2] |= 0x02; // TC
    (v.error_reply(cut), true)
}

/// A reply with no question and no records: the header with `rcode` (and TC when asked), plus
/// an OPT advertising `edns` (our payload size, and the query's DO bit, RFC 3225 section 3) when
/// the request had EDNS (RFC 6891 section 7).
fn bare_reply(request: &Metadata, rcode: ResponseCode, edns: Option<(u16, bool)>, truncated: bool) -> Reply {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = rcode;
    metadata.truncation = truncated;
    let counts = hickory_proto::op::HeaderCounts { additionals: u16::from(edns.is_some()), ..Default::default() };
    let header = Header { metadata, counts };
    let mut bytes = Vec::with_capacity(23);
    let mut encoder = BinEncoder::new(&mut bytes);
    // A 12-byte header and an 11-byte OPT always encode.
    let _ = header.emit(&mut encoder);
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_version(0);
        e.set_dnssec_ok(dnssec_ok);
        e.set_rcode_high(rcode.high());
        let _ = e.emit(&mut encoder);
    }
    Reply { bytes, rcode, qtype: None, truncated }
}
