//! DNS transport: hickory-server's `Server` carries UDP and TCP (framing, several queries per TCP
//! connection, idle timeouts); [`Handler`] applies the message-level rules and asks the [`Zones`].
//!
//! Entry point: [`bind`] then [`serve`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode, emit_message_parts};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{debug, info, warn};

use super::answer::{Answer, Zones};
use crate::metrics::{RequestLabels, metrics, qtype_label, rcode_label};

/// Why the DNS sockets could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// udp or tcp.
        proto: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// RFC 1035 section 4.2.1: without EDNS a UDP message is at most 512 octets.
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// The largest UDP reply we send, whatever the client offers: 1232 octets avoids IP
/// fragmentation on any path (DNS Flag Day 2020 recommendation).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The request handler: message-level rules around [`Zones::answer`].
#[derive(Debug, Clone)]
pub struct Handler {
    zone: Zones,
}

impl Handler {
    /// A handler answering from `zone`.
    pub fn new(zone: Zones) -> Self {
        Self { zone }
    }
}

/// The UDP size limit for a request: the client's EDNS payload size clamped to 512..=1232, or
/// 512 without EDNS.
pub fn udp_limit(edns: Option<&Edns>) -> u16 {
    edns.map_or(MIN_UDP_PAYLOAD, |e| e.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD))
}

/// Whether a reply with these sections fits in `limit` octets.
fn fits(metadata: &Metadata, request: &Request, answer: &Answer, edns: Option<&Edns>, limit: u16) -> bool {
    let mut buf = Vec::with_capacity(limit as usize);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(limit);
    let queries = request.queries.queries().iter().map(|q| q.original());
    match emit_message_parts(
        metadata,
        &mut queries.collect::<Vec<_>>().into_iter(),
        &mut answer.answers.iter(),
        &mut answer.authority.iter(),
        &mut answer.additional.iter(),
        edns,
        None,
        &mut encoder,
    ) {
        Ok(header) => !header.metadata.truncation,
        Err(_) => false,
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        let start = Instant::now();
        let info = self.respond(request, response_handle).await;
        let qtype = request.queries.queries().first().map_or("none", |q| qtype_label(q.query_type()));
        let transport = if request.protocol() == Protocol::Udp { "udp" } else { "tcp" };
        metrics().observe_request(
            RequestLabels { qtype, rcode: rcode_label(info.response_code), transport },
            start.elapsed(),
        );
        info
    }
}

impl Handler {
    /// Builds and sends the reply to one request.
    async fn respond<R: ResponseHandler>(&self, request: &Request, mut response_handle: R) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // RFC 6891 section 7: answer EDNS with EDNS; our advertised size is what we will send.
        let response_edns = request.edns.as_ref().map(|e| {
            let mut r = Edns::new();
            r.set_max_payload(udp_limit(Some(e)));
            r.set_version(0);
            r
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &response_edns {
            builder.edns(e);
        }
        let empty: [Record; 0] = [];

        let rcode = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            // RFC 6891 section 6.1.3: an unsupported EDNS version gets BADVERS.
            Some(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            // RFC 9619: exactly one question per query.
            Some(ResponseCode::FormErr)
        } else {
            None
        };
        if let Some(rcode) = rcode {
            metadata.response_code = rcode;
            let response = builder.build(metadata, empty.iter(), empty.iter(), empty.iter(), empty.iter());
            return send(&mut response_handle, response, request).await;
        }

        let query = &request.queries.queries()[0];
        let original = query.original();
        let mut answer = self.zone.answer(original.name(), original.query_type(), original.query_class());
        metadata.response_code = answer.rcode;
        metadata.authoritative = answer.authoritative;

        let limit = udp_limit(request.edns.as_ref());
        if request.protocol() == Protocol::Udp && !fits(&metadata, request, &answer, response_edns.as_ref(), limit) {
            // RFC 2181 section 9: additional data that does not fit is dropped without TC.
            answer.additional.clear();
        }
        if request.protocol() == Protocol::Udp && !fits(&metadata, request, &answer, response_edns.as_ref(), limit) {
            // RFC 1035 section 4.2.1 / RFC 2181 section 9: too large for UDP, so send the header,
            // question and OPT with TC=1 and let the client retry over TCP.
            metadata.truncation = true;
            let response = builder.build(metadata, empty.iter(), empty.iter(), empty.iter(), empty.iter());
            return send(&mut response_handle, response, request).await;
        }
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            empty.iter(),
            answer.additional.iter(),
        );
        send(&mut response_handle, response, request).await
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            debug!(%error, src = %request.src(), "could not send a response");
            let mut m = Metadata::response_from_request(&request.metadata);
            m.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_proto::op::Header { metadata: m, counts: Default::default() })
        }
    }
}

/// Bound sockets for one listen address.
#[derive(Debug)]
pub struct Listener {
    /// The UDP socket.
    pub udp: UdpSocket,
    /// The TCP listener, on the same port.
    pub tcp: TcpListener,
}

/// Binds UDP and TCP on every address. Port 0 picks a free port that is free for both.
pub async fn bind(addrs: &[SocketAddr]) -> Result<Vec<Listener>, ServerError> {
    let mut out = Vec::new();
    for addr in addrs {
        let mut attempt = 0;
        loop {
            let udp = UdpSocket::bind(addr).await.map_err(|source| ServerError::Bind {
                addr: *addr,
                proto: "udp",
                source,
            })?;
            let port = udp.local_addr().map(|a| a.port()).unwrap_or(addr.port());
            let tcp_addr = SocketAddr::new(addr.ip(), port);
            match TcpListener::bind(tcp_addr).await {
                Ok(tcp) => {
                    out.push(Listener { udp, tcp });
                    break;
                }
                Err(e) if addr.port() == 0 && attempt < 20 => {
                    debug!(error = %e, port, "tcp port taken, trying another");
                    attempt += 1;
                }
                Err(source) => {
                    return Err(ServerError::Bind { addr: tcp_addr, proto: "tcp", source });
                }
            }
        }
    }
    Ok(out)
}

/// Serves DNS on the bound listeners until the process ends.
pub async fn serve(listeners: Vec<Listener>, handler: Handler, tcp_idle_timeout: Duration) {
    let mut server = Server::new(handler);
    for l in listeners {
        let udp = l.udp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let tcp = l.tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        info!(udp, tcp, "dns listening");
        server.register_socket(l.udp);
        server.register_listener(l.tcp, tcp_idle_timeout, 64 * 1024);
    }
    if let Err(error) = server.block_until_done().await {
        warn!(%error, "dns server stopped");
    }
}
