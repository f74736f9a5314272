//! DNS clients for the tests: `dig` (a real, independent client) and hickory (the hickory-net
//! client over UDP and TCP, plus raw hickory-proto messages for crafted queries).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reply as dig printed it.
#[derive(Debug, Clone)]
pub struct DigReply {
    /// `NOERROR`, `NXDOMAIN`, ...
    pub status: String,
    /// Header flags (`qr`, `aa`, `tc`, ...).
    pub flags: Vec<String>,
    /// Answer section, one normalised zone-file line per record.
    pub answer: Vec<String>,
    /// Authority section, likewise.
    pub authority: Vec<String>,
    /// The whole output.
    pub raw: String,
}

impl DigReply {
    /// The addresses (last field) of the answer's A/AAAA records, sorted.
    pub fn addresses(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .answer
            .iter()
            .filter(|l| l.contains(" IN A ") || l.contains(" IN AAAA "))
            .filter_map(|l| l.rsplit(' ').next().map(str::to_owned))
            .collect();
        v.sort();
        v
    }

    /// Whether the header has `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Runs `dig @server -p PORT +norec +time=2 +tries=1 ARGS` and parses its output. Panics with
/// a clear message when dig is not installed: the suite needs it (`bash .ci/run` installs it).
pub fn dig(server: SocketAddr, args: &[&str]) -> DigReply {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+norec", "+time=2", "+tries=1", "+nocookie"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run dig ({e}): install bind9-dnsutils (bash .ci/run does)"));
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut reply = DigReply {
        status: String::new(),
        flags: Vec::new(),
        answer: Vec::new(),
        authority: Vec::new(),
        raw: raw.clone(),
    };
    let mut section = "";
    for line in raw.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            reply.status = rest.split(',').next().unwrap_or("").to_owned();
        }
        if let Some(rest) = line.strip_prefix(";; flags: ") {
            reply.flags = rest.split(';').next().unwrap_or("").split_whitespace().map(str::to_owned).collect();
        }
        if line.starts_with(";; ") && line.ends_with("SECTION:") {
            section = if line.contains("ANSWER") {
                "answer"
            } else if line.contains("AUTHORITY") {
                "authority"
            } else {
                "other"
            };
            continue;
        }
        if line.trim().is_empty() {
            section = "";
            continue;
        }
        if line.starts_with(';') {
            continue;
        }
        let norm = line.split_whitespace().collect::<Vec<_>>().join(" ");
        match section {
            "answer" => reply.answer.push(norm),
            "authority" => reply.authority.push(norm),
            _ => {}
        }
    }
    assert!(!reply.status.is_empty(), "dig got no reply: {raw}\n{}", String::from_utf8_lossy(&out.stderr));
    reply
}

/// The transport a hickory query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// One query with the hickory-net client over `proto`.
pub async fn hickory(server: SocketAddr, name: &str, rtype: RecordType, proto: Proto) -> Message {
    let name = Name::from_ascii(name).expect("name");
    let response = match proto {
        Proto::Udp => {
            let conn = UdpClientStream::builder(server, TokioRuntimeProvider::default())
                .with_timeout(Some(Duration::from_secs(3)))
                .build();
            let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(conn);
            tokio::spawn(bg);
            client.query(name, DNSClass::IN, rtype).await
        }
        Proto::Tcp => {
            let (future, sender) =
                TcpClientStream::new(server, None, Some(Duration::from_secs(3)), TokioRuntimeProvider::new());
            let (mut client, bg) = Client::<TokioRuntimeProvider>::new(future.await.expect("tcp connect"), sender);
            tokio::spawn(bg);
            client.query(name, DNSClass::IN, rtype).await
        }
    };
    response.expect("hickory query").into_message()
}

/// The addresses in a message's answer section, sorted.
pub fn addresses(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg
        .answers
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .map(|r| r.data.to_string())
        .collect();
    v.sort();
    v
}

/// A query message for crafted tests: one question, optional EDNS with `edns_size`.
pub fn query(name: &str, rtype: RecordType, edns_size: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    if let Some(size) = edns_size {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() & 0xffff) as u16
}

/// Sends raw bytes over UDP and returns the raw reply, or `None` after `wait` with no reply.
pub async fn udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Sends a message over UDP: (decoded reply, its size in octets).
pub async fn udp_message(server: SocketAddr, msg: &Message) -> (Message, usize) {
    let raw = udp_raw(server, &msg.to_vec().unwrap(), Duration::from_secs(3)).await.expect("udp reply");
    (Message::from_vec(&raw).expect("decodable reply"), raw.len())
}

/// Sends several messages on one TCP connection, back to back, and reads as many replies.
pub async fn tcp_messages(server: SocketAddr, msgs: &[Message]) -> Vec<Message> {
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let mut out = Vec::new();
    for m in msgs {
        let bytes = m.to_vec().unwrap();
        s.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(&bytes).await.unwrap();
    }
    for _ in msgs {
        let len = tokio::time::timeout(Duration::from_secs(3), s.read_u16()).await.expect("tcp reply").unwrap();
        let mut buf = vec![0u8; len as usize];
        s.read_exact(&mut buf).await.unwrap();
        out.push(Message::from_vec(&buf).expect("decodable reply"));
    }
    out
}

/// Renders records as normalised zone-file lines.
pub fn zone_lines(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data)).collect()
}

/// Waits on a connected UDP socket for the reply to query `id` until `deadline`; replies to
/// earlier (timed-out) queries carry another id and are skipped. `None` at the deadline.
pub async fn await_reply(
    sock: &tokio::net::UdpSocket,
    buf: &mut [u8],
    id: u16,
    deadline: tokio::time::Instant,
) -> Option<Message> {
    loop {
        match tokio::time::timeout_at(deadline, sock.recv(buf)).await {
            Ok(Ok(n)) => match Message::from_vec(&buf[..n]) {
                Ok(m) if m.metadata.id == id => return Some(m),
                _ => continue,
            },
            _ => return None,
        }
    }
}
