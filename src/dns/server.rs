//! DNS transport. UDP: one `SO_REUSEPORT` socket per worker thread, each answering in a
//! receive/answer/send loop through the fast path ([`super::fast`]) or the general path
//! ([`super::general`]); on Linux a loop iteration takes every datagram waiting (up to 32, one
//! `recvmmsg`) and sends their replies with one `sendmmsg` ([`super::mmsg`]). In-flight UDP work is
//! bounded by construction (one batch per worker at a time; the kernel's socket buffer absorbs
//! bursts and drops the excess). TCP: a tokio accept
//! loop with a connection limit (the oldest connection is closed to admit a new one), an idle
//! timeout between messages and a short read deadline once a message has started (slowloris);
//! several queries on one connection are answered in turn.
//!
//! Entry points: [`bind`] then [`serve`].

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::fast::{self, Fast};
use super::general::{Responder, TransferReply, Transport};
use super::xfr;
use crate::metrics::{LATENCY_SAMPLE, RequestTally, TransferLabels, ZoneLabels, count_truncated, metrics};

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
        source: io::Error,
    },
}

/// Transport limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// UDP worker threads per listen address.
    pub udp_workers: usize,
    /// Most TCP connections open at once (per listen address).
    pub tcp_max_connections: usize,
    /// A TCP connection with no message started for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// A started TCP message (or a reply write) must complete within this.
    pub tcp_read_timeout: Duration,
}

/// Bound sockets for one listen address.
#[derive(Debug)]
pub struct Listener {
    /// One UDP socket per worker, all on the same address (`SO_REUSEPORT`).
    pub udp: Vec<StdUdpSocket>,
    /// The TCP listener, on the same port.
    pub tcp: std::net::TcpListener,
}

fn bind_socket(addr: SocketAddr, ty: Type, proto: Protocol, reuse_port: bool) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    Ok(s)
}

/// A worker's UDP socket on `addr`. On Linux an IPv4 one never fragments a reply
/// ([`super::mmsg::never_fragment`]); a kernel that refuses the option leaves its default, with a
/// warning.
fn udp_socket(addr: SocketAddr) -> io::Result<StdUdpSocket> {
    let sock = StdUdpSocket::from(bind_socket(addr, Type::DGRAM, Protocol::UDP, true)?);
    #[cfg(target_os = "linux")]
    if addr.is_ipv4()
        && let Err(error) = super::mmsg::never_fragment(&sock)
    {
        warn!(%addr, %error, "cannot set IP_MTU_DISCOVER; replies keep the kernel's fragmentation mode");
    }
    Ok(sock)
}

fn bind_one(addr: SocketAddr, workers: usize) -> Result<Listener, ServerError> {
    let err = |proto, source| ServerError::Bind { addr, proto, source };
    let mut attempt = 0;
    loop {
        let first = udp_socket(addr).map_err(|e| err("udp", e))?;
        let local = first.local_addr().unwrap_or(addr);
        let mut udp = vec![first];
        for _ in 1..workers.max(1) {
            udp.push(udp_socket(local).map_err(|e| err("udp", e))?);
        }
        match bind_socket(local, Type::STREAM, Protocol::TCP, false).and_then(|s| {
            s.listen(1024)?;
            s.set_nonblocking(true)?;
            Ok(std::net::TcpListener::from(s))
        }) {
            Ok(tcp) => return Ok(Listener { udp, tcp }),
            // Port 0: the UDP port's TCP twin was taken; try another port.
            Err(e) if addr.port() == 0 && attempt < 20 => {
                debug!(error = %e, port = local.port(), "tcp port taken, trying another");
                attempt += 1;
            }
            Err(e) => return Err(err("tcp", e)),
        }
    }
}

/// Binds UDP (one socket per worker) and TCP on every address. Port 0 picks a port free for both.
pub fn bind(addrs: &[SocketAddr], limits: &Limits) -> Result<Vec<Listener>, ServerError> {
    addrs.iter().map(|a| bind_one(*a, limits.udp_workers)).collect()
}

/// A handle that stops the servers started by [`serve`].
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    stop: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Shutdown {
    /// Stops accepting: UDP workers finish the request in hand and exit; TCP stops accepting and
    /// closes connections after the reply in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.token.cancel();
    }
}

