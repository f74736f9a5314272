//! The regression corpus of crafted packets (issue 5, "Bad input"). Every case of
//! `tests/corpus/mod.rs` is answered in process exactly as the UDP loop combines the two paths
//! (fast, else general) and as a TCP connection answers it (general), and must get its expected
//! outcome while keeping the invariants of every reply: no panic, the query's ID, QR set, within
//! the UDP size limit (512 without EDNS, the client's size capped at 1232 with it), decodable.
//! The live cases then go to the real binary over real UDP and TCP sockets on loopback, and the
//! server must still answer normal queries afterwards.

#[path = "corpus/mod.rs"]
mod corpus;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use corpus::{Case, Expect, Fixture, rcode_of};
use headless_dns::dns::fast::{self, Fast};
use headless_dns::dns::general::Transport;
use hickory_proto::op::Message;
use support::dns::{dig, udp_raw};
use support::server::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);
/// How long a case that must get no reply is listened to.
const SILENCE: Duration = Duration::from_millis(300);

/// Compares one decoded reply (or its absence) with what the case expects.
fn outcome(case: &Case, transport: &str, expect: Expect, reply: Option<&Message>) -> Result<(), String> {
    let result = match (expect, reply) {
        (Expect::NoReply, None) => Ok(()),
        (Expect::NoReply, Some(m)) => Err(format!("want no reply, got rcode {}", rcode_of(m))),
        (Expect::Rcode(..), None) => Err("no reply".to_string()),
        (Expect::Rcode(want, _), Some(m)) if rcode_of(m) != want => Err(format!("rcode {} want {want}", rcode_of(m))),
        (Expect::Rcode(_, more), Some(m)) => more(m),
    };
    result.map_err(|e| format!("{}: {transport}: {e}", case.name))
}

/// Runs `case` in process over UDP (the loop) and TCP; the failures, if any.
fn run_in_process(f: &Fixture, case: &Case) -> Vec<String> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| corpus::check(f, &case.packet)));
    let (udp, tcp) = match result {
        Ok(Ok(replies)) => replies,
        Ok(Err(e)) => return vec![format!("{}: {e}", case.name)],
        Err(_) => return vec![format!("{}: panicked", case.name)],
    };
    [outcome(case, "udp", case.udp, udp.as_ref()), outcome(case, "tcp", case.tcp, tcp.as_ref())]
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

