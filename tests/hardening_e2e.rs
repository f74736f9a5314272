//! Regression tests for defects found by careful reading and real resolvers, each through the
//! real binary over real sockets: names claimed by two objects, reloads in a row, a typo in a
//! manifest, a zone too long for its SOA, TCP answers over 64 KiB and the SOA TTL of negative
//! answers.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;
use support::dns::{query, tcp_messages, udp_message};
use support::fake_api::FakeApi;
use support::server::{ServerProcess, binary, eventually};

const WAIT: Duration = Duration::from_secs(20);
const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";

fn manifests_server(dir: &Path, extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--manifests", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let s = ServerProcess::start(&args);
    s.wait_for_log("first full sync complete", WAIT);
    s
}

async fn ask(server: std::net::SocketAddr, name: &str, rtype: RecordType) -> Message {
    udp_message(server, &query(name, rtype, None)).await.0
}

fn host_network_pod(name: &str, ip: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "labels": {"app": name}},
        "spec": {"hostNetwork": true, "nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}]}})
}

/// Two `hostNetwork` pods on one node in one namespace share the pod name `<dashed-ip>.<ns>.pod`:
/// with `--pods verified` the name stays while either pod remains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_sharing_an_ip_keep_the_name_until_both_are_gone() {
    let api = FakeApi::start().await;
    api.apply(host_network_pod("agent-a", "10.0.0.5"));
    api.apply(host_network_pod("agent-b", "10.0.0.5"));
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, &["--pods", "verified"], &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    const NAME: &str = "10-0-0-5.kube-system.pod.cluster.local.";
    let m = ask(s.dns, NAME, RecordType::A).await;
    assert_eq!(support::dns::addresses(&m), ["10.0.0.5"]);

    api.delete("Pod", "kube-system", "agent-a");
    // The deletion is applied (the namespace still holds a pod, so wait on a marker: a third pod
    // created after the deletion is served only once the deletion before it was applied).
    api.apply(host_network_pod("marker", "10.0.0.9"));
    eventually("the marker pod served", WAIT, || async {
        let m = ask(s.dns, "10-0-0-9.kube-system.pod.cluster.local.", RecordType::A).await;
        (m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty()).then_some(())
    })
    .await;
    let m = ask(s.dns, NAME, RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "agent-b still runs with that IP: {m:?}");
    assert_eq!(support::dns::addresses(&m), ["10.0.0.5"]);

    api.delete("Pod", "kube-system", "agent-b");
    eventually("the name gone with its last pod", WAIT, || async {
        (ask(s.dns, NAME, RecordType::A).await.metadata.response_code == ResponseCode::NXDomain).then_some(())
    })
    .await;
}

/// Reloads compare with the running configuration: a second SIGHUP asking for a change that needs
/// a restart keeps what the first one applied, never the start-up value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sighup_keeps_what_the_first_applied() {
    let dir = tempfile::tempdir().unwrap();
    support::yaml::write(
        dir.path(),
        "a.yaml",
        &[support::yaml::headless_service("nginx"), support::yaml::pod("web-0", "nginx", "10.244.1.5", true)],
    );
    let cfg = dir.path().join("c.toml");
    let manifests = dir.path().to_str().unwrap().to_owned();
    let write_cfg = |pods: &str| {
        std::fs::write(&cfg, format!("manifests = \"{manifests}\"\npods = \"{pods}\"\n")).unwrap();
    };
    write_cfg("disabled");
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::start(&["--config", cfg.to_str().unwrap()]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    const POD: &str = "10-9-9-9.default.pod.cluster.local.";
    let hup = || assert!(Command::new("kill").args(["-HUP", &s.pid().to_string()]).status().unwrap().success());
    assert_eq!(ask(s.dns, POD, RecordType::A).await.metadata.response_code, ResponseCode::NXDomain);

    write_cfg("insecure");
    hup();
    eventually("insecure pod records applied", WAIT, || async {
        (support::dns::addresses(&ask(s.dns, POD, RecordType::A).await) == ["10.9.9.9"]).then_some(())
    })
    .await;

    // `verified` needs the pod records published by the reconciler: a restart.
    write_cfg("verified");
    hup();
    tokio::task::block_in_place(|| s.wait_for_log("need a restart", WAIT));
    let reloads = || s.logs().iter().filter(|l| l.contains("configuration reloaded")).count();
    eventually("the second reload done", WAIT, || async { (reloads() >= 2).then_some(()) }).await;
    let m = ask(s.dns, POD, RecordType::A).await;
    assert_eq!(support::dns::addresses(&m), ["10.9.9.9"], "the running `insecure` stays: {m:?}");
}