/// Starts serving on the bound listeners: UDP worker threads and a TCP task per address. Returns
/// the threads and tasks; they run until `shutdown` is stopped.
pub fn serve(
    listeners: Vec<Listener>,
    responder: Arc<Responder>,
    limits: Limits,
    shutdown: &Shutdown,
) -> (Vec<std::thread::JoinHandle<()>>, Vec<tokio::task::JoinHandle<()>>) {
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for l in listeners {
        let udp = l.udp.first().and_then(|s| s.local_addr().ok()).map(|a| a.to_string()).unwrap_or_default();
        let tcp = l.tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        info!(udp, tcp, udp_workers = l.udp.len(), "dns listening");
        for (i, sock) in l.udp.into_iter().enumerate() {
            let (responder, stop) = (responder.clone(), shutdown.stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || udp_worker(sock, &responder, &stop));
            match spawned {
                Ok(t) => threads.push(t),
                Err(error) => warn!(%error, "cannot start a UDP worker"),
            }
        }
        match TcpListener::from_std(l.tcp) {
            Ok(listener) => {
                tasks.push(tokio::spawn(tcp_server(listener, responder.clone(), limits, shutdown.token.clone())))
            }
            Err(error) => warn!(%error, "cannot serve TCP"),
        }
    }
    (threads, tasks)
}

/// How often a UDP worker looks at the stop flag while no request arrives.
const UDP_POLL: Duration = Duration::from_millis(200);

/// Whether a receive error only means "nothing yet" (the poll timeout, a signal).
fn is_idle(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Answers one datagram from `src` into `out`: the fast path, else the general path. `None`
/// when nothing is to be sent (a response, a runt, a panic in the answer path). This is a UDP
/// worker's whole work per datagram besides the socket and [`UdpRecorder`] (public for the
/// `cores` benchmark).
pub fn answer_datagram(
    responder: &Responder,
    raw: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
) -> Option<(ResponseCode, Option<RecordType>)> {
    // Defence in depth: a bug that panics on one packet must not take the worker down (the
    // fuzzers have found none); the packet is dropped and logged.
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match fast::answer(&responder.zones(), raw, src.ip(), out) {
            Fast::Answered { rcode, qtype } => Some((rcode, Some(qtype))),
            Fast::Fallback => responder.respond(raw, src, Transport::Udp).map(|reply| {
                if reply.truncated {
                    count_truncated(false);
                }
                *out = reply.bytes;
                (reply.rcode, reply.qtype)
            }),
        }
    }));
    answered.unwrap_or_else(|_| {
        error!(%src, len = raw.len(), "a request made the answer path panic; dropped");
        out.clear();
        None
    })
}

/// What a UDP worker records of the requests it answers: their count by type and rcode, and the
/// latency of one in [`LATENCY_SAMPLE`] (clock reads stay off most requests), in a tally of its
/// own ([`RequestTally`]: no cache line shared with other workers is written per request). Each
/// worker owns one.
#[derive(Debug)]
pub struct UdpRecorder {
    seen: u64,
    tally: Arc<RequestTally>,
}

impl Default for UdpRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpRecorder {
    /// A recorder for one worker, with a new tally.
    pub fn new() -> Self {
        UdpRecorder { seen: 0, tally: metrics().request_tally() }
    }

    /// Called as a request arrives: its start time when its latency is sampled.
    pub fn start(&mut self) -> Option<Instant> {
        let start = self.seen.is_multiple_of(LATENCY_SAMPLE).then(Instant::now);
        self.seen = self.seen.wrapping_add(1);
        start
    }

    /// Records an answered request (`start` from [`UdpRecorder::start`]), once its reply is
    /// handed to the socket.
    pub fn record(&self, qtype: Option<RecordType>, rcode: ResponseCode, start: Option<Instant>) {
        self.tally.observe(qtype, rcode, start.map(|s| s.elapsed()));
    }
}

