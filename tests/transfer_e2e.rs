//! headless-dns as a hidden primary: Knot DNS, BIND and NSD as real secondaries of
//! `cluster.local` and of a reverse zone, NOTIFY from us, IXFR of what changed, TSIG for Knot;
//! and the transfer rules (RFC 5936, RFC 1995, RFC 8945) checked with dig.
//!
//! The secondaries' SOA refresh is 2 hours, so only a NOTIFY can explain a secondary that sees a
//! change within seconds. Liveness bounds are generous (20 s); the seconds each secondary took
//! are printed, and the transfer benchmark measures them properly.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use support::dns::dig;
use support::resolvers::free_port;
use support::secondaries::{Kind, Primary, Secondary, TsigKey};
use support::server::ServerProcess;
use support::yaml;

const KEY: &str = "xfr-key";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const WEB0: &str = "web-0.nginx.default.svc.cluster.local";
const LIVENESS: Duration = Duration::from_secs(20);

fn write_pods(dir: &Path, pods: usize, generation: u8) {
    let mut docs = vec![yaml::headless_service("nginx")];
    for i in 0..pods {
        docs.push(yaml::pod(
            &format!("web-{i}"),
            "nginx",
            &format!("10.{generation}.{}.{}", i / 200, i % 200 + 1),
            true,
        ));
    }
    yaml::write(dir, "pods.yaml", &docs);
}

fn key_file(dir: &Path) -> String {
    let path = dir.join("keys.conf");
    std::fs::write(&path, format!("key \"{KEY}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"))
        .unwrap();
    path.display().to_string()
}

/// The server as the primary: transfers allowed from 127.0.0.1 unsigned and from 127.0.0.3 only
/// with the key; NOTIFY to `notify`.
fn primary(manifests: &Path, port: u16, keys: &str, notify: &[String], extra: &[&str]) -> ServerProcess {
    let listen = format!("127.0.0.1:{port}");
    let manifests = manifests.display().to_string();
    let mut args = vec![
        "--manifests",
        &manifests,
        "--listen",
        &listen,
        "--zone",
        "cluster.local",
        "--zone",
        "10.0.0.0/8",
        "--allow-transfer",
        "127.0.0.1",
        "--allow-transfer",
        "127.0.0.3,key=xfr-key",
        "--tsig-key-file",
        keys,
    ];
    for n in notify {
        args.extend(["--notify", n.as_str()]);
    }
    args.extend_from_slice(extra);
    let server = ServerProcess::start(&args);
    server.wait_for_log("manifests loaded", LIVENESS);
    server
}

/// Waits until `check` holds, returning how long it took; panics after [`LIVENESS`].
fn until(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < LIVENESS, "{what}: not within {LIVENESS:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn a(server: SocketAddr, name: &str) -> Vec<String> {
    dig(server, &[name, "A"]).addresses()
}

fn serial(server: SocketAddr, zone: &str) -> Option<u32> {
    let r = dig(server, &[zone, "SOA"]);
    r.answer.iter().find(|l| l.contains(" SOA ")).and_then(|l| l.split(' ').nth(6)).and_then(|s| s.parse().ok())
}

/// A zone's records as a set of normalised lines (the two SOA records of an AXFR are one).
fn axfr(server: SocketAddr, zone: &str) -> BTreeSet<String> {
    let out = std::process::Command::new("dig")
        .args([format!("@{}", server.ip()), "-p".into(), server.port().to_string()])
        .args(["+nocookie", "+time=5", "+tries=1", "+noall", "+answer", zone, "AXFR"])
        .output()
        .expect("dig");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_ascii_lowercase).collect::<Vec<_>>().join(" "))
        .collect()
}