#[test]
fn every_crafted_packet_gets_its_expected_outcome_over_udp_and_tcp() {
    let f = Fixture::new();
    let cases = corpus::cases();
    let mut failures = Vec::new();
    for case in &cases {
        failures.extend(run_in_process(&f, case));
        // The table, for `--nocapture`: which path answered, rcode and size.
        let u = corpus::udp(&f, &case.packet);
        let summary = u.reply.as_deref().map_or("no reply".to_string(), |r| {
            let rc = Message::from_vec(r).map_or("undecodable".to_string(), |m| rcode_of(&m).to_string());
            format!("rcode {rc}, {} octets, {} path", r.len(), if u.fast { "fast" } else { "general" })
        });
        println!("{:<48} {summary}", case.name);
    }
    assert!(cases.len() >= 80, "the corpus shrank to {} cases", cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

// ---- Known bugs: one test each, failing until `src/` is fixed. ----

/// Bug: `src/dns/fast.rs` `parse` accepts a question name of 256 octets: it stops only when the
/// labels before the root exceed 255 octets, so 255 octets of labels plus the root pass, and it
/// answers NXDOMAIN echoing a name no decoder accepts (hickory: "name label data exceed 255"),
/// where the general path answers FORMERR.
#[test]
fn a_question_name_of_256_octets_gets_formerr_from_the_udp_loop() {
    let f = Fixture::new();
    let case = corpus::bugs::name_of_256_octets();
    assert_eq!(case.packet.len(), 12 + 256 + 4);
    let general = f.general.respond(&case.packet, f.src, Transport::Udp).unwrap();
    assert_eq!(u16::from(general.rcode), corpus::rcode::FORMERR, "the general path gets it right");
    let mut out = Vec::new();
    assert_eq!(fast::answer(&f.zones, &case.packet, f.src.ip(), &mut out), Fast::Fallback, "the fast path answered it");
    let failures = run_in_process(&f, &case);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bug: the fast path ignores EDNS options without reading them, so a malformed option it does
/// not understand is answered NOERROR over UDP, while the general path (hickory parses the OPT,
/// validating Client Subnet) answers FORMERR, and so does TCP: two answers to one query, and the
/// fast path's claim of byte-identical replies does not hold.
#[test]
fn a_malformed_client_subnet_option_gets_formerr_on_both_paths() {
    let f = Fixture::new();
    let failures = run_in_process(&f, &corpus::bugs::ecs_unknown_family());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bug: as above, for an option whose length runs past the OPT's RDATA (only the RDATA length
/// itself is checked by the fast path).
#[test]
fn an_edns_option_longer_than_its_opt_gets_formerr_on_both_paths() {
    let f = Fixture::new();
    let failures = run_in_process(&f, &corpus::bugs::option_overruns_opt());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bug: `src/dns/general.rs` `Responder::respond` echoes the question section in every reply,
/// error replies included, and its `encode` turns an encoding failure into `None`; over UDP a
/// question section (with `QDCOUNT` > 1) larger than the limit makes the FORMERR or NOTIMP reply
/// fail to encode (`MaxBufferSizeExceeded`), so nothing is sent, while TCP answers. For BADVERS the
/// questions fit and the OPT does not: hickory drops it and sets TC, so the client reads NOERROR.
#[test]
fn error_replies_reach_udp_clients_whatever_the_size_of_the_question_section() {
    let f = Fixture::new();
    let failures: Vec<String> =
        corpus::bugs::oversized_error_replies().iter().flat_map(|case| run_in_process(&f, case)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bug (found by cargo-fuzz): the NOTAUTH reply to a request whose TSIG does not verify echoed
/// every question and the request's key name, with no regard for the UDP limit: a request of 47
/// questions got 736 octets over UDP, where 512 is the most without EDNS.
#[test]
fn the_reply_to_a_request_whose_tsig_does_not_verify_fits_the_udp_limit() {
    let f = Fixture::new();
    let failures: Vec<String> =
        corpus::bugs::unverified_tsig_replies().iter().flat_map(|case| run_in_process(&f, case)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A reply to a question compressed into the header must decode and echo the question asked
/// (or be FORMERR).
fn question_echoed(raw: &[u8], reply: &[u8], limit: usize, transport: &str) -> Result<(), String> {
    let m = corpus::check_reply(raw, reply, limit, transport)?;
    if rcode_of(&m) == corpus::rcode::FORMERR {
        return Ok(());
    }
    let asked = Message::from_vec(raw).map_err(|e| format!("request does not decode: {e}"))?.queries;
    if m.queries == asked { Ok(()) } else { Err(format!("{transport}: question {:?}, asked {asked:?}", m.queries)) }
}

/// Bug: the general path copies the request's question section byte for byte into the reply
/// (hickory-server's `MessageResponseBuilder` emits `Queries::as_bytes`); a compression pointer in
/// the question that points into the header then points at the *reply's* header, whose flags and
/// counts differ: the reply's question is another name, or (offset 2: QR is now set, 0x80 is a
/// reserved label type) the reply does not decode at all.
#[test]
fn a_question_compressed_into_the_header_is_echoed_as_asked() {
    let f = Fixture::new();
    let mut failures = Vec::new();
    for offset in [2, 3] {
        let case = corpus::bugs::question_pointer_into_header(offset);
        let udp = corpus::udp(&f, &case.packet).reply.expect("a reply");
        let tcp = corpus::tcp(&f, &case.packet).expect("a reply");
        for (transport, reply) in [("udp", udp), ("tcp", tcp)] {
            if let Err(e) = question_echoed(&case.packet, &reply, corpus::udp_limit(&case.packet), transport) {
                failures.push(format!("{}: {e}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- The real binary over real sockets. ----

/// The YAML the live server serves: the same names as [`Fixture`] for every live case.
const MANIFESTS: &str = "\
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: default}
spec:
  clusterIP: None
  selector: {app: nginx}
  ports: [{name: web, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: default, labels: {app: nginx}}
spec: {hostname: web-0, subdomain: nginx, containers: [{name: nginx, image: x}]}
status: {phase: Running, podIP: 10.244.1.5, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: nginx}}
spec: {hostname: web-1, subdomain: nginx, containers: [{name: nginx, image: x}]}
status: {phase: Running, podIP: 10.244.2.7, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {type: ClusterIP, clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20], selector: {app: api}}
";

fn start(dir: &Path) -> ServerProcess {
    std::fs::write(dir.join("cluster.yaml"), MANIFESTS).unwrap();
    let s = ServerProcess::start(&["--manifests", dir.to_str().unwrap()]);
    s.wait_for_log("first full sync complete", WAIT);
    s
}

/// Sends one framed message on `stream` and reads one framed reply, or `None` after `wait`.
async fn tcp_exchange(stream: &mut TcpStream, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.unwrap();
    let len = tokio::time::timeout(wait, stream.read_u16()).await.ok()?.ok()?;
    let mut buf = vec![0u8; len as usize];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf)).await.expect("a whole reply").unwrap();
    Some(buf)
}

/// Runs `case` against the live server over UDP and over `stream`; the failures, if any.
async fn run_live(dns: SocketAddr, stream: &mut TcpStream, case: &Case) -> Vec<String> {
    let wait = |e: Expect| if matches!(e, Expect::NoReply) { SILENCE } else { Duration::from_secs(3) };
    let mut failures = Vec::new();
    let udp = udp_raw(dns, &case.packet, wait(case.udp)).await;
    let tcp = tcp_exchange(stream, &case.packet, wait(case.tcp)).await;
    for (transport, reply, limit, expect) in
        [("udp", udp, corpus::udp_limit(&case.packet), case.udp), ("tcp", tcp, u16::MAX as usize, case.tcp)]
    {
        let decoded = match reply.map(|r| corpus::check_reply(&case.packet, &r, limit, transport)) {
            Some(Err(e)) => {
                failures.push(format!("{}: live {e}", case.name));
                continue;
            }
            Some(Ok(m)) => Some(m),
            None => None,
        };
        if let Err(e) = outcome(case, &format!("live {transport}"), expect, decoded.as_ref()) {
            failures.push(e);
        }
    }
    failures
}

/// A normal query still answers over both transports, with dig (an independent client).
fn still_answers(dns: SocketAddr) {
    let r = dig(dns, &["web-0.nginx.default.svc.cluster.local", "A"]);
    assert_eq!((r.status.as_str(), r.addresses()), ("NOERROR", vec!["10.244.1.5".to_string()]), "{}", r.raw);
    let r = dig(dns, &["+tcp", "nginx.default.svc.cluster.local", "A"]);
    assert_eq!(r.addresses(), ["10.244.1.5", "10.244.2.7"], "{}", r.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_gets_the_corpus_over_udp_and_tcp_and_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = tokio::task::block_in_place(|| start(dir.path()));
    tokio::task::block_in_place(|| still_answers(s.dns));

    let cases: Vec<Case> = corpus::cases().into_iter().filter(|c| c.live).collect();
    assert!(cases.len() >= 30, "{} live cases", cases.len());
    println!("{} live cases", cases.len());
    // All the cases on one TCP connection: a bad message must not end it.
    let mut stream = TcpStream::connect(s.dns).await.unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        failures.extend(run_live(s.dns, &mut stream, case).await);
    }
    // Every case again over UDP in a burst, without waiting for the replies in between.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for case in &cases {
        sock.send_to(&case.packet, s.dns).await.unwrap();
    }
    drop(sock);

    tokio::task::block_in_place(|| still_answers(s.dns));
    let panics: Vec<String> = s.logs().into_iter().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "the server panicked:\n{}", panics.join("\n"));
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The known bugs above, seen from a client of the real server over UDP and TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_answers_the_known_bug_packets_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let s = tokio::task::block_in_place(|| start(dir.path()));
    let mut stream = TcpStream::connect(s.dns).await.unwrap();
    let mut failures = Vec::new();
    for case in corpus::bugs::all() {
        if case.name.contains("pointing at header") {
            let udp = udp_raw(s.dns, &case.packet, Duration::from_secs(3)).await;
            let tcp = tcp_exchange(&mut stream, &case.packet, Duration::from_secs(3)).await;
            for (transport, reply) in [("live udp", udp), ("live tcp", tcp)] {
                let checked = reply
                    .ok_or_else(|| format!("{transport}: no reply"))
                    .and_then(|r| question_echoed(&case.packet, &r, corpus::udp_limit(&case.packet), transport));
                if let Err(e) = checked {
                    failures.push(format!("{}: {e}", case.name));
                }
            }
        } else {
            failures.extend(run_live(s.dns, &mut stream, &case).await);
        }
    }
    tokio::task::block_in_place(|| still_answers(s.dns));
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