/// The UDP loop on Linux: [`mmsg`] batches, one `recvmmsg` and one `sendmmsg` per batch.
#[cfg(target_os = "linux")]
fn udp_worker(sock: StdUdpSocket, responder: &Responder, stop: &AtomicBool) {
    use super::mmsg::{BATCH, RecvBatch, SendBatch};
    if let Err(error) = sock.set_read_timeout(Some(UDP_POLL)) {
        warn!(%error, "cannot set a UDP read timeout; shutdown may wait for a request");
    }
    let (mut received, mut sender) = (RecvBatch::new(), SendBatch::new());
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut dests: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    let mut done: Vec<(ResponseCode, Option<RecordType>, Option<Instant>)> = Vec::with_capacity(BATCH);
    let mut recorder = UdpRecorder::new();
    while !stop.load(Ordering::Acquire) {
        let n = match received.recv(&sock) {
            Ok(n) => n,
            Err(e) if is_idle(&e) => continue,
            Err(error) => {
                // ICMP errors from earlier sends surface here (ECONNREFUSED): not fatal.
                debug!(%error, "udp receive error");
                continue;
            }
        };
        dests.clear();
        done.clear();
        for i in 0..n {
            let (raw, src, truncated) = received.get(i);
            // A source we cannot answer (port 0) would only bounce.
            let Some(src) = src.filter(|s| s.port() != 0) else { continue };
            if truncated {
                debug!(%src, "udp datagram over {} octets dropped", super::mmsg::SLOT);
                continue;
            }
            let start = recorder.start();
            let out = &mut outs[dests.len()];
            if let Some((rcode, qtype)) = answer_datagram(responder, raw, src, out) {
                dests.push(src);
                done.push((rcode, qtype, start));
            }
        }
        send_replies(&sock, &mut sender, &outs[..dests.len()], &dests);
        for &(rcode, qtype, start) in &done {
            recorder.record(qtype, rcode, start);
        }
    }
}

/// Sends a batch of replies (`replies[i]` to `dests[i]`) with one `sendmmsg`. A reply the kernel
/// refuses as larger than the interface's MTU (`EMSGSIZE`: the socket never fragments,
/// [`super::mmsg::never_fragment`]) goes again cut to its header, question and OPT with TC set,
/// so that the client retries over TCP (RFC 9715 section 3.1, RFC 1035 section 4.2.1) rather than
/// waiting for a reply that never comes. Other refusals are logged and the reply dropped, as a
/// lost datagram. Returns how many replies went (whole or cut).
#[cfg(target_os = "linux")]
fn send_replies(
    sock: &StdUdpSocket,
    sender: &mut super::mmsg::SendBatch,
    replies: &[Vec<u8>],
    dests: &[SocketAddr],
) -> usize {
    let (mut sent, errors) = sender.send(sock, replies, dests);
    for (i, error) in errors {
        let cut = (error.raw_os_error() == Some(libc::EMSGSIZE))
            .then(|| super::general::truncated_copy(&replies[i]))
            .flatten();
        match cut.map(|bytes| sock.send_to(&bytes, dests[i])) {
            Some(Ok(_)) => {
                count_truncated(false);
                sent += 1;
            }
            Some(Err(again)) => debug!(dest = %dests[i], %error, %again, "udp send error, truncated reply too"),
            None => debug!(dest = %dests[i], %error, "udp send error"),
        }
    }
    sent
}

/// The UDP loop elsewhere: one datagram per `recv_from` and `send_to`.
#[cfg(not(target_os = "linux"))]
fn udp_worker(sock: StdUdpSocket, responder: &Responder, stop: &AtomicBool) {
    if let Err(error) = sock.set_read_timeout(Some(UDP_POLL)) {
        warn!(%error, "cannot set a UDP read timeout; shutdown may wait for a request");
    }
    let mut buf = vec![0u8; 65535];
    let mut out: Vec<u8> = Vec::with_capacity(1232);
    let mut recorder = UdpRecorder::new();
    while !stop.load(Ordering::Acquire) {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if is_idle(&e) => continue,
            Err(error) => {
                debug!(%error, "udp receive error");
                continue;
            }
        };
        if src.port() == 0 {
            continue;
        }
        let start = recorder.start();
        let Some((rcode, qtype)) = answer_datagram(responder, &buf[..n], src, &mut out) else { continue };
        if let Err(error) = sock.send_to(&out, src) {
            debug!(%error, %src, "udp send error");
        }
        recorder.record(qtype, rcode, start);
    }
}

/// Open TCP connections, oldest first, so the oldest can be closed to admit a new one.
type Connections = Arc<Mutex<BTreeMap<u64, CancellationToken>>>;