/// A document that fails to parse keeps its file's last good objects (and is reported with its
/// file and line, counted in /metrics, readiness unchanged); deleting the file removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_a_manifest_keeps_that_files_last_good_objects() {
    use support::yaml::{headless_service, pod, write};
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "svc.yaml", &[headless_service("nginx")]);
    write(
        dir.path(),
        "pods.yaml",
        &[pod("web-0", "nginx", "10.244.1.5", true), pod("web-1", "nginx", "10.244.2.7", true)],
    );
    let s = tokio::task::block_in_place(|| manifests_server(dir.path(), &[]));
    const WEB1: &str = "web-1.nginx.default.svc.cluster.local.";
    assert_eq!(support::dns::addresses(&ask(s.dns, WEB0, RecordType::A).await), ["10.244.1.5"]);

    // web-0's document gets a typo (an unclosed flow mapping); web-1's moves to a new IP.
    let broken = pod("web-0", "nginx", "10.244.1.5", true)
        .replace("containers: [{name: c, image: x}]}", "containers: [{name: c");
    write(dir.path(), "pods.yaml", &[broken, pod("web-1", "nginx", "10.244.2.99", true)]);
    eventually("web-1's new IP served", WAIT, || async {
        (support::dns::addresses(&ask(s.dns, WEB1, RecordType::A).await) == ["10.244.2.99"]).then_some(())
    })
    .await;
    let m = ask(s.dns, WEB0, RecordType::A).await;
    assert_eq!(support::dns::addresses(&m), ["10.244.1.5"], "web-0 keeps its last good record: {m:?}");
    let line = tokio::task::block_in_place(|| s.wait_for_log("skipping manifest document", WAIT));
    assert!(line.contains("pods.yaml"), "{line}");
    let errors = tokio::task::block_in_place(|| s.metric("headless_dns_manifest_errors_total"));
    assert!(errors.is_some_and(|n| n >= 1.0), "counted in /metrics: {errors:?}");
    let (code, body) = tokio::task::block_in_place(|| s.http_get("/readyz"));
    assert_eq!(code, 200, "{body}");

    // Fixed: the file's documents are served as written.
    write(dir.path(), "pods.yaml", &[pod("web-0", "nginx", "10.244.1.50", true)]);
    eventually("the fixed file served", WAIT, || async {
        let web0 = support::dns::addresses(&ask(s.dns, WEB0, RecordType::A).await) == ["10.244.1.50"];
        let web1 = ask(s.dns, WEB1, RecordType::A).await.metadata.response_code == ResponseCode::NXDomain;
        (web0 && web1).then_some(())
    })
    .await;

    // A broken file, then deleted: its objects go with it.
    let broken = pod("web-0", "nginx", "10.244.1.50", true).replace("status:", "status: [");
    write(dir.path(), "pods.yaml", &[broken]);
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + WAIT;
        while s.logs().iter().filter(|l| l.contains("skipping manifest document")).count() < 2 {
            assert!(Instant::now() < deadline, "the second typo is reported");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert_eq!(support::dns::addresses(&ask(s.dns, WEB0, RecordType::A).await), ["10.244.1.50"]);
    std::fs::remove_file(dir.path().join("pods.yaml")).unwrap();
    eventually("the deleted file's pods gone", WAIT, || async {
        (ask(s.dns, WEB0, RecordType::A).await.metadata.response_code == ResponseCode::NXDomain).then_some(())
    })
    .await;
}