/// An IXFR from `serial` over UDP, sent from `from`; the reply (dig prints no status for it).
fn ixfr_udp(server: SocketAddr, from: Ipv4Addr, serial: u32) -> hickory_proto::op::Message {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    let zone = Name::from_ascii("cluster.local.").unwrap();
    let mut q = Message::query();
    q.metadata.id = 0x4242;
    q.add_query(Query::query(zone.clone(), RecordType::IXFR));
    let soa = SOA::new(zone.clone(), zone.clone(), serial, 0, 0, 0, 0);
    q.add_authority(Record::from_rdata(zone, 0, RData::SOA(soa)));
    let sock = std::net::UdpSocket::bind((from, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("a reply to the UDP IXFR");
    Message::from_vec(&buf[..n]).unwrap()
}

#[test]
fn knot_bind_and_nsd_follow_changes_through_notify_and_ixfr() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    write_pods(&manifests, 20, 1);
    let keys = key_file(dir.path());
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let zones = ["cluster.local", "10.in-addr.arpa"];
    let plain = Primary { addr, source: Ipv4Addr::LOCALHOST, key: None };
    let signed = Primary {
        addr,
        source: Ipv4Addr::new(127, 0, 0, 3),
        key: Some(TsigKey { name: KEY.into(), secret: SECRET.into() }),
    };
    let secondaries = [
        Secondary::start(Kind::Knot, &signed, &zones),
        Secondary::start(Kind::Bind, &plain, &zones),
        Secondary::start(Kind::Nsd, &plain, &zones),
    ];
    let notify: Vec<String> = secondaries
        .iter()
        .map(|s| if s.kind == Kind::Knot { format!("{},key={KEY}", s.addr) } else { s.addr.to_string() })
        .collect();
    let mut server = primary(&manifests, port, &keys, &notify, &[]);

    // Each loads the zone (Knot over TSIG from 127.0.0.3).
    for s in &secondaries {
        until(&format!("{:?} loads the zone", s.kind), || a(s.addr, WEB0) == ["10.1.0.1"]);
    }
    assert_eq!(dig(secondaries[0].addr, &["1.0.1.10.in-addr.arpa", "PTR"]).answer.len(), 1, "the reverse zone too");

    // One pod recreated with a new IP: every secondary answers it, told by NOTIFY (their SOA
    // refresh is 2 hours), and the transfer was incremental.
    let mut docs = vec![yaml::headless_service("nginx")];
    for i in 0..20 {
        let ip = if i == 0 { "10.1.9.9".to_owned() } else { format!("10.1.0.{}", i + 1) };
        docs.push(yaml::pod(&format!("web-{i}"), "nginx", &ip, true));
    }
    yaml::write(&manifests, "pods.yaml", &docs);
    let changed = Instant::now();
    for s in &secondaries {
        until(&format!("{:?} sees the new IP", s.kind), || a(s.addr, WEB0) == ["10.1.9.9"]);
        eprintln!("{:?} answered the new IP {:?} after the change", s.kind, changed.elapsed());
    }
    let knot = secondaries[0].log();
    assert!(knot.contains("[cluster.local.] IXFR, incoming"), "Knot took an IXFR:\n{knot}");
    until("BIND logs its incremental transfer", || secondaries[1].log().contains("got incremental response"));
    until("each secondary took an IXFR of cluster.local", || {
        server
            .metric("headless_dns_transfers_total{kind=\"ixfr\",zone=\"cluster.local.\",outcome=\"ok\"}")
            .unwrap_or(0.0)
            >= 3.0
    });

    // Churn: every pod changes, several times in a row, while the secondaries transfer. Each
    // ends with exactly our zone at our serial.
    for generation in 2..8 {
        write_pods(&manifests, 200, generation);
        std::thread::sleep(Duration::from_millis(70));
    }
    let ours = || serial(addr, "cluster.local");
    // Answers run ahead of the serial by at most a window: wait for the serial to carry it.
    until("our last change is published", || axfr(addr, "cluster.local").iter().any(|l| l.ends_with(" a 10.7.0.200")));
    for zone in zones {
        let want_serial = serial(addr, zone);
        for s in &secondaries {
            until(&format!("{:?} reaches our serial of {zone}", s.kind), || serial(s.addr, zone) == want_serial);
            let (theirs, mine) = (axfr(s.addr, zone), axfr(addr, zone));
            assert!(mine.len() > 200, "{zone}: {} records", mine.len());
            assert_eq!(theirs, mine, "{:?}'s {zone} equals ours", s.kind);
        }
    }
    let before = ours().unwrap();

    // Restart the primary: the secondaries keep the zone meanwhile and take the next serial,
    // which is higher (from the clock; nothing is kept on disk).
    assert!(server.terminate(Duration::from_secs(10)).is_some());
    for s in &secondaries {
        assert_eq!(a(s.addr, WEB0), ["10.7.0.1"], "{:?} keeps serving with the primary down", s.kind);
    }
    write_pods(&manifests, 200, 8);
    let server = primary(&manifests, port, &keys, &notify, &[]);
    until("the restarted primary publishes", || {
        axfr(addr, "cluster.local").iter().any(|l| l.ends_with(" a 10.8.0.200"))
    });
    let after = ours().unwrap();
    assert!(after.wrapping_sub(before) < 1 << 31 && after != before, "serial {before} -> {after}: forward");
    for s in &secondaries {
        until(&format!("{:?} follows the restarted primary", s.kind), || a(s.addr, WEB0) == ["10.8.0.1"]);
        until(&format!("{:?} takes the restarted primary's serial", s.kind), || {
            serial(s.addr, "cluster.local") == Some(after)
        });
    }
    // The new process's journal does not know the old serial: the whole zone, AXFR-style.
    assert!(secondaries[0].log().contains("AXFR-style IXFR"), "{}", secondaries[0].log());
    drop(server);
}

/// Who may transfer, and what each kind of request gets.
#[test]
fn transfer_rules_follow_the_rfcs() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    write_pods(&manifests, 3, 1);
    let keys = key_file(dir.path());
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = primary(&manifests, port, &keys, &[], &["--journal-entries", "2"]);
    until("the zone is published", || axfr(addr, "cluster.local").len() == 9);
    let run = |args: &[&str]| {
        let out = std::process::Command::new("dig")
            .args([
                format!("@{}", addr.ip()),
                "-p".into(),
                port.to_string(),
                "+nocookie".into(),
                "+time=3".into(),
                "+tries=1".into(),
            ])
            .args(args)
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok_key = format!("hmac-sha256:{KEY}:{SECRET}");
    // Allowed unsigned from 127.0.0.1: SOA first and last, every record between.
    let full = run(&["cluster.local", "AXFR"]);
    assert!(full.contains("XFR size: 10 records"), "{full}");
    // Not listed: REFUSED (RFC 5936 section 4.2 leaves the policy to the server).
    assert!(run(&["-b", "127.0.0.4", "cluster.local", "AXFR"]).contains("Transfer failed"));
    let refused = ixfr_udp(addr, Ipv4Addr::new(127, 0, 0, 4), 1);
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    // Listed with a key, but unsigned: REFUSED; signed with the key: served, every message signed.
    let unsigned = ixfr_udp(addr, Ipv4Addr::new(127, 0, 0, 3), 1);
    assert_eq!(unsigned.metadata.response_code, ResponseCode::Refused);
    let signed = run(&["-b", "127.0.0.3", "-y", &ok_key, "cluster.local", "AXFR"]);
    assert!(signed.contains("XFR size: 10 records") && !signed.contains("Couldn't verify"), "{signed}");
    // A wrong secret: NOTAUTH with BADSIG; an unknown key: NOTAUTH with BADKEY (RFC 8945 5.2).
    let wrong = run(&["-b", "127.0.0.3", "-y", &format!("hmac-sha256:{KEY}:b3RoZXI="), "cluster.local", "SOA"]);
    assert!(wrong.contains("status: NOTAUTH") && wrong.contains("BADSIG"), "{wrong}");
    let unknown = run(&["-y", &format!("hmac-sha256:nobody:{SECRET}"), "cluster.local", "SOA"]);
    assert!(unknown.contains("status: NOTAUTH") && unknown.contains("BADKEY"), "{unknown}");
    // Any signed query in our zones gets a signed reply (Knot's SOA query before an IXFR).
    let soa = run(&["-y", &ok_key, "cluster.local", "SOA"]);
    assert!(soa.contains("status: NOERROR") && soa.contains("TSIG") && !soa.contains("Couldn't verify"), "{soa}");

    // IXFR: up to date (or over UDP): the SOA alone.
    let now = serial(addr, "cluster.local").unwrap();
    let current = run(&["cluster.local", &format!("IXFR={now}")]);
    assert!(current.contains("XFR size: 1 records"), "{current}");
    let udp = ixfr_udp(addr, Ipv4Addr::LOCALHOST, now.wrapping_sub(1));
    assert_eq!(udp.metadata.response_code, ResponseCode::NoError);
    assert_eq!(udp.answers.len(), 1, "the SOA alone over UDP: {udp:?}");
    // Three changes: an IXFR from the last serial is incremental; the journal keeps two, so
    // one from the first serial gets the whole zone (RFC 1995 section 4).
    let first = now;
    let mut serials = vec![first];
    for generation in 2..5 {
        write_pods(&manifests, 3, generation);
        let want = format!(" a 10.{generation}.0.3");
        until("published", || axfr(addr, "cluster.local").iter().any(|l| l.ends_with(&want)));
        serials.push(serial(addr, "cluster.local").unwrap());
    }
    let incremental = run(&["cluster.local", &format!("IXFR={}", serials[2]), "+onesoa"]);
    let lines: Vec<&str> = incremental.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|l| l.contains("10.3.0.1")) && lines.iter().any(|l| l.contains("10.4.0.1")),
        "{incremental}"
    );
    assert!(!lines.iter().any(|l| l.contains("dns-version")), "only the differences:\n{incremental}");
    let too_old = run(&["cluster.local", &format!("IXFR={first}")]);
    assert!(too_old.contains("dns-version") && too_old.contains("XFR size: 10 records"), "{too_old}");
    // A name below the apex is no zone: NOTAUTH (RFC 5936 section 2.2.1); the reverse zone
    // carries the pods' PTR records.
    assert!(run(&["default.svc.cluster.local", "AXFR"]).contains("Transfer failed"));
    let reverse = run(&["10.in-addr.arpa", "AXFR"]);
    assert!(reverse.contains("1.0.4.10.in-addr.arpa.") && reverse.contains("PTR"), "{reverse}");
    let m = server.http_get("/metrics").1;
    assert!(
        m.contains("headless_dns_transfers_total{kind=\"axfr\",zone=\"cluster.local.\",outcome=\"refused\"}"),
        "{m}"
    );
    assert!(m.contains("headless_dns_journal_entries 2"), "{m}");
}