async fn tcp_server(listener: TcpListener, responder: Arc<Responder>, limits: Limits, stop: CancellationToken) {
    let conns: Connections = Arc::default();
    let mut next_id: u64 = 0;
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(error) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    warn!(%error, "tcp accept error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let token = stop.child_token();
        {
            let mut open = conns.lock().unwrap_or_else(|e| e.into_inner());
            while open.len() >= limits.tcp_max_connections.max(1) {
                // Full: close the oldest connection (usually an idle one) to admit this one.
                if let Some((_, oldest)) = open.pop_first() {
                    oldest.cancel();
                }
            }
            open.insert(next_id, token.clone());
        }
        let (responder, conns, id) = (responder.clone(), conns.clone(), next_id);
        next_id += 1;
        tokio::spawn(async move {
            tokio::select! {
                r = tcp_connection(stream, src, &responder, limits) => {
                    if let Err(error) = r {
                        debug!(%error, %src, "tcp connection ended");
                    }
                }
                _ = token.cancelled() => debug!(%src, "tcp connection closed to admit a newer one or at shutdown"),
            }
            conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
}

/// Serves one TCP connection: RFC 1035 section 4.2.2 framing (a two-octet length before each
/// message), RFC 7766 pipelining (queries answered in turn on one connection).
async fn tcp_connection(
    mut stream: TcpStream,
    src: SocketAddr,
    responder: &Responder,
    limits: Limits,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        // Idle: nothing started. RFC 7766 section 6.2.3: the server may close idle connections.
        match tokio::time::timeout(limits.tcp_idle_timeout, stream.read_exact(&mut len[..1])).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let read_rest = async {
            stream.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            buf.resize(n, 0);
            stream.read_exact(&mut buf).await?;
            Ok::<_, io::Error>(())
        };
        // A started message must arrive quickly (slowloris).
        tokio::time::timeout(limits.tcp_read_timeout, read_rest)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "message not completed in time"))??;
        let start = Instant::now();
        // A zone transfer streams its messages; anything else gets one reply. Both are planned
        // under the same guard: a request that makes the answer path panic closes this
        // connection only.
        let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            responder
                .transfer(&buf, src, Transport::Tcp)
                .or_else(|| responder.respond(&buf, src, Transport::Tcp).map(TransferReply::One))
        }))
        .map_err(|_| {
            error!(%src, len = buf.len(), "a request made the answer path panic; closing the connection");
            io::Error::other("answer path panicked")
        })?;
        let reply = match planned {
            Some(TransferReply::Stream(transfer)) => {
                stream_transfer(&mut stream, src, transfer, limits).await?;
                continue;
            }
            Some(TransferReply::One(reply)) => reply,
            None => continue,
        };
        if reply.truncated {
            count_truncated(true);
        }
        write_framed(&mut stream, &reply.bytes, limits).await?;
        metrics().observe_tcp_request(reply.qtype, reply.rcode, start.elapsed());
    }
}

/// Writes one message with its two-octet length (RFC 1035 section 4.2.2); the client must take
/// it within the read timeout.
async fn write_framed(stream: &mut TcpStream, message: &[u8], limits: Limits) -> io::Result<()> {
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
    framed.extend_from_slice(message);
    tokio::time::timeout(limits.tcp_read_timeout, stream.write_all(&framed))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "reply not taken in time"))?
}

/// Octets of transfer messages gathered before one write.
const TRANSFER_WRITE: usize = 64 * 1024;