/// A zone so long that `hostmaster.<zone>` cannot be a name is refused at start-up (exit status
/// 2, the limit named), never served with a panic on every negative answer.
#[test]
fn a_zone_too_long_for_its_soa_names_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    support::yaml::write(dir.path(), "a.yaml", &[support::yaml::headless_service("nginx")]);
    let label = |c: char| c.to_string().repeat(60);
    let zone = [label('a'), label('b'), label('c'), label('d')].join("."); // 243 octets
    let mut child = Command::new(binary())
        .args(["--zone", &zone, "--manifests", dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with a {}-octet zone instead of refusing it", zone.len());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--zone") && stderr.contains("at most 242"), "names the flag and the limit: {stderr}");
    // The same from the file: the key and its line.
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("listen = [\"127.0.0.1:0\"]\nzone = [\"cluster.local\", \"{zone}\"]\n")).unwrap();
    let (code, stderr) = support::server::run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`zone` (line 2)") && stderr.contains("at most 242"), "{stderr}");
}

/// One message over TCP, its reply as raw bytes.
async fn tcp_raw(server: std::net::SocketAddr, msg: &Message) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let bytes = msg.to_vec().unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let len = tokio::time::timeout(WAIT, s.read_u16()).await.expect("a reply").unwrap();
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

/// An answer larger than a TCP message can carry is a well-formed reply with as many records as
/// fit and TC=1, as BIND and Knot send; never a reply cut mid-record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_answers_over_64_kib_are_well_formed_and_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut items =
        vec![json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big", "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": "big"}, "ports": [{"name": "web", "port": 80}]}})];
    for i in 0..5000u32 {
        let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        items.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("big-{i}"), "namespace": "default", "labels": {"app": "big"}},
            "spec": {"hostname": format!("big-{i}"), "subdomain": "big", "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}));
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(dir.path().join("big.json"), list.to_string()).unwrap();
    let s = tokio::task::block_in_place(|| manifests_server(dir.path(), &[]));
    for rtype in [RecordType::A, RecordType::SRV] {
        let raw = tcp_raw(s.dns, &query("big.default.svc.cluster.local.", rtype, Some(1232))).await;
        // As many as fit: less room is left than the largest record here takes (an SRV record
        // with both names written out is under 100 octets).
        assert!(raw.len() <= 65535 && raw.len() > 65535 - 100, "{rtype}: the message is full: {} octets", raw.len());
        let m = Message::from_vec(&raw).expect("a well-formed message");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{rtype}");
        assert!(m.metadata.truncation, "{rtype}: TC=1 says the answer is incomplete");
        assert!(m.edns.is_some(), "{rtype}: an EDNS query gets its OPT record (RFC 6891 section 7)");
        let n = m.answers.len();
        assert!((500..5000).contains(&n), "{rtype}: as many records as fit: {n}");
        assert!(m.answers.iter().all(|r| r.record_type() == rtype), "{rtype}: every record whole");
        assert!(
            m.additionals.iter().all(|r| r.record_type() != RecordType::A),
            "{rtype}: additional data dropped first"
        );
    }
    // Over UDP the same answer is a TC=1 reply with no records, and the client retries over TCP.
    let (udp, _) = udp_message(s.dns, &query("big.default.svc.cluster.local.", RecordType::A, Some(1232))).await;
    assert!(udp.metadata.truncation && udp.answers.is_empty(), "UDP: TC=1 and no records");
    let (code, metrics) = tokio::task::block_in_place(|| s.http_get("/metrics"));
    assert_eq!(code, 200);
    let truncated = |transport: &str| {
        let series = format!(r#"headless_dns_truncated_replies_total{{transport="{transport}"}}"#);
        support::server::metric_in(&metrics, &series)
    };
    assert_eq!(truncated("tcp"), Some(2.0), "counted per transport");
    assert_eq!(truncated("udp"), Some(1.0), "counted per transport");
    // A query that fits is still answered whole on the same server.
    let replies = tcp_messages(s.dns, &[query("big-7.big.default.svc.cluster.local.", RecordType::A, None)]).await;
    assert!(!replies[0].metadata.truncation);
    assert_eq!(support::dns::addresses(&replies[0]), ["10.1.0.8"]);
}

/// RFC 2308 section 3: the SOA in a negative answer carries TTL min(SOA TTL, MINIMUM), because
/// resolvers cache the negative for that TTL; a positive SOA answer keeps the SOA's own TTL. On the
/// fast path (UDP A/AAAA) and the general path (other types, TCP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_carry_the_smaller_of_the_soa_ttl_and_its_minimum() {
    let dir = tempfile::tempdir().unwrap();
    support::yaml::write(
        dir.path(),
        "a.yaml",
        &[support::yaml::headless_service("nginx"), support::yaml::pod("web-0", "nginx", "10.244.1.5", true)],
    );
    let s = tokio::task::block_in_place(|| manifests_server(dir.path(), &["--soa-ttl", "30", "--soa-minimum", "2"]));
    let soa_ttls = |m: &Message| -> Vec<(u32, u32)> {
        m.authorities
            .iter()
            .chain(m.answers.iter())
            .filter_map(|r| match &r.data {
                RData::SOA(soa) => Some((r.ttl, soa.minimum)),
                _ => None,
            })
            .collect()
    };
    let missing = "web-9.nginx.default.svc.cluster.local.";
    for (name, rtype, rcode) in [
        (missing, RecordType::A, ResponseCode::NXDomain),   // fast path
        (WEB0, RecordType::AAAA, ResponseCode::NoError),    // fast path NODATA
        (missing, RecordType::TXT, ResponseCode::NXDomain), // general path
        (WEB0, RecordType::SRV, ResponseCode::NoError),     // general path NODATA
    ] {
        let m = ask(s.dns, name, rtype).await;
        assert_eq!(m.metadata.response_code, rcode, "{name} {rtype}");
        assert_eq!(soa_ttls(&m), [(2, 2)], "{name} {rtype} over UDP");
        let tcp = &tcp_messages(s.dns, &[query(name, rtype, None)]).await[0];
        assert_eq!(soa_ttls(tcp), [(2, 2)], "{name} {rtype} over TCP");
    }
    let m = ask(s.dns, "cluster.local.", RecordType::SOA).await;
    assert_eq!(soa_ttls(&m), [(30, 2)], "a positive SOA answer keeps the SOA's own TTL");
}

/// RFC 3225 section 3: "the DO bit of the query MUST be copied in the response". dig's `+dnssec`
/// sets it; without `+cookie` the query takes the fast path, with it (an EDNS option), over TCP,
/// and for a question the fast path leaves alone (TXT), the general path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_do_bit_is_copied_into_every_reply_with_edns() {
    let dir = tempfile::tempdir().unwrap();
    support::yaml::write(
        dir.path(),
        "a.yaml",
        &[support::yaml::headless_service("nginx"), support::yaml::pod("web-0", "nginx", "10.244.1.5", true)],
    );
    let s = tokio::task::block_in_place(|| manifests_server(dir.path(), &[]));
    let missing = "web-9.nginx.default.svc.cluster.local.";
    for (name, extra) in [
        (WEB0, "+nocookie"),
        (WEB0, "+cookie"),
        (WEB0, "+tcp"),
        (missing, "+nocookie"),
        (missing, "+tcp"),
        ("web-0.nginx.default.svc.cluster.local. TXT", "+nocookie"),
    ] {
        for dnssec in [true, false] {
            let mut args: Vec<&str> = name.split(' ').collect();
            args.extend([extra, if dnssec { "+dnssec" } else { "+nodnssec" }]);
            let r = tokio::task::block_in_place(|| support::dns::dig(s.dns, &args));
            let opt = r.raw.lines().find(|l| l.starts_with("; EDNS:")).unwrap_or_else(|| panic!("no OPT: {}", r.raw));
            assert_eq!(opt.contains("flags: do;"), dnssec, "{args:?}: {opt}");
        }
    }
}