/// Sends a zone transfer's messages in turn, each made only once the previous one was taken,
/// and counts it.
async fn stream_transfer(
    stream: &mut TcpStream,
    src: SocketAddr,
    mut transfer: Box<xfr::Transfer>,
    limits: Limits,
) -> io::Result<()> {
    let start = Instant::now();
    let zone = transfer.apex().to_ascii();
    let mut messages = 0u64;
    let mut result = Ok(());
    // Messages go out in writes of about 64 KiB (one system call for several messages).
    let mut out: Vec<u8> = Vec::with_capacity(TRANSFER_WRITE + 32 * 1024);
    let mut more = true;
    while more {
        match transfer.next_message() {
            Some(message) => {
                messages += 1;
                out.extend_from_slice(&(message.len() as u16).to_be_bytes());
                out.extend_from_slice(&message);
            }
            None => more = false,
        }
        if out.len() >= TRANSFER_WRITE || (!more && !out.is_empty()) {
            let write = tokio::time::timeout(limits.tcp_read_timeout, stream.write_all(&out)).await;
            if let Err(e) =
                write.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "transfer not taken in time")).and_then(|r| r)
            {
                result = Err(e);
                break;
            }
            out.clear();
        }
    }
    let outcome = if result.is_ok() { "ok" } else { "aborted" };
    let m = metrics();
    m.transfers.get_or_create(&TransferLabels { kind: transfer.kind, zone: zone.clone(), outcome }).inc();
    m.transfer_bytes.get_or_create(&ZoneLabels { zone: zone.clone() }).inc_by(transfer.bytes);
    info!(
        %src, zone, kind = transfer.kind, serial = transfer.serial(), messages, octets = transfer.bytes,
        ms = start.elapsed().as_millis() as u64, outcome, "zone transfer"
    );
    result
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::EdnsOption;
    use hickory_proto::rr::{Name, RData, Record, rdata::A};

    #[test]
    fn every_ipv4_udp_socket_bound_never_fragments() {
        let limits = Limits {
            udp_workers: 3,
            tcp_max_connections: 1,
            tcp_idle_timeout: Duration::from_secs(1),
            tcp_read_timeout: Duration::from_secs(1),
        };
        let listeners = bind(&["127.0.0.1:0".parse().unwrap()], &limits).unwrap();
        assert_eq!(listeners[0].udp.len(), 3);
        for sock in &listeners[0].udp {
            assert_eq!(super::super::mmsg::fragmentation_mode(sock).unwrap(), libc::IP_PMTUDISC_PROBE);
        }
    }

    /// A response to `web-0.nginx-headless...` with `count` A records and an OPT carrying a cookie.
    fn reply(id: u16, count: usize) -> Vec<u8> {
        let name = Name::from_ascii("Web-0.nginx-headless.default.svc.cluster.local.").unwrap();
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 0..count {
            m.add_answer(Record::from_rdata(name.clone(), 5, RData::A(A::from(std::net::Ipv4Addr::from(i as u32)))));
        }
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.options_mut().insert(EdnsOption::Unknown(10, (1..=24).collect()));
        m.set_edns(edns);
        m.to_vec().unwrap()
    }

    #[test]
    fn a_reply_too_large_to_send_goes_cut_with_tc_and_the_rest_of_the_batch_whole() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let server = udp_socket(bind.parse().unwrap()).unwrap();
            let client = StdUdpSocket::bind(bind).unwrap();
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let to = client.local_addr().unwrap();
            // 4,090 records: over the 65,507 octets an IPv4 datagram carries (65,527 for IPv6),
            // under a DNS message's 65,535.
            let big = reply(2, 4090);
            assert!(big.len() > 65_527 && big.len() <= 65_535, "{}", big.len());
            let replies = vec![reply(1, 1), big, reply(3, 1)];
            let sent = send_replies(&server, &mut super::super::mmsg::SendBatch::new(), &replies, &[to, to, to]);
            assert_eq!(sent, 3, "{bind}");
            let mut buf = vec![0u8; 70_000];
            let mut got = Vec::new();
            for _ in 0..3 {
                let n = client.recv(&mut buf).unwrap();
                got.push(Message::from_vec(&buf[..n]).unwrap());
            }
            got.sort_by_key(|m| m.metadata.id);
            let ids = |m: &Message| (m.metadata.id, m.metadata.truncation, m.answers.len());
            assert_eq!(got.iter().map(ids).collect::<Vec<_>>(), [(1, false, 1), (2, true, 0), (3, false, 1)], "{bind}");
            // The cut reply keeps the question as sent, the header's flags and the OPT with its
            // cookie.
            let (cut, whole) = (&got[1], Message::from_vec(&replies[1]).unwrap());
            assert_eq!(cut.queries, whole.queries, "{bind}");
            assert_eq!(cut.queries[0].name().to_ascii(), "Web-0.nginx-headless.default.svc.cluster.local.");
            assert!(cut.metadata.authoritative && cut.metadata.message_type == MessageType::Response, "{bind}");
            assert_eq!(cut.edns, whole.edns, "{bind}");
            assert!(cut.authorities.is_empty() && cut.additionals.is_empty(), "{bind}");
        }
    }
}