/// RFC 7873 section 5.2.3 and RFC 9018: a query with a client cookie gets it back with a 16-octet
/// server cookie (version 1, reserved zero), on every path: an A hit and an NXDOMAIN (the fast
/// path), SRV (the general path) and TCP; a query returning our server cookie is answered the
/// same way; a COOKIE option no cookie can fill gets FORMERR (RFC 7873 section 5.2.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_cookies_are_echoed_with_a_server_cookie_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    support::yaml::write(
        dir.path(),
        "a.yaml",
        &[support::yaml::headless_service("nginx"), support::yaml::pod("web-0", "nginx", "10.244.1.5", true)],
    );
    let s = tokio::task::block_in_place(|| manifests_server(dir.path(), &[]));
    let client = "2f8a6c31d0b47e95";
    let cookie_of = |raw: &str| -> String {
        let line = raw.lines().find(|l| l.starts_with("; COOKIE:")).unwrap_or_else(|| panic!("no COOKIE: {raw}"));
        line["; COOKIE: ".len()..].split(' ').next().unwrap().to_string()
    };
    let mut ours = String::new();
    for (args, status) in [
        (vec![WEB0], "NOERROR"),
        (vec!["web-9.nginx.default.svc.cluster.local."], "NXDOMAIN"),
        (vec!["_http._tcp.nginx.default.svc.cluster.local.", "SRV"], "NXDOMAIN"),
        (vec!["nginx.default.svc.cluster.local.", "SRV"], "NOERROR"),
        (vec![WEB0, "+tcp"], "NOERROR"),
    ] {
        let mut args = args.clone();
        let sent = format!("+cookie={client}");
        args.push(&sent);
        let r = tokio::task::block_in_place(|| support::dns::dig(s.dns, &args));
        assert!(r.raw.contains(&format!("status: {status}")), "{args:?}: {}", r.raw);
        let got = cookie_of(&r.raw);
        assert_eq!(got.len(), 48, "{args:?}: client and server cookie: {got}");
        assert_eq!(&got[..16], client, "{args:?}: the client cookie is echoed");
        assert_eq!(&got[16..24], "01000000", "{args:?}: RFC 9018 version 1, reserved zero");
        ours = got;
    }
    // The server cookie handed out comes back: answered, with a server cookie again.
    let sent = format!("+cookie={ours}");
    let r = tokio::task::block_in_place(|| support::dns::dig(s.dns, &[WEB0, &sent]));
    assert!(r.raw.contains("status: NOERROR") && r.raw.contains("10.244.1.5"), "{}", r.raw);
    assert_eq!(&cookie_of(&r.raw)[..16], client);
    // So does a server cookie that is not ours (another replica's, a forged one): RFC 7873
    // section 5.2.4 treats it as a client cookie alone.
    let sent = format!("+cookie={client}0100000000000000deadbeefdeadbeef");
    let r = tokio::task::block_in_place(|| support::dns::dig(s.dns, &[WEB0, &sent]));
    assert!(r.raw.contains("status: NOERROR") && r.raw.contains("10.244.1.5"), "{}", r.raw);
    assert_eq!(cookie_of(&r.raw).len(), 48);
    // Malformed: 5 octets, or a client cookie and 4 octets of server cookie.
    for bad in ["0102030405", "2f8a6c31d0b47e9501020304"] {
        let sent = format!("+cookie={bad}");
        for transport in ["+notcp", "+tcp"] {
            let r = tokio::task::block_in_place(|| support::dns::dig(s.dns, &[WEB0, &sent, transport]));
            assert!(r.raw.contains("status: FORMERR"), "{bad} {transport}: {}", r.raw);
        }
    }
}
